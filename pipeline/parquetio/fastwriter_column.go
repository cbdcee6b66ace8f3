package parquetio

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go/format"
)

// fastKind is how a column's values are encoded.
type fastKind uint8

const (
	kindBytes   fastKind = iota // BYTE_ARRAY: utf8, binary
	kindInt32                   // INT32: int32, date32
	kindInt64                   // INT64: int64, timestamps
	kindFloat32                 // FLOAT
	kindFloat64                 // DOUBLE
	kindBool                    // BOOLEAN
)

// data page counts by encoding
const (
	pagesPlain = iota
	pagesDict
)

// fastColumn buffers one column's chunk of the current row group: its data
// pages, compressed, and its dictionary. The dictionary page is written
// first when the chunk is flushed.
type fastColumn struct {
	name    string
	kind    fastKind
	width   int // bytes of a fixed-width value
	phys    format.Type
	dense   arrow.DataType
	opt     *fastOptions
	useDict bool // the column may be dictionary-encoded

	// chunk
	dictMode     bool       // data pages are dictionary-encoded (until fallback)
	bdict        *bytesDict // the chunk dictionary, if useDict
	fdict        *fixedDict
	dataPages    [2]int32
	coding       [2]pageCoding // data pages, dictionary page
	dictSize     int           // the sealed dictionary page's uncompressed size, header included
	uncompressed int64         // headers and uncompressed bodies of the data pages
	numValues    int64
	nullCount    int64
	pageNullBase int64 // nullCount when the current page began
	cutBefore    bool  // the next value is larger than a page: cut the current one first
	plainNext    bool  // fallback: the page being cut is the chunk's last dictionary-encoded one
	stats        fastStats

	// the last input dictionary (retained) and its view; remap translates
	// its entries to the chunk dictionary's
	inDict arrow.ArrayData
	inView bytesView

	*colBufs
}

// colBufs are a column's buffers. They are reused across pages and row
// groups and, through a pool per column name, across writers.
type colBufs struct {
	chunk []byte // data pages: headers and stored bodies

	// current page
	def   bitBuf   // definition levels
	plain []byte   // PLAIN values
	idx   []uint32 // dictionary indices
	bools bitBuf   // PLAIN booleans

	remap []int32 // input dictionary entry -> chunk entry, -1 when not seen
	bd    bytesDict
	fd    fixedDict

	// scratch
	comp     []byte // the page being compressed's output (see pageBufs)
	dictPage []byte
	idxConv  []int32
	valid    bitBuf
}

var colBufPools sync.Map // pool key -> *sync.Pool of *colBufs

func getColBufs(key string) *colBufs {
	if p, ok := colBufPools.Load(key); ok {
		if b, ok := p.(*sync.Pool).Get().(*colBufs); ok {
			return b
		}
	}
	return new(colBufs)
}

func putColBufs(key string, b *colBufs) {
	b.chunk, b.plain, b.idx, b.remap = b.chunk[:0], b.plain[:0], b.idx[:0], b.remap[:0]
	b.dictPage, b.idxConv = b.dictPage[:0], b.idxConv[:0]
	b.def.reset()
	b.bools.reset()
	b.valid.reset()
	b.bd.reset()
	b.fd.reset()
	p, _ := colBufPools.LoadOrStore(key, new(sync.Pool))
	p.(*sync.Pool).Put(b)
}

func (c *fastColumn) poolKey() string { return fmt.Sprintf("%d\x00%s", c.kind, c.name) }

// bytesView gives the values of a utf8 or binary array.
type bytesView struct {
	offs []int32 // logical, len+1 entries
	data []byte
}

func (v bytesView) value(i int) []byte { return v.data[v.offs[i]:v.offs[i+1]] }

func bytesViewOf(d arrow.ArrayData) bytesView {
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return bytesView{}
	}
	offs := castSlice[int32](d.Buffers()[1].Bytes())[d.Offset() : d.Offset()+d.Len()+1]
	var data []byte
	if b := d.Buffers()[2]; b != nil {
		data = b.Bytes()
	}
	return bytesView{offs: offs, data: data}
}

