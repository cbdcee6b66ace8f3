package parquetio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file holds the lean reader's value level: the values of a batch's
// slots decoded from the current data pages into Arrow buffers.

// readBatch decodes the next n slots of the column. With keep (n entries),
// the array holds only the kept slots, kept of them.
func (c *leanColumn) readBatch(n int, keep []bool, kept int) (arrow.Array, error) {
	in := n // slots read
	if keep != nil {
		n = kept // slots handed out
	}
	var valid *memory.Buffer
	var vbits []byte
	if c.maxDef > 0 {
		valid = memory.NewResizableBuffer(c.mem)
		valid.Resize(int(bitutil.BytesForBits(int64(n))))
		vbits = valid.Bytes()
		if keep != nil {
			clear(vbits)
		}
	}
	var vals, offs, data *memory.Buffer
	release := func() {
		for _, b := range []*memory.Buffer{valid, vals, offs, data} {
			if b != nil {
				b.Release()
			}
		}
	}
	b := batchOut{n: n}
	switch {
	case c.dictOut:
		vals = memory.NewResizableBuffer(c.mem)
		vals.Resize(4 * n)
		b.idx = castSlice[int32](vals.Bytes())[:n]
		c.extraOffs, c.extraData = append(c.extraOffs[:0], 0), c.extraData[:0]
		data = memory.NewResizableBuffer(c.mem) // scratch for plain pages
		b.data = data
	case c.kind == leanBytes:
		offs = memory.NewResizableBuffer(c.mem)
		offs.Resize(4 * (n + 1))
		b.offs = castSlice[int32](offs.Bytes())[:n+1]
		b.offs[0] = 0
		data = memory.NewResizableBuffer(c.mem)
		data.Reserve(c.dataBytes + c.dataBytes/8 + 64)
		b.data = data
	default:
		vals = memory.NewResizableBuffer(c.mem)
		vals.Resize(c.width() * n)
		b.fixed = vals.Bytes()[:c.width()*n]
	}
	nulls := 0
	for pos := 0; pos < in; {
		if c.left == 0 {
			if err := c.nextDataPage(); err != nil {
				release()
				return nil, err
			}
		}
		k := min(in-pos, c.left)
		m := k
		var err error
		switch {
		case keep != nil:
			if c.maxDef > 0 {
				m = bitutil.CountSetBits(c.valid, c.slot, k)
				o := b.opos
				for s, kp := range keep[pos : pos+k] {
					if !kp {
						continue
					}
					if bitSet(c.valid, c.slot+s) {
						bitutil.SetBit(vbits, o)
					} else {
						nulls++
					}
					o++
				}
			}
			err = c.decodeSelected(&b, keep[pos:pos+k], k, m)
		case c.maxDef > 0:
			bitutil.CopyBitmap(c.valid, c.slot, k, vbits, pos)
			m = bitutil.CountSetBits(vbits, pos, k)
			nulls += k - m
			fallthrough
		default:
			err = c.decode(&b, vbits, pos, k, m)
		}
		if err != nil {
			release()
			return nil, err
		}
		pos += k
		c.slot += k
		c.left -= k
		c.rowsDue -= int64(k)
	}
	if nulls == 0 && valid != nil {
		valid.Release()
		valid = nil
	}
	var d arrow.ArrayData
	switch {
	case c.dictOut:
		dict := c.dictArr
		if len(c.extraOffs) > 1 || dict == nil {
			// plain values: a dictionary of the chunk's entries and them
			offs := append([]int32(nil), c.dictOffs...)
			if len(offs) == 0 {
				offs = []int32{0}
			}
			base := offs[len(offs)-1]
			for _, o := range c.extraOffs[1:] {
				offs = append(offs, base+o)
			}
			all := append(append([]byte(nil), c.dictData...), c.extraData...)
			dict = c.bytesArray(c.valType, len(offs)-1, nil, 0, offs, all)
		} else {
			dict.Retain()
		}
		idata := array.NewData(arrow.PrimitiveTypes.Int32, n, []*memory.Buffer{valid, vals}, nil, nulls, 0)
		indices := array.MakeFromData(idata)
		idata.Release()
		a := array.NewDictionaryArray(c.typ, indices, dict)
		indices.Release()
		dict.Release()
		release()
		return a, nil
	case c.kind == leanBytes:
		c.dataBytes = b.dlen
		data.ResizeNoShrink(b.dlen)
		d = array.NewData(c.typ, n, []*memory.Buffer{valid, offs, data}, nil, nulls, 0)
	default:
		d = array.NewData(c.typ, n, []*memory.Buffer{valid, vals}, nil, nulls, 0)
	}
	a := array.MakeFromData(d)
	d.Release()
	release()
	return a, nil
}

