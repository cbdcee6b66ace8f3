package parquetio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// The lean reader decodes the column chunks of flat files straight into
// Arrow arrays: one pass over each chunk's bytes that verifies every page's
// CRC, decompresses the page into a reused buffer and decodes definition
// levels and values into the batch's buffers (dictionary-encoded strings
// into Arrow dictionaries with int32 indices sharing the chunk's
// dictionary). It covers what common writers (Spark, DuckDB, Arrow,
// parquet-go) produce for scalar columns, as support.go's tables list
// them: INT32, INT64, FLOAT, DOUBLE and BYTE_ARRAY, encoded PLAIN,
// dictionary (RLE_DICTIONARY or PLAIN_DICTIONARY), DELTA_BINARY_PACKED or
// DELTA_LENGTH_BYTE_ARRAY, in data pages v1 or v2, uncompressed, Snappy or
// zstd. A row group with any other column falls back to arrow-go, whose
// output it equals (lean_test.go and support_test.go check this on
// generated files).

// Parquet encodings, page types and the limits of the lean reader.
const (
	encPlain         = 0
	encPlainDict     = 2
	encRLE           = 3
	encBitPacked     = 4
	encDeltaBinary   = 5
	encDeltaLength   = 6
	encRLEDict       = 8
	pageData         = 0
	pageIndex        = 1
	pageDictionary   = 2
	pageDataV2       = 3
	leanReadSize     = 1 << 20 // bytes read from the file at a time, per column
	maxLeanPageBytes = 1 << 30 // a page larger than this, decompressed, is refused
)

// leanKind is how a column's values are laid out.
type leanKind uint8

const (
	leanFixed4 leanKind = iota // INT32, FLOAT
	leanFixed8                 // INT64, DOUBLE
	leanBytes                  // BYTE_ARRAY
)

// leanColumn is one column chunk being read.
type leanColumn struct {
	name    string
	rowGrp  int
	kind    leanKind
	typ     arrow.DataType // the type of the arrays handed out
	valType arrow.DataType // the value type (typ's, or its dictionary's)
	dictOut bool
	maxDef  int
	codec   compress.Compression
	mem     memory.Allocator
	s       chunkStream
	pages   int
	rowsDue int64 // rows of the chunk not yet decoded

	// the current data page
	left, slot int    // slots left, next slot
	valid      []byte // the page's validity bitmap (maxDef > 0)
	enc        int32
	vals       []byte  // the value section (plain, delta-length bytes)
	vpos       int     // read position in vals
	idx        []int32 // dictionary indices of the page's non-null values
	ints       []int64 // delta-binary-packed integers, delta-length lengths
	ipos       int     // read position in idx or ints
	dec        []byte  // decompression buffer

	// the chunk's dictionary
	hasDict   bool
	dictN     int
	dictOffs  []int32 // bytes: offsets into dictData, dictN+1
	dictData  []byte  // bytes: values; fixed: dictN values of the width
	dictArr   arrow.Array
	dataBytes int // the last batch's value bytes, to size the next

	// dictOut: values of plain pages in a dictionary-read chunk (a writer's
	// dictionary fallback), appended to the dictionary of their batch
	extraOffs []int32
	extraData []byte
}

// leanPlan returns the lean readers for columns cols of row group rg, or
// false when some column needs arrow-go.
func (f *File) leanPlan(rg int, opt ReadOptions) ([]*leanColumn, bool) {
	md := f.pf.MetaData()
	if md.Schema.NumColumns() != f.schema.NumFields() || len(opt.Columns) == 0 {
		return nil, false
	}
	rgm := md.RowGroup(rg)
	cols := make([]*leanColumn, 0, len(opt.Columns))
	for _, leaf := range opt.Columns {
		if leaf < 0 || leaf >= md.Schema.NumColumns() {
			return nil, false
		}
		cd := md.Schema.Column(leaf)
		if cd.MaxRepetitionLevel() != 0 || cd.MaxDefinitionLevel() > 1 || len(cd.ColumnPath()) != 1 {
			return nil, false
		}
		fld := f.schema.Field(leaf)
		if fld.Name != cd.Name() {
			return nil, false
		}
		c := &leanColumn{name: cd.Path(), rowGrp: rg, typ: fld.Type, valType: fld.Type, maxDef: int(cd.MaxDefinitionLevel()), mem: f.mem}
		kind, encodings, ok := leanKindOf(cd.PhysicalType(), fld.Type.ID())
		if !ok {
			return nil, false
		}
		c.kind = kind
		if opt.Dictionary[leaf] {
			if c.kind != leanBytes {
				return nil, false
			}
			c.dictOut = true
			c.typ = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: fld.Type}
		}
		cc, err := rgm.ColumnChunk(leaf)
		if err != nil {
			return nil, false
		}
		c.codec = cc.Compression()
		if !slices.Contains(leanCodecs, c.codec) {
			return nil, false
		}
		for _, e := range cc.Encodings() {
			if !slices.Contains(encodings, int32(e)) {
				return nil, false
			}
		}
		start := cc.DataPageOffset()
		if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
			start = cc.DictionaryPageOffset()
		}
		c.s = chunkStream{r: f.raw, base: start, end: start + cc.TotalCompressedSize()}
		c.rowsDue = rgm.NumRows()
		cols = append(cols, c)
	}
	return cols, true
}

