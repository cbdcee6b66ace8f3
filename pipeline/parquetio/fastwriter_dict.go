package parquetio

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// The FastPartWriter's chunk dictionaries: open-addressing hash tables with
// linear probing, at most three quarters full. Entry ids are given in
// insertion order, so the output does not depend on the hash seed. (At most
// half full, a row group's table of 70,000 pseudonyms took 2 MB instead of
// 1 and missed the CPU's caches more: 2 % more CPU on the bench.)

var (
	dictSeed  = maphash.MakeSeed()
	fixedSeed = maphash.Comparable(dictSeed, uint64(0x9e3779b97f4a7c15))
)

// bytesDict is a chunk dictionary of byte strings. A slot holds the upper
// 32 bits of the entry's hash and its id + 1 (0: empty).
type bytesDict struct {
	slots []uint64
	plain []byte   // the dictionary page body: PLAIN entries
	offs  []uint32 // entry positions in plain
}

func (d *bytesDict) reset() {
	clear(d.slots)
	d.plain = d.plain[:0]
	d.offs = d.offs[:0]
}

func (d *bytesDict) value(id uint32) []byte {
	pos := d.offs[id]
	n := binary.LittleEndian.Uint32(d.plain[pos:])
	return d.plain[pos+4 : pos+4+n]
}

func (d *bytesDict) init() {
	if len(d.slots) == 0 {
		d.slots = make([]uint64, 1024)
	}
}

// lookup returns b's id, or -1 with the slot and hash to insert it with.
func (d *bytesDict) lookup(b []byte) (int32, int, uint64) {
	d.init()
	h := maphash.Bytes(dictSeed, b)
	id, slot := d.probe(b, h)
	return id, slot, h
}

// probe looks b, of hash h, up.
func (d *bytesDict) probe(b []byte, h uint64) (int32, int) {
	mask := len(d.slots) - 1
	tag := h >> 32
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := d.slots[i]
		if s == 0 {
			return -1, i
		}
		if s>>32 == tag {
			id := int32(uint32(s)) - 1
			pos := d.offs[id]
			n := binary.LittleEndian.Uint32(d.plain[pos:])
			if string(d.plain[pos+4:pos+4+n]) == string(b) {
				return id, i
			}
		}
	}
}

// hints hashes values [from, from+m) of v and returns, for each, the id of
// the entry in its first slot when the hash tags match, else -1.
func (d *bytesDict) hints(v bytesView, from, m int, hs *[hashBlock]uint64, hint *[hashBlock]int32) {
	d.init()
	mask := len(d.slots) - 1
	for j := 0; j < m; j++ {
		h := maphash.Bytes(dictSeed, v.data[v.offs[from+j]:v.offs[from+j+1]])
		hs[j] = h
		s := d.slots[int(h)&mask]
		hint[j] = -1
		if s != 0 && s>>32 == h>>32 {
			hint[j] = int32(uint32(s)) - 1
		}
	}
}

// insert adds b, which lookup did not find, at the slot it returned.
func (d *bytesDict) insert(b []byte, slot int, h uint64) int32 {
	id := int32(len(d.offs))
	d.offs = append(d.offs, uint32(len(d.plain)))
	d.plain = binary.LittleEndian.AppendUint32(d.plain, uint32(len(b)))
	d.plain = append(d.plain, b...)
	d.slots[slot] = h>>32<<32 | uint64(id+1)
	if 4*len(d.offs) > 3*len(d.slots) {
		slots := make([]uint64, 2*len(d.slots))
		mask := len(slots) - 1
		for id := range d.offs {
			h := maphash.Bytes(dictSeed, d.value(uint32(id)))
			i := int(h) & mask
			for slots[i] != 0 {
				i = (i + 1) & mask
			}
			slots[i] = h>>32<<32 | uint64(id+1)
		}
		d.slots = slots
	}
	return id
}

// fixedDict is a chunk dictionary of fixed-width values, keyed by their bits
// (so NaNs and -0.0 are entries of their own).
type fixedDict struct {
	keys  []uint64
	ids   []int32 // id + 1; 0: empty
	shift uint
	vals  []uint64 // entries by id
}

func (d *fixedDict) reset() {
	clear(d.ids)
	d.vals = d.vals[:0]
}

// slot is k's first slot: the high bits of a seeded mix of k, so that no
// input can be chosen to collide.
func (d *fixedDict) slot(k uint64) int {
	k ^= fixedSeed
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return int(k >> d.shift)
}

// lookup returns k's id, or -1 with the slot to insert it at.
func (d *fixedDict) lookup(k uint64) (int32, int) {
	if len(d.ids) == 0 {
		d.keys, d.ids, d.shift = make([]uint64, 1024), make([]int32, 1024), 64-10
	}
	mask := len(d.ids) - 1
	for i := d.slot(k); ; i = (i + 1) & mask {
		switch {
		case d.ids[i] == 0:
			return -1, i
		case d.keys[i] == k:
			return d.ids[i] - 1, i
		}
	}
}

func (d *fixedDict) insert(k uint64, slot int) int32 {
	id := int32(len(d.vals))
	d.vals = append(d.vals, k)
	d.keys[slot], d.ids[slot] = k, id+1
	if 4*len(d.vals) > 3*len(d.ids) {
		n := 2 * len(d.ids)
		d.keys, d.ids, d.shift = make([]uint64, n), make([]int32, n), uint(64-bits.Len(uint(n-1)))
		mask := n - 1
		for id, k := range d.vals {
			i := d.slot(k)
			for d.ids[i] != 0 {
				i = (i + 1) & mask
			}
			d.keys[i], d.ids[i] = k, int32(id+1)
		}
	}
	return id
}
