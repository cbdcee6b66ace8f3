package parquetio

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// This file holds the lean reader's value decoders: the RLE/bit-packed
// hybrid (definition levels and dictionary indices) and DELTA_BINARY_PACKED
// (integers and the lengths of DELTA_LENGTH_BYTE_ARRAY). Each is bounded by
// the number of values the page header declares, so corrupt input yields an
// error, never an oversized allocation or a panic.

var errTruncated = errors.New("page data ends early")

// decodeDefLevels decodes n definition levels of bit width 1 (a flat
// optional column) from the hybrid encoding in src into the validity bitmap
// dst (which holds at least n bits, LSB first) and returns the number of
// set bits. Parquet's bit-packed runs of width 1 have Arrow's bit order, so
// they are copied as they are.
func decodeDefLevels(dst []byte, src []byte, n int) (int, error) {
	pos, valid := 0, 0
	for pos < n {
		h, k := binary.Uvarint(src)
		if k <= 0 {
			return 0, fmt.Errorf("definition levels: %w after %d of %d", errTruncated, pos, n)
		}
		src = src[k:]
		if h&1 == 0 { // RLE run
			count := int(min(h>>1, uint64(n-pos)))
			if len(src) < 1 {
				return 0, fmt.Errorf("definition levels: %w in a run", errTruncated)
			}
			v := src[0]
			src = src[1:]
			if v > 1 {
				return 0, fmt.Errorf("definition level %d above the maximum 1", v)
			}
			bitutil.SetBitsTo(dst, int64(pos), int64(count), v == 1)
			if v == 1 {
				valid += count
			}
			pos += count
			continue
		}
		groups := h >> 1
		if groups == 0 {
			continue // empty, but its header was consumed
		}
		nb := groups // bit width 1: one byte per group of 8
		if nb > uint64(len(src)) {
			// the last run may be cut short when it holds the last values
			nb = uint64(len(src))
		}
		count := int(min(nb*8, uint64(n-pos)))
		if count == 0 {
			return 0, fmt.Errorf("definition levels: %w in a bit-packed run", errTruncated)
		}
		bitutil.CopyBitmap(src, 0, count, dst, pos)
		valid += bitutil.CountSetBits(src, 0, count)
		pos += count
		src = src[nb:]
	}
	return valid, nil
}

// hybridInt32 decodes n values of bit width w (0..32) from the hybrid
// encoding in src into dst[:n].
func hybridInt32(dst []int32, src []byte, w int, n int) error {
	if w < 0 || w > 32 {
		return fmt.Errorf("invalid or corrupted bit width %d", w)
	}
	vb := (w + 7) / 8
	mask := uint64(1)<<w - 1
	pos := 0
	for pos < n {
		h, k := binary.Uvarint(src)
		if k <= 0 {
			return fmt.Errorf("hybrid values: %w after %d of %d", errTruncated, pos, n)
		}
		src = src[k:]
		if h&1 == 0 {
			count := h >> 1
			if len(src) < vb {
				return fmt.Errorf("hybrid values: %w in a run", errTruncated)
			}
			var v uint32
			for i := 0; i < vb; i++ {
				v |= uint32(src[i]) << (8 * i)
			}
			src = src[vb:]
			if w < 32 && uint64(v) > mask {
				return fmt.Errorf("run value %d exceeds bit width %d", v, w)
			}
			c := int(min(count, uint64(n-pos)))
			fill := dst[pos : pos+c]
			for i := range fill {
				fill[i] = int32(v)
			}
			pos += c
			continue
		}
		groups := h >> 1
		if groups == 0 {
			continue // empty, but its header was consumed
		}
		nb := groups * uint64(w)
		if nb > uint64(len(src)) {
			nb = uint64(len(src)) // a last run cut short
		}
		count := int(min(groups*8, uint64(n-pos)))
		if w > 0 {
			count = min(count, int(nb*8/uint64(w)))
		}
		if count == 0 {
			return fmt.Errorf("hybrid values: %w in a bit-packed run", errTruncated)
		}
		unpack(dst[pos:pos+count], src[:nb], w)
		pos += count
		src = src[nb:]
	}
	return nil
}

