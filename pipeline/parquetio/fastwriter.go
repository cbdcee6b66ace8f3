package parquetio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/deidproject/deid/pipeline/internal/parallel"
)

// ErrUnsupported is returned by NewFastPartWriter for a schema with a type
// the fast writer does not encode; use PartWriter for it.
var ErrUnsupported = errors.New("schema not supported by the fast Parquet writer")

// FastPartWriter encodes record batches into one self-contained Parquet part,
// like PartWriter, for flat schemas of the types deid outputs: utf8, binary,
// int32, int64, float32, float64, boolean, timestamp (ms, us, ns), date32,
// and dictionaries of utf8 or binary. Every column is OPTIONAL. It writes
// data pages v1 with page CRCs, dictionary pages where allowed, chunk
// statistics, and no page indexes or bloom filters, so Splice accepts its
// parts.
//
// Unlike arrow's writer, it translates the indices of Arrow dictionary arrays
// through a table built once per distinct input dictionary and row group,
// rather than hashing every value, computes statistics of dictionary-encoded
// chunks from their dictionaries, and copies fixed-width values without
// NULLs in bulk. A row group's pages are buffered, compressed, until it is
// flushed. The writer allocates no Arrow memory: it keeps a reference to the
// last input dictionary of each column, and its buffers are plain Go memory
// reused across pages, row groups and (through a pool) writers.
//
// Close must be called, also after an error: it drops those references and
// gives the buffers back.
type FastPartWriter struct {
	w       io.Writer
	pos     int64
	started bool
	cols    []*fastColumn
	opt     fastOptions
	schema  []format.SchemaElement
	groups  []format.RowGroup
	rgRows  int64
	rows    int64
	err     error
	closed  bool
	mem     memory.Allocator // unused: the writer creates no Arrow data
	spare   func() bool      // reports an idle CPU (SetSpare)
}

// FooterWriter is implemented by a FastPartWriter's destination that wants
// to know where the row groups end: BeginFooter is called once, before the
// footer is written, so that a destination streaming the row groups into a
// Splicer (see Splicer.StreamStart) can keep the footer apart.
type FooterWriter interface {
	io.Writer
	BeginFooter()
}

// zstdWindow is the window of the writer's zstd encoders: a data page is at
// most DataPageSize (1 MiB by default), so matches farther back than that
// are rare (dictionary pages of up to 4 MiB lose a little); the encoder's
// history takes about twice the window.
const zstdWindow = 1 << 20

// zstdEncoders holds one zstd encoder per level for the process. arrow-go's
// codec keeps its encoders in a sync.Pool, which the garbage collector
// empties, with an 8 MiB window: each new encoder then allocated about
// 16 MiB of history, and under the heap limit (dozens of collections a
// run) that churn was 24 MB of the live heap at the peak.
var zstdEncoders sync.Map // zstd.EncoderLevel -> *zstd.Encoder