// batchOut is the batch being filled.
type batchOut struct {
	n     int
	fixed []byte         // fixed-width values
	idx   []int32        // dictionary indices (dictOut)
	offs  []int32        // byte offsets, n+1
	data  *memory.Buffer // bytes, grown by doubling
	dlen  int
	opos  int // the next slot to fill, in selected decoding
}

// appendData appends p to the batch's bytes.
func (b *batchOut) appendData(p []byte) {
	need := b.dlen + len(p)
	if need > b.data.Cap() {
		b.data.Reserve(max(need, 2*b.data.Cap()))
	}
	b.data.ResizeNoShrink(need)
	copy(b.data.Bytes()[b.dlen:need], p)
	b.dlen = need
}

// decode fills slots pos..pos+k of the batch from the page; m of them are
// non-null (their bits are set in vbits, unless the column is required).
func (c *leanColumn) decode(b *batchOut, vbits []byte, pos, k, m int) error {
	dense := m == k
	isValid := func(s int) bool { return dense || bitutil.BitIsSet(vbits, s) }
	switch c.enc {
	case encPlainDict, encRLEDict:
		src := c.idx[c.ipos : c.ipos+m]
		c.ipos += m
		switch {
		case c.dictOut:
			if dense {
				copy(b.idx[pos:pos+k], src)
				return nil
			}
			j := 0
			for s := pos; s < pos+k; s++ {
				if isValid(s) {
					b.idx[s] = src[j]
					j++
				} else {
					b.idx[s] = 0
				}
			}
		case c.kind == leanBytes:
			j := 0
			for s := pos; s < pos+k; s++ {
				if isValid(s) {
					x := src[j]
					b.appendData(c.dictData[c.dictOffs[x]:c.dictOffs[x+1]])
					j++
				}
				b.offs[s+1] = int32(b.dlen)
			}
		case c.kind == leanFixed8:
			spreadDict(castSlice[uint64](b.fixed), castSlice[uint64](c.dictData), src, pos, k, isValid)
		default:
			spreadDict(castSlice[uint32](b.fixed), castSlice[uint32](c.dictData), src, pos, k, isValid)
		}
		return nil
	case encDeltaBinary:
		src := c.ints[c.ipos : c.ipos+m]
		c.ipos += m
		j := 0
		if c.kind == leanFixed8 {
			out := castSlice[int64](b.fixed)
			for s := pos; s < pos+k; s++ {
				if isValid(s) {
					out[s] = src[j]
					j++
				} else {
					out[s] = 0
				}
			}
		} else {
			out := castSlice[int32](b.fixed)
			for s := pos; s < pos+k; s++ {
				if isValid(s) {
					out[s] = int32(src[j])
					j++
				} else {
					out[s] = 0
				}
			}
		}
		return nil
	case encDeltaLength:
		lens := c.ints[c.ipos : c.ipos+m]
		c.ipos += m
		var total int
		for _, l := range lens {
			total += int(l)
		}
		start := b.dlen
		b.appendData(c.vals[c.vpos : c.vpos+total])
		c.vpos += total
		return c.placeBytes(b, vbits, pos, k, lens, start, isValid)
	case encPlain:
		if c.kind != leanBytes {
			w := c.width()
			src := c.vals[c.vpos : c.vpos+m*w]
			c.vpos += m * w
			if dense {
				copy(b.fixed[pos*w:(pos+k)*w], src)
				return nil
			}
			j := 0
			for s := pos; s < pos+k; s++ {
				if isValid(s) {
					copy(b.fixed[s*w:(s+1)*w], src[j*w:(j+1)*w])
					j++
				} else {
					clear(b.fixed[s*w : (s+1)*w])
				}
			}
			return nil
		}
		// PLAIN byte arrays: a 4-byte length before each value
		lens, err := c.plainLengths(m)
		if err != nil {
			return err
		}
		start := b.dlen
		p := c.vpos
		for _, l := range lens {
			b.appendData(c.vals[p+4 : p+4+int(l)])
			p += 4 + int(l)
		}
		c.vpos = p
		return c.placeBytes(b, vbits, pos, k, lens, start, isValid)
	}
	return fmt.Errorf("encoding %d is not supported by the lean reader", c.enc)
}