// unpack reads len(dst) values of bit width w, LSB first, from src.
func unpack(dst []int32, src []byte, w int) {
	if w == 0 {
		clear(dst)
		return
	}
	mask := uint64(1)<<w - 1
	bit := 0
	i := 0
	// fast path: whole 8-byte loads while they stay inside src
	for ; i < len(dst) && bit/8+8 <= len(src); i++ {
		v := binary.LittleEndian.Uint64(src[bit/8:])
		dst[i] = int32((v >> (bit & 7)) & mask)
		bit += w
	}
	for ; i < len(dst); i++ {
		var v uint64
		for b := 0; b < 8 && bit/8+b < len(src); b++ {
			v |= uint64(src[bit/8+b]) << (8 * b)
		}
		dst[i] = int32((v >> (bit & 7)) & mask) // w <= 32 fits in 8 bytes
		bit += w
	}
}

// deltaHeader is the start of a DELTA_BINARY_PACKED stream.
type deltaHeader struct {
	blockSize, miniBlocks, total int
	first                        int64
}

// decodeDelta decodes a DELTA_BINARY_PACKED stream of exactly n values
// into dst[:n] and returns the bytes it took from src.
func decodeDelta(dst []int64, src []byte, n int) (int, error) {
	var h deltaHeader
	p := 0
	uv := func() (uint64, error) {
		v, k := binary.Uvarint(src[p:])
		if k <= 0 {
			return 0, fmt.Errorf("delta encoding: %w", errTruncated)
		}
		p += k
		return v, nil
	}
	var err error
	var u uint64
	if u, err = uv(); err != nil {
		return 0, err
	}
	if u > 1<<20 {
		return 0, fmt.Errorf("delta encoding: a block of %d values", u)
	}
	h.blockSize = int(u)
	if u, err = uv(); err != nil {
		return 0, err
	}
	if u > 1<<20 {
		return 0, fmt.Errorf("delta encoding: %d miniblocks", u)
	}
	h.miniBlocks = int(u)
	if u, err = uv(); err != nil {
		return 0, err
	}
	if u != uint64(n) {
		return 0, fmt.Errorf("delta encoding holds %d values, the page %d", u, n)
	}
	h.total = n
	if u, err = uv(); err != nil {
		return 0, err
	}
	h.first = int64(u>>1) ^ -int64(u&1)
	if h.blockSize <= 0 || h.blockSize%128 != 0 || h.miniBlocks <= 0 || h.blockSize%h.miniBlocks != 0 ||
		(h.blockSize/h.miniBlocks)%32 != 0 {
		return 0, fmt.Errorf("delta encoding: invalid block size %d with %d miniblocks", h.blockSize, h.miniBlocks)
	}
	if n == 0 {
		return p, nil
	}
	per := h.blockSize / h.miniBlocks
	dst[0] = h.first
	last := h.first
	got := 1
	var tmp [64]uint64
	for got < n {
		u, err := uv()
		if err != nil {
			return 0, err
		}
		minDelta := int64(u>>1) ^ -int64(u&1)
		if len(src)-p < h.miniBlocks {
			return 0, fmt.Errorf("delta encoding: %w in the bit widths", errTruncated)
		}
		widths := src[p : p+h.miniBlocks]
		p += h.miniBlocks
		for m := 0; m < h.miniBlocks && got < n; m++ {
			w := int(widths[m])
			if w > 64 {
				return 0, fmt.Errorf("delta encoding: invalid or corrupted bit width %d", w)
			}
			size := per * w / 8
			if len(src)-p < size {
				return 0, fmt.Errorf("delta encoding: %w in a miniblock", errTruncated)
			}
			mb := src[p : p+size]
			p += size
			for base := 0; base < per && got < n; base += len(tmp) {
				k := min(len(tmp), per-base)
				unpack64(tmp[:k], mb, base*w, w)
				for _, d := range tmp[:min(k, n-got)] {
					last += int64(d) + minDelta
					dst[got] = last
					got++
				}
			}
		}
	}
	return p, nil
}

// unpack64 reads len(dst) values of bit width w (0..64) starting at bit
// offset bit of src.
func unpack64(dst []uint64, src []byte, bit, w int) {
	if w == 0 {
		clear(dst)
		return
	}
	for i := range dst {
		byteOff, shift := bit/8, uint(bit&7)
		var lo uint64
		if byteOff+8 <= len(src) {
			lo = binary.LittleEndian.Uint64(src[byteOff:])
		} else {
			for b := 0; b < 8 && byteOff+b < len(src); b++ {
				lo |= uint64(src[byteOff+b]) << (8 * b)
			}
		}
		v := lo >> shift
		if int(shift)+w > 64 && byteOff+8 < len(src) {
			v |= uint64(src[byteOff+8]) << (64 - shift)
		}
		if w < 64 {
			v &= 1<<w - 1
		}
		dst[i] = v
		bit += w
	}
}