// zstdEncoder returns the writer's encoder for a zstd level (arrow-go's
// mapping of levels), safe for concurrent EncodeAll calls.
func zstdEncoder(level int) (*zstd.Encoder, error) {
	l := zstd.EncoderLevelFromZstd(level)
	if e, ok := zstdEncoders.Load(l); ok {
		return e.(*zstd.Encoder), nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(l), zstd.WithAllLitEntropyCompression(true),
		zstd.WithWindowSize(zstdWindow), zstd.WithEncoderConcurrency(2*runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	e, loaded := zstdEncoders.LoadOrStore(l, enc)
	if loaded {
		enc.Close() // another writer made one first
	}
	return e.(*zstd.Encoder), nil
}

// fastOptions are WriterOptions with defaults applied.
type fastOptions struct {
	codec     format.CompressionCodec
	compress  compress.Codec // nil: uncompressed
	zstd      *zstd.Encoder  // the zstd codec's encoder (see zstdEncoder)
	level     int
	maxRows   int64
	pageSize  int
	dictLimit int
	statLimit int // longest BYTE_ARRAY min or max (WriterOptions.StatisticsLimit)
}

// maxPageSlots caps the rows of one data page whatever its encoded size.
const maxPageSlots = 1 << 24

// littleEndian: the writer copies Arrow buffers as PLAIN values, which is
// only right on little-endian machines.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func (o WriterOptions) fast() (fastOptions, error) {
	codec, ok := Codecs[o.Codec]
	if !ok {
		return fastOptions{}, fmt.Errorf("unknown codec %q (zstd, snappy, gzip, lz4, none)", o.Codec)
	}
	f := fastOptions{codec: format.CompressionCodec(codec), level: o.CompressionLevel}
	switch {
	case f.level == 0 && codec == compress.Codecs.Zstd:
		f.level = DefaultZstdLevel
	case f.level == 0:
		f.level = compress.DefaultCompressionLevel
	}
	if codec != compress.Codecs.Uncompressed {
		c, err := compress.GetCodec(codec)
		if err != nil {
			return fastOptions{}, err
		}
		f.compress = c
	}
	if codec == compress.Codecs.Zstd {
		enc, err := zstdEncoder(f.level)
		if err != nil {
			return fastOptions{}, err
		}
		f.zstd = enc
	}
	f.maxRows = o.MaxRowGroupRows
	if f.maxRows <= 0 {
		f.maxRows = DefaultRowGroupRows
	}
	f.pageSize = int(min(o.DataPageSize, math.MaxInt32/2))
	if f.pageSize <= 0 {
		f.pageSize = 1 << 20
	}
	f.statLimit = o.statLimit()
	f.dictLimit = int(min(o.DictionaryPageLimit, math.MaxInt32/2))
	if f.dictLimit <= 0 {
		f.dictLimit = 4 << 20
	}
	return f, nil
}

// NewFastPartWriter starts a part with the given Arrow schema; dict names
// the columns that may be dictionary-encoded. It returns ErrUnsupported
// (and writes nothing) when a field's type is not one it encodes.
func NewFastPartWriter(w io.Writer, sch *arrow.Schema, dict map[string]bool, opt WriterOptions, mem memory.Allocator) (*FastPartWriter, error) {
	if !littleEndian {
		return nil, fmt.Errorf("%w: big-endian machine", ErrUnsupported)
	}
	o, err := opt.fast()
	if err != nil {
		return nil, err
	}
	p := &FastPartWriter{w: w, opt: o, mem: mem}
	p.schema = append(p.schema, format.SchemaElement{Name: "schema", NumChildren: thrift.New(int32(sch.NumFields()))})
	for _, f := range sch.Fields() {
		c, el, err := newFastColumn(f, dict[f.Name], &p.opt)
		if err != nil {
			return nil, err
		}
		p.cols = append(p.cols, c)
		p.schema = append(p.schema, el)
	}
	return p, nil
}

// newFastColumn maps an Arrow field to a column writer and its schema
// element, mirroring what pqarrow writes for the same field.
func newFastColumn(f arrow.Field, useDict bool, opt *fastOptions) (*fastColumn, format.SchemaElement, error) {
	el := format.SchemaElement{Name: f.Name, RepetitionType: thrift.New(format.Optional)}
	dense := f.Type
	if dt, ok := f.Type.(*arrow.DictionaryType); ok {
		if !arrow.IsInteger(dt.IndexType.ID()) {
			return nil, el, fmt.Errorf("%w: column %q: dictionary index type %s", ErrUnsupported, f.Name, dt.IndexType)
		}
		dense = dt.ValueType
		if dense.ID() != arrow.STRING && dense.ID() != arrow.BINARY {
			return nil, el, fmt.Errorf("%w: column %q: dictionary of %s", ErrUnsupported, f.Name, dense)
		}
	}
	c := &fastColumn{name: f.Name, dense: dense, opt: opt}
	var phys format.Type
	switch t := dense.(type) {
	case *arrow.StringType:
		c.kind, phys = kindBytes, format.ByteArray
		el.ConvertedType = thrift.New(deprecated.UTF8)
		el.LogicalType.Value = &format.StringType{}
	case *arrow.BinaryType:
		c.kind, phys = kindBytes, format.ByteArray
	case *arrow.Int32Type:
		c.kind, phys = kindInt32, format.Int32
		el.ConvertedType = thrift.New(deprecated.Int32)
		el.LogicalType.Value = &format.IntType{BitWidth: 32, IsSigned: true}
	case *arrow.Int64Type:
		c.kind, phys = kindInt64, format.Int64
		el.ConvertedType = thrift.New(deprecated.Int64)
		el.LogicalType.Value = &format.IntType{BitWidth: 64, IsSigned: true}
	case *arrow.Float32Type:
		c.kind, phys = kindFloat32, format.Float
	case *arrow.Float64Type:
		c.kind, phys = kindFloat64, format.Double
	case *arrow.BooleanType:
		c.kind, phys = kindBool, format.Boolean
		useDict = false // arrow never dictionary-encodes booleans either
	case *arrow.Date32Type:
		c.kind, phys = kindInt32, format.Int32
		el.ConvertedType = thrift.New(deprecated.Date)
		el.LogicalType.Value = &format.DateType{}
	case *arrow.TimestampType:
		c.kind, phys = kindInt64, format.Int64
		ts := &format.TimestampType{IsAdjustedToUTC: t.TimeZone != ""}
		switch t.Unit {
		case arrow.Millisecond:
			ts.Unit.Value = &format.MilliSeconds{}
			el.ConvertedType = thrift.New(deprecated.TimestampMillis)
		case arrow.Microsecond:
			ts.Unit.Value = &format.MicroSeconds{}
			el.ConvertedType = thrift.New(deprecated.TimestampMicros)
		case arrow.Nanosecond:
			ts.Unit.Value = &format.NanoSeconds{}
		default:
			return nil, el, fmt.Errorf("%w: column %q: timestamp in %s", ErrUnsupported, f.Name, t.Unit)
		}
		el.LogicalType.Value = ts
	default:
		return nil, el, fmt.Errorf("%w: column %q: type %s", ErrUnsupported, f.Name, f.Type)
	}
	el.Type = thrift.New(phys)
	c.phys = phys
	c.width = map[fastKind]int{kindInt32: 4, kindFloat32: 4, kindInt64: 8, kindFloat64: 8}[c.kind]
	c.useDict = useDict
	c.dictMode = useDict
	c.colBufs = getColBufs(c.poolKey())
	switch {
	case useDict && c.kind == kindBytes:
		c.bdict = &c.bd
	case useDict:
		c.fdict = &c.fd
	}
	return c, el, nil
}

// Write appends a record batch; row groups are cut at MaxRowGroupRows, so a
// batch may span row groups. A column's arrays may be of the field's type or,
// for utf8 and binary fields, dictionaries of it (and the reverse), batch by
// batch.
func (p *FastPartWriter) Write(rec arrow.RecordBatch) error {
	if p.closed {
		return errors.New("write to a closed part writer")
	}
	if p.err != nil {
		return p.err
	}
	if int(rec.NumCols()) != len(p.cols) {
		return fmt.Errorf("record batch has %d columns, the part %d", rec.NumCols(), len(p.cols))
	}
	for i, c := range p.cols {
		if err := c.accepts(rec.Column(i)); err != nil {
			return err
		}
	}
	n := rec.NumRows()
	for off := int64(0); off < n; {
		k := min(n-off, p.opt.maxRows-p.rgRows)
		p.eachColumn(func(i int, c *fastColumn) { c.write(rec.Column(i), int(off), int(k)) })
		p.rgRows += k
		off += k
		if p.rgRows >= p.opt.maxRows || p.buffered() >= maxRowGroupBytes {
			if err := p.flushRowGroup(); err != nil {
				p.err = err
				return err
			}
		}
	}
	p.rows += n
	return nil
}

// maxRowGroupBytes bounds the encoded bytes a row group buffers: past it,
// the row group is cut at the end of the batch (or slice of one) that
// passed it, whatever its rows. Row groups of ordinary rows (the bench's
// 131,072 rows are about 7 MB) never reach it; rows of large values would
// otherwise hold MaxRowGroupRows of them in memory.
const maxRowGroupBytes = 64 << 20

// buffered returns the bytes the current row group holds: its columns'
// stored pages, current pages and dictionaries.
func (p *FastPartWriter) buffered() int {
	n := 0
	for _, c := range p.cols {
		n += len(c.chunk) + len(c.plain) + 4*len(c.idx)
		if c.bdict != nil {
			n += len(c.bdict.plain)
		}
	}
	return n
}

// SetSpare makes the writer encode the columns of a batch, and seal those
// of a row group, on two goroutines whenever spare reports an idle CPU (as
// at the end of a run, when one task is left). Otherwise it encodes them
// one after the other on the caller's goroutine. The bytes are the same.
func (p *FastPartWriter) SetSpare(spare func() bool) { p.spare = spare }

// eachColumn calls fn for every column: on this goroutine and a helper
// when a CPU is idle, each column on one of them.
func (p *FastPartWriter) eachColumn(fn func(int, *fastColumn)) {
	parallel.Each(len(p.cols), p.spare != nil && p.spare(), func(i int) { fn(i, p.cols[i]) })
}

// Rows returns the rows written so far.
func (p *FastPartWriter) Rows() int64 { return p.rows }

func (p *FastPartWriter) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := p.w.Write(b)
	p.pos += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

func (p *FastPartWriter) start() error {
	if p.started {
		return nil
	}
	p.started = true
	return p.write(magic)
}

// flushRowGroup writes the buffered row group.
func (p *FastPartWriter) flushRowGroup() error {
	if p.rgRows == 0 {
		return nil
	}
	if err := p.start(); err != nil {
		return err
	}
	if len(p.groups) > math.MaxInt16 {
		return errors.New("part has more than 32767 row groups")
	}
	rg := format.RowGroup{NumRows: p.rgRows, FileOffset: p.pos, Ordinal: int16(len(p.groups))}
	rg.Columns = make([]format.ColumnChunk, 0, len(p.cols))
	p.eachColumn(func(_ int, c *fastColumn) { c.seal() })
	for _, c := range p.cols {
		cc, err := c.flush(p)
		if err != nil {
			return err
		}
		rg.TotalByteSize += cc.MetaData.TotalUncompressedSize
		rg.TotalCompressedSize += cc.MetaData.TotalCompressedSize
		rg.Columns = append(rg.Columns, cc)
	}
	p.groups = append(p.groups, rg)
	p.rgRows = 0
	return nil
}

// Close flushes the last row group and writes the part's footer. It does not
// close the underlying writer.
func (p *FastPartWriter) Close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	defer func() {
		for _, c := range p.cols {
			c.release()
		}
	}()
	if p.err != nil {
		return p.err
	}
	if p.err = p.flushRowGroup(); p.err != nil {
		return p.err
	}
	p.err = p.finish()
	return p.err
}

func (p *FastPartWriter) finish() error {
	if err := p.start(); err != nil {
		return err
	}
	md := format.FileMetaData{
		Version:   2,
		Schema:    p.schema,
		NumRows:   p.rows,
		RowGroups: p.groups,
		CreatedBy: CreatedBy,
	}
	md.ColumnOrders = make([]format.ColumnOrder, len(p.cols))
	for i := range md.ColumnOrders {
		md.ColumnOrders[i].Value = &format.TypeDefinedOrder{}
	}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return fmt.Errorf("encode footer: %w", err)
	}
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], uint32(len(footer)))
	if fw, ok := p.w.(FooterWriter); ok {
		fw.BeginFooter()
	}
	for _, b := range [][]byte{footer, tail[:], magic} {
		if err := p.write(b); err != nil {
			return err
		}
	}
	return nil
}
