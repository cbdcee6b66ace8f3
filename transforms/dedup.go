package transforms

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash/maphash"
	"sync"
)

// batchDedup finds the first earlier row of a batch with the same value, so
// that a keyed transform computes each distinct value of a batch once and
// copies its result for the repeats. It is an open-addressing table of row
// numbers, twice the batch's size, kept by the goroutine's HMAC state and
// cleared per batch: no allocation and no rehashing per batch (a Go map per
// batch spent as long on growing as the HMACs it saved). At 32,768 rows it
// is 256 KiB, which stays in the core's cache.
//
// (A memo kept across batches was measured too: small enough to stay in
// cache, it found no more repeats than this; large enough to find two
// thirds of the 10M-row reference file's user ids, each lookup waited on
// main memory about as long as the HMAC it saved.)
type batchDedup struct {
	seed  maphash.Seed
	slots []int32 // row+1, 0 empty
	mask  uint64
}

// reset prepares the table for a batch of n rows.
func (d *batchDedup) reset(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	if cap(d.slots) < size {
		if d.slots == nil {
			d.seed = maphash.MakeSeed()
		}
		d.slots = make([]int32, size)
	} else {
		d.slots = d.slots[:size]
		clear(d.slots)
	}
	d.mask = uint64(size - 1)
}

// find returns the earlier row holding the value row i holds, or -1 after
// recording row i as its first. same(j) reports whether row j holds it; h
// is its hash.
func (d *batchDedup) find(i int, h uint64, same func(j int) bool) int {
	for k := h & d.mask; ; k = (k + 1) & d.mask {
		j := d.slots[k]
		if j == 0 {
			d.slots[k] = int32(i + 1)
			return -1
		}
		if same(int(j - 1)) {
			return int(j - 1)
		}
	}
}

// hashInt mixes an integer's bits (the finalizer of MurmurHash3).
func hashInt(v uint64) uint64 {
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	v *= 0xc4ceb9fe1a85ec53
	return v ^ v>>33
}

// statePool hands out HMAC states, one per goroutine at a time, and keeps
// them (with their tables) for the life of the transform; a sync.Pool
// would drop them at every garbage collection, which a busy run does
// several times a second.
type statePool struct {
	key  []byte
	mu   sync.Mutex
	free []*hmacState
}

func newStatePool(key []byte) *statePool {
	return &statePool{key: append([]byte(nil), key...)}
}

func (p *statePool) get() *hmacState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		st := p.free[n-1]
		p.free = p.free[:n-1]
		return st
	}
	return &hmacState{h: hmac.New(sha256.New, p.key), sum: make([]byte, 0, sha256.Size)}
}

func (p *statePool) put(st *hmacState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, st)
}
