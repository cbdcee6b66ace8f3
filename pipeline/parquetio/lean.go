package parquetio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// The lean reader decodes the column chunks of flat files straight into
// Arrow arrays: one pass over each chunk's bytes that verifies every page's
// CRC, decompresses the page into a reused buffer and decodes definition
// levels and values into the batch's buffers (dictionary-encoded strings
// into Arrow dictionaries with int32 indices sharing the chunk's
// dictionary). It covers what common writers (Spark, DuckDB, Arrow,
// parquet-go) produce for scalar columns: INT32, INT64, FLOAT, DOUBLE and
// BYTE_ARRAY, encoded PLAIN, dictionary (RLE_DICTIONARY or
// PLAIN_DICTIONARY), DELTA_BINARY_PACKED or DELTA_LENGTH_BYTE_ARRAY, in
// data pages v1 or v2, uncompressed, Snappy or zstd. A row group with any
// other column falls back to arrow-go, whose output it equals
// (lean_test.go checks this on generated files).

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
		switch {
		case cd.PhysicalType() == parquet.Types.Int32 && oneOf(fld.Type.ID(), arrow.INT32, arrow.UINT32, arrow.DATE32):
			c.kind = leanFixed4
		case cd.PhysicalType() == parquet.Types.Float && fld.Type.ID() == arrow.FLOAT32:
			c.kind = leanFixed4
		case cd.PhysicalType() == parquet.Types.Int64 && oneOf(fld.Type.ID(), arrow.INT64, arrow.UINT64, arrow.TIMESTAMP):
			c.kind = leanFixed8
		case cd.PhysicalType() == parquet.Types.Double && fld.Type.ID() == arrow.FLOAT64:
			c.kind = leanFixed8
		case cd.PhysicalType() == parquet.Types.ByteArray && oneOf(fld.Type.ID(), arrow.STRING, arrow.BINARY):
			c.kind = leanBytes
		default:
			return nil, false
		}
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
		switch c.codec {
		case compress.Codecs.Uncompressed, compress.Codecs.Snappy, compress.Codecs.Zstd:
		default:
			return nil, false
		}
		for _, e := range cc.Encodings() {
			switch int32(e) {
			case encPlain, encPlainDict, encRLEDict, encRLE:
			case encDeltaBinary:
				if c.kind == leanBytes {
					return nil, false
				}
			case encDeltaLength:
				if c.kind != leanBytes {
					return nil, false
				}
			default:
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
					return fmt.Errorf("%s: %w: row group %d, column %s: %w", f.location, ErrCorrupt, rg, cols[i].name, err)
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
				return fmt.Errorf("%s: %w: row group %d, column %s: %w", f.location, ErrCorrupt, rg, c.name, err)
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
			return fmt.Errorf("%s: %w: row group %d, column %s: %w", f.location, ErrCorrupt, rg, c.name, err)
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

// chunkStream reads a column chunk's pages through a window of the file.
type chunkStream struct {
	r         io.ReaderAt
	base, end int64  // file offset of buf[0]; end of the chunk
	buf       []byte // buf[lo:hi] is read and not yet consumed
	lo, hi    int
}

// fill makes at least n bytes available, or every byte left in the chunk.
func (s *chunkStream) fill(n int) error {
	if s.hi-s.lo >= n {
		return nil
	}
	left := s.end - (s.base + int64(s.hi))
	if left <= 0 {
		return nil
	}
	copy(s.buf, s.buf[s.lo:s.hi])
	s.base += int64(s.lo)
	s.hi -= s.lo
	s.lo = 0
	want := int(min(int64(max(n, leanReadSize)), int64(s.hi)+left))
	if want > len(s.buf) {
		nb := make([]byte, want)
		copy(nb, s.buf[:s.hi])
		s.buf = nb
	}
	m, err := s.r.ReadAt(s.buf[s.hi:want], s.base+int64(s.hi))
	s.hi += m
	if m < want-(s.hi-m) && err != nil {
		return fmt.Errorf("reading the column chunk at %d: %w", s.base+int64(s.hi), err)
	}
	return nil
}

// nextPage returns the next page's header and stored body, whose CRC it
// has verified, or io.EOF at the end of the chunk. The body is valid until
// the next call.
func (s *chunkStream) nextPage() (pageHeader, []byte, error) {
	if err := s.fill(256); err != nil {
		return pageHeader{}, nil, err
	}
	if s.lo == s.hi {
		return pageHeader{}, nil, io.EOF
	}
	for {
		h, n, err := parsePageHeader(s.buf[s.lo:s.hi])
		if errors.Is(err, errShortHeader) {
			avail := s.hi - s.lo
			if avail >= maxPageHeader || s.base+int64(s.hi) >= s.end {
				return h, nil, fmt.Errorf("deserializing page header failed: it runs past the end of the column chunk")
			}
			if err := s.fill(min(2*avail+256, maxPageHeader)); err != nil {
				return h, nil, err
			}
			continue
		}
		if err != nil {
			return h, nil, fmt.Errorf("deserializing page header failed: %w", err)
		}
		s.lo += n
		size := int(h.compressedSize)
		if int64(size) > s.end-(s.base+int64(s.lo)) {
			return h, nil, fmt.Errorf("a page of %d bytes runs past the end of the column chunk", size)
		}
		if err := s.fill(size); err != nil {
			return h, nil, err
		}
		body := s.buf[s.lo : s.lo+size]
		s.lo += size
		if h.hasCRC {
			if got := crc32.ChecksumIEEE(body); got != h.crc {
				return h, nil, fmt.Errorf("%w (stored CRC %08x, computed %08x)", ErrChecksum, h.crc, got)
			}
		}
		return h, body, nil
	}
}

var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxLeanPageBytes))
})

