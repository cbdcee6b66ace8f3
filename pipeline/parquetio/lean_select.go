package parquetio

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file holds the lean reader's selected decoding: with a RowFilter,
// the filter's columns of a batch are decoded first, and the other columns
// only copy the values of the rows the filter keeps. A retention sweep that
// removes most rows then copies most values never: the pages are still
// decompressed, and removed values skipped by their lengths.

// RowFilter lets ReadRowGroup leave out the rows a filter removes before
// the other columns are decoded.
type RowFilter struct {
	// Columns are the positions, in ReadOptions.Columns, of the columns
	// Select reads.
	Columns []int
	// Select receives the filter columns of a batch (every row, in Columns
	// order) and returns which rows to keep (one entry per row), how many
	// that is, and the filter columns with only those rows, in Columns
	// order: new references, which the reader releases. fn then receives
	// batches of kept rows only.
	Select func(cols []arrow.Array) (keep []bool, kept int, filtered []arrow.Array, err error)
}

// checkSelection checks what a RowFilter's Select returned for a batch of
// n rows and w filter columns.
func checkSelection(n int, keep []bool, kept int, filtered []arrow.Array, w int) error {
	if len(keep) != n || len(filtered) != w {
		return fmt.Errorf("row filter: %d rows and %d columns selected from %d rows and %d columns", len(keep), len(filtered), n, w)
	}
	count := 0
	for _, k := range keep {
		if k {
			count++
		}
	}
	if count != kept {
		return fmt.Errorf("row filter: %d rows said kept, %d selected", kept, count)
	}
	for _, a := range filtered {
		if a.Len() != kept {
			return fmt.Errorf("row filter: a filtered column of %d rows, %d kept", a.Len(), kept)
		}
	}
	return nil
}

// filterBatch applies flt to a batch decoded in full (by arrow-go) and
// calls fn with the kept rows.
func filterBatch(mem memory.Allocator, flt *RowFilter, rec arrow.RecordBatch, fn func(arrow.RecordBatch) error) error {
	n := int(rec.NumRows())
	in := make([]arrow.Array, len(flt.Columns))
	for j, i := range flt.Columns {
		in[j] = rec.Column(i)
	}
	keep, kept, filtered, err := flt.Select(in)
	if err != nil {
		return err
	}
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, a := range cols {
			if a != nil {
				a.Release()
			}
		}
	}()
	for j, i := range flt.Columns {
		cols[i] = filtered[j]
	}
	if err := checkSelection(n, keep, kept, filtered, len(flt.Columns)); err != nil {
		return err
	}
	mb := array.NewBooleanBuilder(mem)
	mb.AppendValues(keep, nil)
	mask := mb.NewBooleanArray()
	mb.Release()
	defer mask.Release()
	for i := range cols {
		if cols[i] != nil {
			continue
		}
		out, err := compute.FilterArray(context.Background(), rec.Column(i), mask, *compute.DefaultFilterOptions())
		if err != nil {
			return fmt.Errorf("filter column %q: %w", rec.ColumnName(i), err)
		}
		cols[i] = out
	}
	out := array.NewRecordBatch(rec.Schema(), cols, int64(kept))
	defer out.Release()
	return fn(out)
}