// castSlice reinterprets b as a slice of fixed-width values (little endian).
func castSlice[T any](b []byte) []T {
	var z T
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/int(unsafe.Sizeof(z)))
}

func asBytes[T any](s []T) []byte {
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(z)))
}

// fixedValues returns the logical values of a fixed-width array.
func fixedValues[U uint32 | uint64](d arrow.ArrayData) []U {
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return nil
	}
	return castSlice[U](d.Buffers()[1].Bytes())[d.Offset() : d.Offset()+d.Len()]
}

// fastInput is one batch's column, ready for the encoding loops. Slot i is
// null when hasNulls and bit voff+i of valid is clear.
type fastInput struct {
	valid    []byte
	voff     int
	hasNulls bool
	bytes    bytesView // dense utf8 or binary
	dict     bool      // a dictionary array:
	idx      []int32   // its indices
	dview    bytesView // its dictionary
	u32      []uint32
	u64      []uint64
	bits     []byte // booleans
	boff     int
}

// accepts checks that arr can be written to the column.
func (c *fastColumn) accepts(arr arrow.Array) error {
	if dt, ok := arr.DataType().(*arrow.DictionaryType); ok {
		if c.kind == kindBytes && arrow.IsInteger(dt.IndexType.ID()) && arrow.TypeEqual(dt.ValueType, c.dense) {
			return nil
		}
	} else if arrow.TypeEqual(arr.DataType(), c.dense) {
		return nil
	}
	return fmt.Errorf("column %q: batch brings %s, the part's schema %s", c.name, arr.DataType(), c.dense)
}

func (c *fastColumn) prepare(arr arrow.Array) fastInput {
	d := arr.Data()
	in := fastInput{voff: d.Offset(), hasNulls: arr.NullN() > 0}
	if in.hasNulls {
		in.valid = arr.NullBitmapBytes()
	}
	switch a := arr.(type) {
	case *array.Dictionary:
		in.dict = true
		in.idx = c.indices(a.Indices())
		dd := d.Dictionary()
		in.dview = bytesViewOf(dd)
		if c.useDict {
			c.useInputDict(dd, in.dview)
		}
		if dd.NullN() > 0 {
			c.combineValidity(&in, dd, arr.Len())
		}
	case *array.String, *array.Binary:
		in.bytes = bytesViewOf(d)
	case *array.Boolean:
		if d.Len() > 0 {
			in.bits, in.boff = d.Buffers()[1].Bytes(), d.Offset()
		}
	default:
		if c.width == 4 {
			in.u32 = fixedValues[uint32](d)
		} else {
			in.u64 = fixedValues[uint64](d)
		}
	}
	return in
}

// indices returns a dictionary array's indices as int32.
func (c *fastColumn) indices(a arrow.Array) []int32 {
	switch a := a.(type) {
	case *array.Int32:
		return a.Int32Values()
	case *array.Int8:
		return convertIndices(c, a.Int8Values())
	case *array.Uint8:
		return convertIndices(c, a.Uint8Values())
	case *array.Int16:
		return convertIndices(c, a.Int16Values())
	case *array.Uint16:
		return convertIndices(c, a.Uint16Values())
	case *array.Uint32:
		return convertIndices(c, a.Uint32Values())
	case *array.Int64:
		return convertIndices(c, a.Int64Values())
	case *array.Uint64:
		return convertIndices(c, a.Uint64Values())
	}
	panic(fmt.Sprintf("column %q: dictionary indices of type %s", c.name, a.DataType()))
}

func convertIndices[T int8 | uint8 | int16 | uint16 | uint32 | int64 | uint64](c *fastColumn, src []T) []int32 {
	c.idxConv = c.idxConv[:0]
	for _, v := range src {
		c.idxConv = append(c.idxConv, int32(v))
	}
	return c.idxConv
}