func oneOf(id arrow.Type, ids ...arrow.Type) bool {
	for _, x := range ids {
		if id == x {
			return true
		}
	}
	return false
}

// readLean decodes row group rg with the lean reader.
func (f *File) readLean(ctx context.Context, rg int, opt ReadOptions, cols []*leanColumn, fn func(arrow.RecordBatch) error) error {
	defer func() {
		for _, c := range cols {
			c.release()
		}
	}()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = f.schema.Field(opt.Columns[i])
		fields[i].Type = c.typ
	}
	sch := arrow.NewSchema(fields, nil)
	total := f.pf.MetaData().RowGroup(rg).NumRows()
	batch := max(opt.BatchSize, 1)
	arrays := make([]arrow.Array, len(cols))
	for done := int64(0); done < total; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(batch, total-done))
		clear(arrays)
		release := func() {
			for _, x := range arrays {
				if x != nil {
					x.Release()
				}
			}
		}
		var keep []bool
		rows := n
		if flt := opt.Filter; flt != nil {
			in := make([]arrow.Array, len(flt.Columns))
			for j, i := range flt.Columns {
				a, err := cols[i].readBatch(n, nil, 0)
				if err != nil {
					for _, x := range in[:j] {
						x.Release()
					}
					return fmt.Errorf("%s: %w: row group %d, column %q: %w", quoteLocation(f.location), ErrCorrupt, rg, cols[i].name, err)
				}
				in[j] = a
			}
			var filtered []arrow.Array
			var err error
			keep, rows, filtered, err = flt.Select(in)
			for _, x := range in {
				x.Release()
			}
			if err != nil {
				return err
			}
			if err := checkSelection(n, keep, rows, filtered, len(flt.Columns)); err != nil {
				return err
			}
			for j, i := range flt.Columns {
				arrays[i] = filtered[j]
			}
		}
		for i, c := range cols {
			if arrays[i] != nil {
				continue
			}
			a, err := c.readBatch(n, keep, rows)
			if err != nil {
				release()
				return fmt.Errorf("%s: %w: row group %d, column %q: %w", quoteLocation(f.location), ErrCorrupt, rg, c.name, err)
			}
			arrays[i] = a
		}
		rec := array.NewRecordBatch(sch, arrays, int64(rows))
		for _, a := range arrays {
			a.Release()
		}
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
		done += int64(n)
	}
	// the pages after the last row carry no values; their CRCs are checked
	for _, c := range cols {
		if err := c.finish(); err != nil {
			return fmt.Errorf("%s: %w: row group %d, column %q: %w", quoteLocation(f.location), ErrCorrupt, rg, c.name, err)
		}
	}
	return nil
}

func (c *leanColumn) release() {
	if c.dictArr != nil {
		c.dictArr.Release()
		c.dictArr = nil
	}
}

// finish reads the chunk's remaining pages, which must hold no values.
func (c *leanColumn) finish() error {
	if c.left > 0 {
		return fmt.Errorf("page %d holds %d values more than the row group has rows", c.pages, c.left)
	}
	for {
		h, _, err := c.s.nextPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		c.pages++
		if (h.pageType == pageData || h.pageType == pageDataV2) && h.numValues > 0 {
			return fmt.Errorf("page %d holds %d values more than the row group has rows", c.pages, h.numValues)
		}
	}
}