// decompress returns src decompressed into dst (reused), which must come
// to exactly size bytes.
func decompress(codec compress.Compression, dst, src []byte, size int) ([]byte, error) {
	if size < 0 || size > maxLeanPageBytes {
		return nil, fmt.Errorf("a page declares %d bytes uncompressed", size)
	}
	switch codec {
	case compress.Codecs.Uncompressed:
		if len(src) != size {
			return nil, fmt.Errorf("an uncompressed page of %d bytes declares %d", len(src), size)
		}
		return src, nil
	case compress.Codecs.Snappy:
		n, err := s2.DecodedLen(src)
		if err != nil || n != size {
			return nil, fmt.Errorf("snappy page: %d bytes declared, %d found (%v)", size, n, err)
		}
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		out, err := s2.Decode(dst[:n], src)
		if err != nil {
			return nil, fmt.Errorf("snappy page: %w", err)
		}
		return out, nil
	case compress.Codecs.Zstd:
		d, err := zstdDecoder()
		if err != nil {
			return nil, err
		}
		if cap(dst) < size {
			dst = make([]byte, 0, size)
		}
		out, err := d.DecodeAll(src, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd page: %w", err)
		}
		if len(out) != size {
			return nil, fmt.Errorf("zstd page: %d bytes declared, %d found", size, len(out))
		}
		return out, nil
	}
	return nil, fmt.Errorf("compression %v is not supported by the lean reader", codec)
}

// nextDataPage loads the next data page, reading a dictionary page first
// when one comes.
func (c *leanColumn) nextDataPage() error {
	for {
		h, body, err := c.s.nextPage()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the column chunk ends after %d pages with %d rows still due", c.pages, c.rowsDue)
		}
		if err != nil {
			return fmt.Errorf("page %d: %w", c.pages+1, err)
		}
		c.pages++
		switch h.pageType {
		case pageDictionary:
			if err := c.loadDictionary(h, body); err != nil {
				return fmt.Errorf("dictionary page: %w", err)
			}
			continue
		case pageData, pageDataV2:
		default:
			continue // index pages and unknown pages carry no values
		}
		if !h.hasData {
			return fmt.Errorf("page %d: a data page without its data page header", c.pages)
		}
		if h.numValues < 0 || int64(h.numValues) > c.rowsDue {
			return fmt.Errorf("page %d declares %d values with %d rows due", c.pages, h.numValues, c.rowsDue)
		}
		if h.numValues == 0 {
			continue
		}
		if err := c.loadDataPage(h, body); err != nil {
			return fmt.Errorf("page %d: %w", c.pages, err)
		}
		return nil
	}
}