// combineValidity makes slots whose dictionary entry is null null.
func (c *fastColumn) combineValidity(in *fastInput, dd arrow.ArrayData, n int) {
	dvalid, doff := dd.Buffers()[0].Bytes(), dd.Offset()
	c.valid.reset()
	for i := 0; i < n; i++ {
		ok := !in.hasNulls || bitSet(in.valid, in.voff+i)
		c.valid.appendBit(ok && bitSet(dvalid, doff+int(in.idx[i])))
	}
	in.valid, in.voff, in.hasNulls = c.valid.b, 0, true
}

// useInputDict makes remap translate dd's entries: kept when dd is the
// dictionary last seen or has the same contents, grown when dd extends it
// (see extendsDictionary), reset otherwise.
func (c *fastColumn) useInputDict(dd arrow.ArrayData, view bytesView) {
	if c.inDict == dd {
		return
	}
	grown := c.inDict != nil && extendsDictionary(c.inDict, c.inView, dd, view)
	same := !grown && c.inDict != nil && sameDictionary(c.inDict, c.inView, dd, view)
	dd.Retain()
	if c.inDict != nil {
		c.inDict.Release()
	}
	c.inDict, c.inView = dd, view
	switch {
	case grown:
		for len(c.remap) < dd.Len() {
			c.remap = append(c.remap, -1)
		}
	case !same:
		c.remap = resetRemap(c.remap, dd.Len())
	}
}

func resetRemap(r []int32, n int) []int32 {
	if cap(r) < n {
		r = make([]int32, n)
	}
	r = r[:n]
	for i := range r {
		r[i] = -1
	}
	return r
}

// extendsDictionary reports whether b holds a's entries, then more: b's
// offsets and values start in the same memory as a's, and a, retained by
// the caller, is immutable as every Arrow array is, so that memory still
// holds a's entries. transforms.DictionaryCache hands the batches of a
// large dictionary such growing dictionaries, and the column then keeps
// what it learned about their entries instead of looking every row's value
// up again. Comparing contents would cost as much as that.
func extendsDictionary(a arrow.ArrayData, av bytesView, b arrow.ArrayData, bv bytesView) bool {
	if a.Len() == 0 || b.Len() < a.Len() || a.NullN() > 0 || b.NullN() > 0 {
		return false
	}
	if unsafe.SliceData(av.offs) != unsafe.SliceData(bv.offs) {
		return false
	}
	return av.offs[a.Len()] == av.offs[0] || unsafe.SliceData(av.data) == unsafe.SliceData(bv.data)
}

// sameDictionary compares two utf8 or binary dictionaries' contents.
func sameDictionary(a arrow.ArrayData, av bytesView, b arrow.ArrayData, bv bytesView) bool {
	n := a.Len()
	if n != b.Len() {
		return false
	}
	if n == 0 {
		return true
	}
	if a.NullN() > 0 || b.NullN() > 0 {
		if a.NullN() != b.NullN() {
			return false
		}
		ab, bb := a.Buffers()[0].Bytes(), b.Buffers()[0].Bytes()
		for i := 0; i < n; i++ {
			if bitSet(ab, a.Offset()+i) != bitSet(bb, b.Offset()+i) {
				return false
			}
		}
	}
	a0, b0 := av.offs[0], bv.offs[0]
	if av.offs[n]-a0 != bv.offs[n]-b0 {
		return false
	}
	if a0 == b0 {
		if string(asBytes(av.offs)) != string(asBytes(bv.offs)) {
			return false
		}
	} else {
		for i := 1; i <= n; i++ {
			if av.offs[i]-a0 != bv.offs[i]-b0 {
				return false
			}
		}
	}
	return string(av.data[a0:av.offs[n]]) == string(bv.data[b0:bv.offs[n]])
}