// decodeSelected decodes the next k slots of the page, of which m are
// non-null, keeping the slots keep (k entries) selects: they fill the
// batch from slot b.opos on. Removed values are skipped, never copied.
func (c *leanColumn) decodeSelected(b *batchOut, keep []bool, k, m int) error {
	dense := m == k
	valid := func(s int) bool { return dense || bitSet(c.valid, c.slot+s) }
	o := b.opos
	switch c.enc {
	case encPlainDict, encRLEDict:
		src := c.idx[c.ipos : c.ipos+m]
		c.ipos += m
		j := 0
		switch {
		case c.dictOut:
			for s := 0; s < k; s++ {
				v := valid(s)
				if keep[s] {
					b.idx[o] = 0
					if v {
						b.idx[o] = src[j]
					}
					o++
				}
				if v {
					j++
				}
			}
		case c.kind == leanBytes:
			for s := 0; s < k; s++ {
				v := valid(s)
				if keep[s] {
					if v {
						x := src[j]
						b.appendData(c.dictData[c.dictOffs[x]:c.dictOffs[x+1]])
					}
					b.offs[o+1] = int32(b.dlen)
					o++
				}
				if v {
					j++
				}
			}
		case c.kind == leanFixed8:
			o = selectFixed(castSlice[uint64](b.fixed), castSlice[uint64](c.dictData), src, keep, valid, o)
		default:
			o = selectFixed(castSlice[uint32](b.fixed), castSlice[uint32](c.dictData), src, keep, valid, o)
		}
	case encDeltaBinary:
		src := c.ints[c.ipos : c.ipos+m]
		c.ipos += m
		j := 0
		for s := 0; s < k; s++ {
			v := valid(s)
			if keep[s] {
				var x int64
				if v {
					x = src[j]
				}
				if c.kind == leanFixed8 {
					castSlice[int64](b.fixed)[o] = x
				} else {
					castSlice[int32](b.fixed)[o] = int32(x)
				}
				o++
			}
			if v {
				j++
			}
		}
	case encDeltaLength:
		lens := c.ints[c.ipos : c.ipos+m]
		c.ipos += m
		var err error
		if o, c.vpos, err = c.selectBytes(b, keep, valid, lens, c.vpos, 0, o); err != nil {
			return err
		}
	case encPlain:
		if c.kind != leanBytes {
			w := c.width()
			src := c.vals[c.vpos : c.vpos+m*w]
			c.vpos += m * w
			j := 0
			for s := 0; s < k; s++ {
				v := valid(s)
				if keep[s] {
					if v {
						copy(b.fixed[o*w:(o+1)*w], src[j*w:(j+1)*w])
					} else {
						clear(b.fixed[o*w : (o+1)*w])
					}
					o++
				}
				if v {
					j++
				}
			}
			break
		}
		// PLAIN byte arrays: a 4-byte length before each value
		lens, err := c.plainLengths(m)
		if err != nil {
			return err
		}
		if o, c.vpos, err = c.selectBytes(b, keep, valid, lens, c.vpos, 4, o); err != nil {
			return err
		}
	default:
		return fmt.Errorf("encoding %d is not supported by the lean reader", c.enc)
	}
	b.opos = o
	return nil
}

// selectFixed writes the dictionary values of the kept slots from slot o
// on, and returns the next slot.
func selectFixed[U uint32 | uint64](out, dict []U, src []int32, keep []bool, valid func(int) bool, o int) int {
	j := 0
	for s := range keep {
		v := valid(s)
		if keep[s] {
			out[o] = 0
			if v {
				out[o] = dict[src[j]]
			}
			o++
		}
		if v {
			j++
		}
	}
	return o
}

// selectBytes copies the kept values among the byte strings that start at
// c.vals[p:], each of lens' lengths and preceded by gap bytes (PLAIN's
// length prefix), into the batch from slot o on (or, for a dictionary
// batch, into new dictionary entries), and returns the next slot and the
// position after the last value.
func (c *leanColumn) selectBytes(b *batchOut, keep []bool, valid func(int) bool, lens []int64, p, gap, o int) (int, int, error) {
	base := int32(c.dictN + len(c.extraOffs) - 1)
	j := 0
	for s := range keep {
		v := valid(s)
		var val []byte
		if v {
			p += gap
			val = c.vals[p : p+int(lens[j])]
			p += int(lens[j])
			j++
		}
		if !keep[s] {
			continue
		}
		switch {
		case c.dictOut && v:
			c.extraData = append(c.extraData, val...)
			c.extraOffs = append(c.extraOffs, int32(len(c.extraData)))
			b.idx[o] = base
			base++
		case c.dictOut:
			b.idx[o] = 0
		default:
			b.appendData(val)
			b.offs[o+1] = int32(b.dlen)
		}
		o++
	}
	if len(c.extraData) > math.MaxInt32/2 {
		return o, p, errors.New("plain values of a dictionary-read chunk exceed 1 GiB in one batch")
	}
	return o, p, nil
}