func (c *leanColumn) width() int {
	if c.kind == leanFixed4 {
		return 4
	}
	return 8
}

func (c *leanColumn) loadDictionary(h pageHeader, body []byte) error {
	if c.hasDict {
		return errors.New("a second dictionary page in one column chunk")
	}
	if h.dictEncoding != encPlain && h.dictEncoding != encPlainDict {
		return fmt.Errorf("dictionary encoding %d is not PLAIN", h.dictEncoding)
	}
	if h.dictValues < 0 {
		return fmt.Errorf("%d dictionary entries", h.dictValues)
	}
	raw, err := decompress(c.codec, c.dec, body, int(h.uncompressedSize))
	if err != nil {
		return err
	}
	n := int(h.dictValues)
	if c.kind == leanBytes {
		offs := make([]int32, n+1)
		data := make([]byte, 0, max(len(raw)-4*n, 0))
		p := 0
		for i := 0; i < n; i++ {
			if len(raw)-p < 4 {
				return fmt.Errorf("dictionary value %d: %w", i, errTruncated)
			}
			l := int(binary.LittleEndian.Uint32(raw[p:]))
			p += 4
			if l < 0 || l > len(raw)-p {
				return fmt.Errorf("dictionary value %d of %d bytes: %w", i, l, errTruncated)
			}
			data = append(data, raw[p:p+l]...)
			p += l
			offs[i+1] = int32(len(data))
		}
		c.dictOffs, c.dictData = offs, data
	} else {
		w := c.width()
		if len(raw) < n*w {
			return fmt.Errorf("%d dictionary values of %d bytes in %d bytes", n, w, len(raw))
		}
		c.dictData = append([]byte(nil), raw[:n*w]...)
	}
	if c.codec != compress.Codecs.Uncompressed {
		c.dec = raw
	}
	c.dictN, c.hasDict = n, true
	if c.dictOut {
		c.dictArr = c.bytesArray(c.valType, n, nil, 0, c.dictOffs, c.dictData)
	}
	return nil
}