// write appends slots [off, off+n) of arr to the chunk, cutting pages as
// they fill.
func (c *fastColumn) write(arr arrow.Array, off, n int) {
	in := c.prepare(arr)
	for n > 0 {
		m := min(n, maxPageSlots-c.def.n)
		var k, vals int
		if c.dictMode {
			var overflow bool
			k, vals, overflow = c.stepDict(&in, off, m)
			if overflow {
				c.fallback()
			}
		} else {
			k, vals = c.stepPlain(&in, off, m)
		}
		if in.hasNulls {
			c.def.appendBits(in.valid, in.voff+off, k)
		} else {
			c.def.appendOnes(k)
		}
		c.numValues += int64(k)
		c.nullCount += int64(k - vals)
		off += k
		n -= k
		if c.pageFull() {
			c.cutPage()
		}
	}
}

func (c *fastColumn) dictLen() int {
	if c.bdict != nil {
		return len(c.bdict.offs)
	}
	return len(c.fdict.vals)
}

func (c *fastColumn) pageFull() bool {
	switch {
	case c.def.n >= maxPageSlots, c.cutBefore:
		return true
	case c.dictMode:
		return (len(c.idx)*dictBitWidth(c.dictLen())+7)/8 >= c.opt.pageSize
	case c.kind == kindBool:
		return (c.bools.n+7)/8 >= c.opt.pageSize
	}
	return len(c.plain) >= c.opt.pageSize
}

// cutPage encodes, compresses and buffers the current page.
func (c *fastColumn) cutPage() {
	slots := c.def.n
	if slots == 0 {
		return
	}
	raw := append(getPageBuf(), 0, 0, 0, 0)
	raw = encodeLevels(raw, c.def.b, slots, slots-int(c.pageNulls()))
	binary.LittleEndian.PutUint32(raw, uint32(len(raw)-4))
	enc := format.Plain
	switch {
	case c.dictMode:
		bw := dictBitWidth(c.dictLen())
		raw = append(raw, byte(bw))
		raw = encodeHybrid(raw, c.idx, bw)
		enc = format.RLEDictionary
		c.dataPages[pagesDict]++
	case c.kind == kindBool:
		raw = append(raw, c.bools.bytes()...)
		c.dataPages[pagesPlain]++
	case len(c.plain) > hugePage:
		// a page of huge values: the levels go in front of the values in
		// their own buffer rather than the values into a second one
		raw = prependTo(c.plain, raw)
		c.plain = nil
		c.dataPages[pagesPlain]++
	default:
		raw = append(raw, c.plain...)
		c.dataPages[pagesPlain]++
	}
	var size int
	c.chunk, size = c.appendPage(c.chunk, false, raw, slots, enc)
	putPageBuf(raw)
	c.uncompressed += int64(size)
	c.def.reset()
	c.plain = c.plain[:0]
	c.idx = c.idx[:0]
	c.bools.reset()
	c.pageNullBase = c.nullCount
	c.cutBefore = false
	if c.plainNext {
		c.dictMode, c.plainNext = false, false
	}
}

// pageNulls returns the nulls of the current page.
func (c *fastColumn) pageNulls() int64 { return c.nullCount - c.pageNullBase }

// appendPage compresses raw and appends the page (header and stored body)
// to dst. It returns the page's uncompressed size, header included.
func (c *fastColumn) appendPage(dst []byte, dict bool, raw []byte, num int, enc format.Encoding) ([]byte, int) {
	c.comp = getPageBuf()
	body := c.compress(dict, raw)
	hdr := len(dst)
	dst = appendPageHeader(dst, dict, len(raw), len(body), crc32.ChecksumIEEE(body), num, enc)
	hdr = len(dst) - hdr
	dst = append(dst, body...)
	putPageBuf(c.comp)
	c.comp = nil
	return dst, hdr + len(raw)
}

// pageBufs are the scratch buffers pages are assembled and compressed in,
// shared by all columns of all writers: a page's buffers are needed only
// until it is appended to its chunk, and kept per column they held a
// megabyte or two each of a run's heap.
var pageBufs sync.Pool // of *[]byte

