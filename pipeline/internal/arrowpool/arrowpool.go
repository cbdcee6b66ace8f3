// Package arrowpool is an Arrow memory allocator that reuses the large
// buffers it gets back, for a run's decoded batches.
//
// A run decodes, transforms and encodes batches of 65,536 rows: several
// gigabytes of Arrow buffers of a few hundred kilobytes to a few megabytes
// each, freed as soon as their batch is written. Left to the garbage
// collector under the run's heap limit, that churn makes the collector run
// more often and keeps the runtime's scavenger giving pages back to the
// kernel that the next batch then faults in again. Reused here, a batch's
// buffers come back for the next one. Measured on the bench's 10M-row file
// (1461 days): 2.6 GB allocated instead of 7.4, 1.0 GB scavenged instead of
// 1.6, about 1 % less CPU and a lower peak RSS.
//
// Buffers are handed out with the semantics of memory.GoAllocator: zeroed,
// 64-byte aligned, capacity equal to length. Sizes from 64 KiB to 64 MiB
// are rounded up to one of four classes per power of two; smaller and
// larger ones come from Go's allocator and are not kept. Only buffers this
// allocator handed out are taken back, and at most a set number of bytes
// wait for reuse; the rest are left to the garbage collector. The
// allocator remembers the pooled buffers it handed out, so one that is
// never freed (a missing Release, which the tests' allocator reports)
// stays reachable until the allocator itself is dropped: a run makes its
// own.
package arrowpool

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

const (
	minPooled = 64 << 10
	maxPooled = 64 << 20
	alignment = 64
	// classBits: 1<<classBits classes per power of two
	classBits = 2
)

// Allocator is a memory.Allocator that keeps freed buffers for reuse. It is
// safe for concurrent use.
type Allocator struct {
	base memory.GoAllocator

	mu    sync.Mutex
	out   map[*byte]int // buffers handed out → their class
	free  map[int][]*byte
	idle  int // bytes waiting in free
	limit int
}

// New returns an allocator that keeps at most limit bytes of freed buffers.
func New(limit int) *Allocator {
	return &Allocator{out: map[*byte]int{}, free: map[int][]*byte{}, limit: limit}
}

// class returns the size class of a buffer of size bytes and the class's
// size, or false when such buffers are not pooled.
func class(size int) (int, int, bool) {
	if size < minPooled || size > maxPooled {
		return 0, 0, false
	}
	// size rounded up to classBits significant bits below the leading one
	shift := bits.Len(uint(size-1)) - 1 - classBits
	c := (size - 1) >> shift // in [1<<classBits, 1<<(classBits+1))
	return c + shift<<(classBits+1), (c + 1) << shift, true
}

// classSize is the size of class c's buffers.
func classSize(c int) int {
	return (c&(1<<(classBits+1)-1) + 1) << (c >> (classBits + 1))
}

// Allocate implements memory.Allocator.
func (a *Allocator) Allocate(size int) []byte {
	c, n, ok := class(size)
	if !ok {
		return a.base.Allocate(size)
	}
	var p *byte
	a.mu.Lock()
	if list := a.free[c]; len(list) > 0 {
		p = list[len(list)-1]
		a.free[c] = list[:len(list)-1]
		a.idle -= n
	}
	if p == nil {
		p = unsafe.SliceData(a.base.Allocate(n)) // zeroed, aligned
		a.out[p] = c
		a.mu.Unlock()
		return unsafe.Slice(p, size)
	}
	a.out[p] = c
	a.mu.Unlock()
	b := unsafe.Slice(p, size)
	clear(b)
	return b
}

// Reallocate implements memory.Allocator.
func (a *Allocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

// Free implements memory.Allocator.
func (a *Allocator) Free(b []byte) {
	if cap(b) < minPooled {
		return
	}
	p := unsafe.SliceData(b)
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.out[p]
	if !ok {
		return
	}
	delete(a.out, p)
	if n := classSize(c); a.idle+n <= a.limit {
		a.free[c] = append(a.free[c], p)
		a.idle += n
	}
}

// Idle returns the bytes of freed buffers waiting for reuse.
func (a *Allocator) Idle() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.idle
}

var _ memory.Allocator = (*Allocator)(nil)
