package parquetio

import (
	"encoding/binary"
	"math/bits"

	"github.com/parquet-go/parquet-go/format"
)

// This file holds the FastPartWriter's low-level encoders: bit buffers, the
// RLE/bit-packed hybrid encoding of definition levels and dictionary
// indices, and page headers in the Thrift compact protocol.

// bitBuf is a growable LSB-first bitmap; bits past n are always zero.
type bitBuf struct {
	b []byte
	n int
}

func (bb *bitBuf) reset() {
	clear(bb.b)
	bb.b = bb.b[:0]
	bb.n = 0
}

// grow makes room for k more bits, zeroed.
func (bb *bitBuf) grow(k int) {
	need := (bb.n + k + 7) / 8
	if need > len(bb.b) {
		bb.b = append(bb.b, make([]byte, need-len(bb.b))...)
	}
}

// appendBits appends k bits of src starting at bit off.
func (bb *bitBuf) appendBits(src []byte, off, k int) {
	if k <= 0 {
		return
	}
	bb.grow(k)
	if off&7 == 0 && bb.n&7 == 0 {
		n := copy(bb.b[bb.n>>3:], src[off>>3:(off+k)>>3])
		bb.n += 8 * n
		off += 8 * n
		k -= 8 * n
	}
	for ; k >= 8; k -= 8 {
		bb.put(bitsAt(src, off), 8)
		off += 8
	}
	if k > 0 {
		bb.put(bitsAt(src, off)&(1<<k-1), k)
	}
}

// put appends the k low bits of v (the others zero); grow must have made
// room.
func (bb *bitBuf) put(v byte, k int) {
	j, s := bb.n>>3, uint(bb.n&7)
	bb.b[j] |= v << s
	if s+uint(k) > 8 {
		bb.b[j+1] |= v >> (8 - s)
	}
	bb.n += k
}

// bitsAt returns the 8 bits of b from bit off (zeros past its end).
func bitsAt(b []byte, off int) byte {
	i, s := off>>3, uint(off&7)
	v := uint16(b[i])
	if s != 0 && i+1 < len(b) {
		v |= uint16(b[i+1]) << 8
	}
	return byte(v >> s)
}

// appendOnes appends k set bits.
func (bb *bitBuf) appendOnes(k int) {
	if k <= 0 {
		return
	}
	bb.grow(k)
	i := bb.n
	end := i + k
	for ; i < end && i%8 != 0; i++ {
		bb.b[i/8] |= 1 << (i % 8)
	}
	for ; i+8 <= end; i += 8 {
		bb.b[i/8] = 0xff
	}
	for ; i < end; i++ {
		bb.b[i/8] |= 1 << (i % 8)
	}
	bb.n = end
}

// appendBit appends one bit.
func (bb *bitBuf) appendBit(v bool) {
	if bb.n%8 == 0 {
		bb.b = append(bb.b, 0)
	}
	if v {
		bb.b[bb.n/8] |= 1 << (bb.n % 8)
	}
	bb.n++
}

// bytes returns the bitmap's bytes, the last one padded with zero bits.
func (bb *bitBuf) bytes() []byte { return bb.b[:(bb.n+7)/8] }

func bitSet(b []byte, i int) bool { return b[i>>3]&(1<<(i&7)) != 0 }

// nextDiff returns the first position in [i, n) whose bit differs from v,
// or n.
func nextDiff(b []byte, i, n int, v bool) int {
	var same byte
	if v {
		same = 0xff
	}
	for i < n {
		if i&7 == 0 {
			for i+64 <= n && binary.LittleEndian.Uint64(b[i>>3:]) == uint64(same)*0x0101010101010101 {
				i += 64
			}
			for i+8 <= n && b[i>>3] == same {
				i += 8
			}
			if i >= n {
				return n
			}
		}
		if bitSet(b, i) != v {
			return i
		}
		i++
	}
	return n
}

// appendRLERun appends an RLE run of count copies of value.
func appendRLERun(dst []byte, count int, value uint32, width int) []byte {
	dst = binary.AppendUvarint(dst, uint64(count)<<1)
	for i := 0; i < (width+7)/8; i++ {
		dst = append(dst, byte(value>>(8*i)))
	}
	return dst
}

// appendBitPacked appends vals as one bit-packed run, padded with zeros to a
// multiple of eight values.
func appendBitPacked(dst []byte, vals []uint32, width int) []byte {
	groups := (len(vals) + 7) / 8
	dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
	var acc uint64
	var nb uint
	w := uint(width)
	for _, v := range vals {
		acc |= uint64(v) << nb
		nb += w
		if nb >= 32 {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(acc))
			acc >>= 32
			nb -= 32
		}
	}
	for pad := groups*8 - len(vals); pad > 0; pad-- {
		nb += w
		if nb >= 32 {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(acc))
			acc >>= 32
			nb -= 32
		}
	}
	for ; nb > 0; nb -= 8 {
		dst = append(dst, byte(acc))
		acc >>= 8
	}
	return dst
}