// getPageBuf returns an empty scratch buffer.
func getPageBuf() []byte {
	if p, ok := pageBufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

// hugePage is the size past which a page's buffers are not kept for reuse:
// only pages of values larger than a page (each its own page) and the
// largest fallback pages are that large, and keeping them would hold a copy
// of the largest value a run saw for the rest of the run.
const hugePage = maxFallbackPage

// putPageBuf gives b back for reuse, unless it is huge.
func putPageBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= hugePage {
		pageBufs.Put(&b)
	}
}

// prependTo returns head followed by b, in b's memory when it has room.
func prependTo(b, head []byte) []byte {
	n := len(b)
	b = slices.Grow(b, len(head))[:n+len(head)]
	copy(b[len(head):], b[:n])
	copy(b, head)
	return b
}

// compress returns raw compressed with the column's codec (in c.comp), or
// raw itself when the column is not compressed.
func (c *fastColumn) compress(dict bool, raw []byte) []byte {
	codec := c.opt.compress
	if codec == nil {
		return raw
	}
	if c.literalsOnly(dict, raw) {
		e := literalEncoders.Get().(*literalEncoder)
		lit, err := e.encode(c.comp[:0], raw)
		literalEncoders.Put(e)
		if err == nil {
			c.comp = lit[:0]
			return lit
		}
		// the Huffman coder failed in a way it should not: full zstd
		c.coding = [2]pageCoding{codingFull, codingFull}
	}
	if bound := int(codec.CompressBound(int64(len(raw)))); cap(c.comp) < bound && (c.opt.zstd == nil || len(raw) <= hugePage) {
		c.comp = make([]byte, bound) // zstd grows a huge page's output as it goes
	}
	var body []byte
	if c.opt.zstd != nil {
		body = c.opt.zstd.EncodeAll(raw, c.comp[:0])
	} else {
		body = codec.EncodeLevel(c.comp[:cap(c.comp)], raw, c.opt.level)
	}
	if cap(body) > cap(c.comp) {
		c.comp = body[:0]
	}
	return body
}

// pageCoding is how a chunk's zstd pages are coded.
type pageCoding uint8

const (
	codingUndecided pageCoding = iota
	codingFull                 // zstd at the writer's level
	codingLiterals             // Huffman-coded literals only (literalEncoder)
)

const (
	// literalSample is the prefix of a chunk's first large page (data or
	// dictionary) that both codings are tried on.
	literalSample = 64 << 10
	// literalGain: zstd is kept when its sample is smaller than this
	// percentage of the literals-only sample. Dictionary pages of hex
	// pseudonyms sit near 94 % (zstd saves their length prefixes), and
	// zstd takes three times as long on them.
	literalGain = 90
)

// literalsOnly reports whether a zstd page of the chunk is coded without
// the match search. The first data page and the dictionary page of at
// least literalSample bytes decide for the chunk's pages of their kind:
// when zstd's repeats save less than 10 % over Huffman coding alone (random
// hex pseudonyms, UUIDs, dictionary indices), the match search is mostly
// wasted time, and literals-only coding is about 2.3 times faster. The
// choice depends on the data only, so a rerun writes the same bytes.
func (c *fastColumn) literalsOnly(dict bool, raw []byte) bool {
	if c.opt.zstd == nil {
		return false
	}
	k := 0
	if dict {
		k = 1
	}
	if c.coding[k] == codingUndecided && len(raw) >= literalSample {
		c.coding[k] = codingFull
		sample := raw[:literalSample]
		full := c.opt.zstd.EncodeAll(sample, c.comp[:0])
		c.comp = full[:0]
		e := literalEncoders.Get().(*literalEncoder)
		lit, err := e.encode(e.sample[:0], sample)
		if err == nil {
			e.sample = lit[:0]
			if len(full)*100 >= len(lit)*literalGain {
				c.coding[k] = codingLiterals
			}
		}
		literalEncoders.Put(e)
	}
	return c.coding[k] == codingLiterals
}