// spreadDict writes slots pos..pos+k of out: the dictionary value of each
// valid slot's index (src, one per valid slot), zero for NULLs.
func spreadDict[U uint32 | uint64](out, dict []U, src []int32, pos, k int, isValid func(int) bool) {
	j := 0
	for s := pos; s < pos+k; s++ {
		if isValid(s) {
			out[s] = dict[src[j]]
			j++
		} else {
			out[s] = 0
		}
	}
}

// placeBytes ends decoding slots pos..pos+k of byte values whose bytes
// (lens, one per valid slot) were appended to the batch from start: as the
// slots' offsets, or in a dictionary batch as new dictionary entries.
func (c *leanColumn) placeBytes(b *batchOut, vbits []byte, pos, k int, lens []int64, start int, isValid func(int) bool) error {
	if c.dictOut {
		return c.extras(b, vbits, pos, k, lens, b.data.Bytes()[start:b.dlen], start)
	}
	o, j := int32(start), 0
	for s := pos; s < pos+k; s++ {
		if isValid(s) {
			o += int32(lens[j])
			j++
		}
		b.offs[s+1] = o
	}
	return nil
}

// plainLengths reads the lengths of the page's next m PLAIN byte arrays
// (each a 4-byte length before its bytes) into c.ints, checking that the
// values lie inside the page.
func (c *leanColumn) plainLengths(m int) ([]int64, error) {
	if cap(c.ints) < m {
		c.ints = make([]int64, m)
	}
	lens := c.ints[:m]
	p := c.vpos
	for j := range lens {
		if len(c.vals)-p < 4 {
			return nil, fmt.Errorf("plain value: %w", errTruncated)
		}
		l := int(binary.LittleEndian.Uint32(c.vals[p:]))
		if l < 0 || l > len(c.vals)-p-4 {
			return nil, fmt.Errorf("plain value of %d bytes: %w", l, errTruncated)
		}
		lens[j] = int64(l)
		p += 4 + l
	}
	return lens, nil
}

// extras stores plain values read into a dictionary batch as new
// dictionary entries (no data buffer exists in a dictionary batch: the
// bytes were appended to a scratch buffer, which extras then takes back).
func (c *leanColumn) extras(b *batchOut, vbits []byte, pos, k int, lens []int64, vals []byte, start int) error {
	base := int32(c.dictN + len(c.extraOffs) - 1)
	p := 0
	j := 0
	for s := pos; s < pos+k; s++ {
		if c.maxDef == 0 || bitutil.BitIsSet(vbits, s) {
			l := int(lens[j])
			c.extraData = append(c.extraData, vals[p:p+l]...)
			c.extraOffs = append(c.extraOffs, int32(len(c.extraData)))
			b.idx[s] = base
			base++
			p += l
			j++
		} else {
			b.idx[s] = 0
		}
	}
	b.dlen = start
	if len(c.extraData) > math.MaxInt32/2 {
		return errors.New("plain values of a dictionary-read chunk exceed 1 GiB in one batch")
	}
	return nil
}