// encodeHybrid appends vals in the RLE/bit-packed hybrid encoding with the
// given bit width (no length prefix): runs of eight or more equal values
// become RLE runs, everything else is bit-packed.
func encodeHybrid(dst []byte, vals []uint32, width int) []byte {
	n := len(vals)
	lit := 0 // start of the pending bit-packed values
	for i := 0; i < n; {
		v := vals[i]
		j := i + 1
		for j < n && vals[j] == v {
			j++
		}
		if j-i >= 8 {
			// the pending literals must fill whole groups of eight: borrow
			// from the run
			pad := (8 - (i-lit)%8) % 8
			if j-i-pad >= 8 {
				if i+pad > lit {
					dst = appendBitPacked(dst, vals[lit:i+pad], width)
				}
				dst = appendRLERun(dst, j-i-pad, v, width)
				lit = j
			}
		}
		i = j
	}
	if lit < n {
		dst = appendBitPacked(dst, vals[lit:], width)
	}
	return dst
}

// encodeLevels appends n definition levels (bit width 1), given as a bitmap,
// in the hybrid encoding (no length prefix).
func encodeLevels(dst []byte, b []byte, n, ones int) []byte {
	switch {
	case n == 0:
		return dst
	case ones == n:
		return appendRLERun(dst, n, 1, 1)
	case ones == 0:
		return appendRLERun(dst, n, 0, 1)
	}
	lit := 0
	for i := 0; i < n; {
		v := bitSet(b, i)
		j := nextDiff(b, i+1, n, v)
		if j-i >= 16 {
			pad := (8 - (i-lit)%8) % 8
			if j-i-pad >= 16 {
				if i+pad > lit {
					dst = appendBitPackedBits(dst, b, lit, i+pad-lit)
				}
				val := uint32(0)
				if v {
					val = 1
				}
				dst = appendRLERun(dst, j-i-pad, val, 1)
				lit = j
			}
		}
		i = j
	}
	if lit < n {
		dst = appendBitPackedBits(dst, b, lit, n-lit)
	}
	return dst
}

// appendBitPackedBits appends k bits of b from bit off as one bit-packed run
// of bit width 1.
func appendBitPackedBits(dst []byte, b []byte, off, k int) []byte {
	groups := (k + 7) / 8
	dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
	start := len(dst)
	dst = append(dst, make([]byte, groups)...)
	bb := bitBuf{b: dst[start:]}
	bb.appendBits(b, off, k)
	return dst
}

// dictBitWidth is the bit width of indices into a dictionary of n entries
// (at least 1: some readers mishandle width 0).
func dictBitWidth(n int) int {
	if n <= 1 {
		return 1
	}
	return bits.Len32(uint32(n - 1))
}

// Thrift compact protocol type ids used in page headers.
const (
	tcI32    = 5
	tcStruct = 12
)

func appendI32Field(dst []byte, delta byte, v int32) []byte {
	dst = append(dst, delta<<4|tcI32)
	return binary.AppendUvarint(dst, uint64(uint32(v<<1)^uint32(v>>31)))
}

// appendPageHeader appends a PageHeader (Thrift compact protocol) of a data
// page v1 or, when dict, a dictionary page, with num values.
func appendPageHeader(dst []byte, dict bool, uncompressed, compressed int, crc uint32, num int, enc format.Encoding) []byte {
	typ := format.DataPage
	if dict {
		typ = format.DictionaryPage
	}
	dst = appendI32Field(dst, 1, int32(typ))
	dst = appendI32Field(dst, 1, int32(uncompressed))
	dst = appendI32Field(dst, 1, int32(compressed))
	dst = appendI32Field(dst, 1, int32(crc))
	if dict {
		dst = append(dst, 3<<4|tcStruct) // field 7: dictionary_page_header
		dst = appendI32Field(dst, 1, int32(num))
		dst = appendI32Field(dst, 1, int32(enc))
	} else {
		dst = append(dst, 1<<4|tcStruct) // field 5: data_page_header
		dst = appendI32Field(dst, 1, int32(num))
		dst = appendI32Field(dst, 1, int32(enc))
		dst = appendI32Field(dst, 1, int32(format.RLE)) // definition levels
		dst = appendI32Field(dst, 1, int32(format.RLE)) // repetition levels
	}
	return append(dst, 0, 0) // end of the nested struct, end of the header
}