// bytesArray builds a string or binary array over copies of offs and data.
func (c *leanColumn) bytesArray(typ arrow.DataType, n int, valid *memory.Buffer, nulls int, offs []int32, data []byte) arrow.Array {
	ob := memory.NewResizableBuffer(c.mem)
	ob.Resize(4 * (n + 1))
	copy(ob.Bytes(), asBytes(offs[:n+1]))
	db := memory.NewResizableBuffer(c.mem)
	db.Resize(len(data))
	copy(db.Bytes(), data)
	d := array.NewData(typ, n, []*memory.Buffer{valid, ob, db}, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	ob.Release()
	db.Release()
	return a
}

func (c *leanColumn) loadDataPage(h pageHeader, body []byte) error {
	n := int(h.numValues)
	var levels, values []byte
	if h.pageType == pageDataV2 {
		rl, dl := int(h.repLevelsLen), int(h.defLevelsLen)
		if rl != 0 {
			return fmt.Errorf("nonzero repetition level bytes (%d) in a flat column", rl)
		}
		if dl < 0 || dl > len(body) {
			return fmt.Errorf("definition levels of %d bytes in a %d-byte page", dl, len(body))
		}
		levels = body[:dl]
		rest := body[dl:]
		if h.uncompressed {
			values = rest
		} else {
			var err error
			if c.dec, err = decompress(c.codec, c.dec, rest, int(h.uncompressedSize)-dl); err != nil {
				return err
			}
			values = c.dec
		}
	} else {
		raw, err := decompress(c.codec, c.dec, body, int(h.uncompressedSize))
		if err != nil {
			return err
		}
		if c.codec != compress.Codecs.Uncompressed {
			c.dec = raw
		}
		values = raw
		if c.maxDef > 0 {
			if h.defEncoding != encRLE {
				return fmt.Errorf("definition levels encoded %d, not RLE", h.defEncoding)
			}
			if len(raw) < 4 {
				return fmt.Errorf("definition levels: %w", errTruncated)
			}
			l := int(binary.LittleEndian.Uint32(raw))
			if l < 0 || l > len(raw)-4 {
				return fmt.Errorf("definition levels of %d bytes: %w", l, errTruncated)
			}
			levels, values = raw[4:4+l], raw[4+l:]
		}
	}
	nonNull := n
	if c.maxDef > 0 {
		if nb := (n + 7) / 8; cap(c.valid) < nb {
			c.valid = make([]byte, nb)
		} else {
			c.valid = c.valid[:nb]
		}
		var err error
		if nonNull, err = decodeDefLevels(c.valid, levels, n); err != nil {
			return err
		}
	}
	c.enc, c.vals, c.vpos, c.ipos = h.encoding, values, 0, 0
	switch h.encoding {
	case encPlain:
		if c.kind != leanBytes && len(values) < nonNull*c.width() {
			return fmt.Errorf("%d values of %d bytes in %d bytes", nonNull, c.width(), len(values))
		}
	case encPlainDict, encRLEDict:
		if !c.hasDict {
			return errors.New("dictionary-encoded values without a dictionary page")
		}
		if len(values) < 1 && nonNull > 0 {
			return fmt.Errorf("dictionary indices: %w", errTruncated)
		}
		if cap(c.idx) < nonNull {
			c.idx = make([]int32, nonNull)
		}
		c.idx = c.idx[:nonNull]
		if nonNull > 0 {
			if err := hybridInt32(c.idx, values[1:], int(values[0]), nonNull); err != nil {
				return fmt.Errorf("dictionary indices: %w", err)
			}
			for _, x := range c.idx {
				if uint32(x) >= uint32(c.dictN) {
					return fmt.Errorf("dictionary index %d out of range for %d entries", x, c.dictN)
				}
			}
		}
	case encDeltaBinary, encDeltaLength:
		if (h.encoding == encDeltaBinary) == (c.kind == leanBytes) {
			return fmt.Errorf("encoding %d does not apply to this column", h.encoding)
		}
		if cap(c.ints) < nonNull {
			c.ints = make([]int64, nonNull)
		}
		c.ints = c.ints[:nonNull]
		p, err := decodeDelta(c.ints, values, nonNull)
		if err != nil {
			return err
		}
		if h.encoding == encDeltaLength {
			var sum int64
			for _, l := range c.ints {
				if l < 0 || l > math.MaxInt32 {
					return fmt.Errorf("a value length of %d", l)
				}
				sum += l
			}
			if sum > int64(len(values)-p) {
				return fmt.Errorf("values of %d bytes in %d: %w", sum, len(values)-p, errTruncated)
			}
			c.vpos = p
		}
	default:
		return fmt.Errorf("encoding %d is not supported by the lean reader", h.encoding)
	}
	c.left, c.slot = n, 0
	return nil
}

// readBatch decodes the next n rows of the column.
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
			out := castSlice[uint64](b.fixed)
			dict := castSlice[uint64](c.dictData)
			j := 0
			for s := pos; s < pos+k; s++ {
				if isValid(s) {
					out[s] = dict[src[j]]
					j++
				} else {
					out[s] = 0
				}
			}
		default:
			out := castSlice[uint32](b.fixed)
			dict := castSlice[uint32](c.dictData)
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
	return fmt.Errorf("encoding %d is not supported by the lean reader", c.enc)
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
