// Package parquetio reads and writes Parquet for the pipeline, through Apache
// Arrow's Go implementation:
//
//   - Open reads a file's footer and hands out row groups as small Arrow
//     record batches, reading string columns as dictionaries where the file
//     stores them so, and verifying every page checksum on the bytes read
//     (arrow-go does not verify CRCs itself). Flat scalar columns in the
//     common encodings are decoded by deid's lean reader (lean.go) in one
//     pass; anything else goes through arrow-go's pqarrow.
//   - PartWriter encodes record batches into a self-contained Parquet part
//     with encodings chosen per column; Splice concatenates parts into one
//     file without re-encoding, rewriting only the footer's offsets. Row
//     groups of one file can so be encoded in parallel and still give the
//     same bytes whatever the number of workers.
//
// Every failure names the file; a panic inside the Parquet decoder is
// recovered and returned as an error wrapping ErrCorrupt.
//
// It reads an io.ReaderAt of a known size and writes an io.Writer:
// pipeline/pqstore opens the files of a store. The package knows no store,
// no policy and no transform: it imports neither storage, rules, transforms
// nor pipeline (cmd/deid's TestLayoutRules checks it).
package parquetio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// ErrCorrupt is matched by errors about files that are not valid Parquet:
// empty, truncated, bad magic, undecodable metadata or pages, checksum
// mismatches, and panics of the decoder.
var ErrCorrupt = errors.New("corrupt or unreadable Parquet")

// File is an open Parquet file. Row groups may be read concurrently.
type File struct {
	location string
	src      io.ReaderAt // closed by Close when it is an io.Closer
	raw      io.ReaderAt // the file's bytes, unchecked (the lean reader checks CRCs itself)
	check    *checkingReaderAt
	pf       *file.Reader
	schema   *arrow.Schema
	mem      memory.Allocator
	blooms   *metadata.BloomFilterReader
}

// corruptf wraps a problem of the file at location as ErrCorrupt.
func corruptf(location, format string, args ...any) error {
	return fmt.Errorf("%s: %w: "+format, append([]any{quoteLocation(location), ErrCorrupt}, args...)...)
}

// quoteLocation quotes a location that holds a character that is not
// printable (or is not UTF-8), so that an error never writes raw control
// bytes; others are returned as they are.
func quoteLocation(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || !strconv.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// Open reads the footer of the Parquet file whose size bytes src holds;
// location names the file (File.Location, and every error). The File owns
// src: its Close, or a failed Open, closes src when it is an io.Closer.
func Open(src io.ReaderAt, size int64, location string, mem memory.Allocator) (f *File, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corruptf(location, "the Parquet reader failed: %v\n%s", r, debug.Stack())
		}
		if err != nil {
			closeSource(src)
		}
	}()
	switch {
	case size == 0:
		return nil, corruptf(location, "the file is empty")
	case size < 12:
		return nil, corruptf(location, "%d bytes is too short for Parquet (magic, footer length, magic)", size)
	}
	sr := io.NewSectionReader(src, 0, size)
	props := parquet.NewReaderProperties(mem)
	// Column chunks are streamed through a 1 MiB buffer rather than read
	// whole: memory stays bounded by the buffer, not by the row group's
	// size. The checksum verifier follows the sequential reads.
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	probe, err := file.NewParquetReader(sr, file.WithReadProps(props))
	if err != nil {
		return nil, corruptf(location, "%w", err)
	}
	md := probe.MetaData()
	var ranges []chunkRange
	for i := 0; i < md.NumRowGroups(); i++ {
		rg := md.RowGroup(i)
		for j := 0; j < rg.NumColumns(); j++ {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				return nil, corruptf(location, "row group %d column %d: %w", i, j, err)
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
				start = cc.DictionaryPageOffset()
			}
			if start < 4 || cc.TotalCompressedSize() < 0 || start+cc.TotalCompressedSize() > size {
				return nil, corruptf(location, "row group %d column %q: chunk at %d+%d lies outside the %d-byte file",
					i, md.Schema.Column(j).Path(), start, cc.TotalCompressedSize(), size)
			}
			ranges = append(ranges, chunkRange{start: start, length: cc.TotalCompressedSize(), rowGroup: i, column: md.Schema.Column(j).Path()})
		}
	}
	check := newCheckingReaderAt(sr, ranges)
	pf, err := file.NewParquetReader(io.NewSectionReader(check, 0, size), file.WithReadProps(props), file.WithMetadata(md))
	if err != nil {
		return nil, corruptf(location, "%w", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, corruptf(location, "%w", err)
	}
	sch, err := fr.Schema()
	if err != nil {
		return nil, corruptf(location, "schema: %w", err)
	}
	// bloom filters are read with their own buffers, from Go's heap: the
	// reader keeps them in a pool for the next filter
	pool := &sync.Pool{New: func() any { return memory.NewResizableBuffer(memory.DefaultAllocator) }}
	blooms := &metadata.BloomFilterReader{Input: sr, FileMetadata: md, Props: props, BufferPool: pool}
	return &File{location: location, src: src, raw: sr, check: check, pf: pf, schema: sch, mem: mem, blooms: blooms}, nil
}

// Location returns the file's location.
func (f *File) Location() string { return f.location }

// Schema returns the file's schema as Arrow types (strings dense).
func (f *File) Schema() *arrow.Schema { return f.schema }

// NumRows returns the file's row count.
func (f *File) NumRows() int64 { return f.pf.NumRows() }

// NumRowGroups returns the number of row groups.
func (f *File) NumRowGroups() int { return f.pf.NumRowGroups() }

// RowGroupRows returns the row count of row group i.
func (f *File) RowGroupRows(i int) int64 { return f.pf.MetaData().RowGroup(i).NumRows() }

// ColumnChunk returns the metadata of column j in row group i.
func (f *File) ColumnChunk(i, j int) (*metadata.ColumnChunkMetaData, error) {
	return f.pf.MetaData().RowGroup(i).ColumnChunk(j)
}

// VisitBloomFilter calls fn with the bloom filter of column j in row group i
// and reports whether the chunk has one (fn is not called when it has not).
// The filter is recycled when fn returns and must not be kept. A filter
// that cannot be read is an error wrapping ErrCorrupt.
func (f *File) VisitBloomFilter(i, j int, fn func(metadata.BloomFilter) error) (found bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			found, err = false, corruptf(f.location, "row group %d column %d: the bloom filter reader failed: %v", i, j, r)
		}
	}()
	rg, err := f.blooms.RowGroup(i)
	if err != nil {
		return false, corruptf(f.location, "row group %d: %w", i, err)
	}
	err = rg.VisitColumnBloomFilter(j, func(bf metadata.BloomFilter) error {
		found = true
		return fn(bf)
	})
	if err != nil && !found {
		return false, corruptf(f.location, "row group %d column %d: bloom filter: %w", i, j, err)
	}
	return found, err
}

// LeafIndex returns the Parquet leaf column index of top-level field name, or
// -1 when the file has no such flat column.
func (f *File) LeafIndex(name string) int {
	return f.pf.MetaData().Schema.ColumnIndexByName(name)
}

// LeafField returns the index of the top-level field that Parquet leaf
// column j belongs to (the leaf itself, or a leaf of a nested field), or
// -1 when the file has no leaf j. Leaf and field indices differ once a
// nested field precedes the leaf.
func (f *File) LeafField(j int) int {
	s := f.pf.MetaData().Schema
	if j < 0 || j >= s.NumColumns() {
		return -1
	}
	return s.Root().FieldIndexByName(s.ColumnRoot(j).Name())
}

// Physical returns the physical type of leaf column j.
func (f *File) Physical(j int) parquet.Type { return f.pf.MetaData().Schema.Column(j).PhysicalType() }

// LogicalType returns the logical type of leaf column j.
func (f *File) LogicalType(j int) schema.LogicalType {
	return f.pf.MetaData().Schema.Column(j).LogicalType()
}

// DictionaryEncoded reports whether column j of row group i stores every
// data page dictionary-encoded, so that reading it as an Arrow dictionary
// costs nothing extra. Without page encoding statistics it answers from the
// chunk's list of encodings, conservatively.
func (f *File) DictionaryEncoded(i, j int) bool {
	cc, err := f.ColumnChunk(i, j)
	if err != nil || !cc.HasDictionaryPage() {
		return false
	}
	isDict := func(e parquet.Encoding) bool {
		return e == parquet.Encodings.PlainDict || e == parquet.Encodings.RLEDict
	}
	stats := cc.EncodingStats()
	if len(stats) == 0 {
		for _, e := range cc.Encodings() {
			if !isDict(e) && e != parquet.Encodings.RLE && e != parquet.Encodings.BitPacked {
				return false
			}
		}
		return true
	}
	for _, s := range stats {
		// Parquet page types: 0 data, 1 index, 2 dictionary, 3 data v2
		if (s.PageType == 0 || s.PageType == 3) && !isDict(s.Encoding) {
			return false
		}
	}
	return true
}

// DictionaryEntries returns the number of entries in the dictionary page of
// column j in row group i, read from the page header (one small read), or
// false when the chunk has no readable dictionary page.
func (f *File) DictionaryEntries(i, j int) (int, bool) {
	cc, err := f.ColumnChunk(i, j)
	if err != nil || !cc.HasDictionaryPage() {
		return 0, false
	}
	off := cc.DictionaryPageOffset()
	if off <= 0 {
		off = cc.DataPageOffset()
	}
	buf := make([]byte, min(4096, cc.TotalCompressedSize()))
	n, err := f.src.ReadAt(buf, off)
	if n == 0 && err != nil {
		return 0, false
	}
	h, _, err := parsePageHeader(buf[:n])
	if err != nil || h.pageType != 2 /* DICTIONARY_PAGE */ || h.dictValues < 0 {
		return 0, false
	}
	return int(h.dictValues), true
}

// ReadOptions control how a row group is read.
type ReadOptions struct {
	// Columns are the Parquet leaf column indices to read, in order (for
	// flat schemas, the field indices).
	Columns []int
	// BatchSize is the number of rows per record batch.
	BatchSize int64
	// Dictionary marks leaf column indices to read as Arrow dictionaries.
	Dictionary map[int]bool
	// Parallel decodes the columns of a batch concurrently (arrow-go only).
	Parallel bool
	// ArrowGo reads through arrow-go even where the lean reader applies
	// (for comparisons).
	ArrowGo bool
	// Filter, when set, leaves out the rows it removes: the lean reader
	// then never copies their values.
	Filter *RowFilter
}

// LeanReadable reports whether ReadRowGroup reads the given leaf columns
// of row group rg with deid's own reader, which hands every batch of a
// column chunk the same dictionary array, rather than through arrow-go.
func (f *File) LeanReadable(rg int, cols []int) bool {
	_, ok := f.leanPlan(rg, ReadOptions{Columns: cols})
	return ok
}

// ReadRowGroup decodes row group rg in record batches of opt.BatchSize rows
// and calls fn with each. The batch is released after fn returns; fn must
// retain what it keeps. Errors name the file and row group.
func (f *File) ReadRowGroup(ctx context.Context, rg int, opt ReadOptions, fn func(arrow.RecordBatch) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if cp, ok := r.(*CallerPanic); ok {
				panic(cp) // the caller's bug, not the file's
			}
			err = corruptf(f.location, "row group %d: the Parquet decoder failed: %v", rg, r)
		}
	}()
	fn = callerGuard(fn)
	if flt := opt.Filter; flt != nil {
		sel := flt.Select
		guarded := *flt
		guarded.Select = func(cols []arrow.Array) (keep []bool, kept int, filtered []arrow.Array, err error) {
			defer rethrow()
			return sel(cols)
		}
		opt.Filter = &guarded
	}
	if cols, ok := f.leanPlan(rg, opt); ok && !opt.ArrowGo {
		return f.readLean(ctx, rg, opt, cols, fn)
	}
	return f.readArrowGo(ctx, rg, opt, fn)
}

// CallerPanic is what ReadRowGroup panics with when its caller's own code
// (fn, or the row filter's Select) panicked: a bug of the caller, which a
// corrupt file must not be blamed for. Stack is where it panicked.
type CallerPanic struct {
	Value any
	Stack []byte
}

// callerGuard wraps the caller's fn so that its panic leaves ReadRowGroup
// as a CallerPanic.
func callerGuard(fn func(arrow.RecordBatch) error) func(arrow.RecordBatch) error {
	return func(b arrow.RecordBatch) error {
		defer rethrow()
		return fn(b)
	}
}

// rethrow, deferred in the caller's code, turns its panic into a
// CallerPanic.
func rethrow() {
	if r := recover(); r != nil {
		if cp, ok := r.(*CallerPanic); ok {
			panic(cp)
		}
		panic(&CallerPanic{Value: r, Stack: debug.Stack()})
	}
}

// readArrowGo decodes row group rg through arrow-go's pqarrow, verifying
// page checksums on the bytes it reads.
func (f *File) readArrowGo(ctx context.Context, rg int, opt ReadOptions, fn func(arrow.RecordBatch) error) error {
	// PreAllocBinaryData sizes string buffers from the chunk metadata instead
	// of growing (and copying) them value by value.
	props := pqarrow.ArrowReadProperties{BatchSize: opt.BatchSize, Parallel: opt.Parallel, PreAllocBinaryData: true}
	for col, dict := range opt.Dictionary {
		props.SetReadDict(col, dict)
	}
	fr, err := pqarrow.NewFileReader(f.pf, props, f.mem)
	if err != nil {
		return corruptf(f.location, "%w", err)
	}
	rr, err := fr.GetRecordReader(ctx, opt.Columns, []int{rg})
	if err != nil {
		return f.readError(rg, err)
	}
	defer rr.Release()
	for rr.Next() {
		if opt.Filter != nil {
			if err := filterBatch(f.mem, opt.Filter, rr.RecordBatch(), fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return f.readError(rg, err)
	}
	if err := f.check.Finish(rg); err != nil {
		return fmt.Errorf("%s: %w: %w", quoteLocation(f.location), ErrCorrupt, err)
	}
	return nil
}

func (f *File) readError(rg int, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w: row group %d: %w", quoteLocation(f.location), ErrCorrupt, rg, err)
}

// Close releases the file and closes its source.
func (f *File) Close() error { return closeSource(f.src) }

// closeSource closes src when it is an io.Closer.
func closeSource(src io.ReaderAt) error {
	if c, ok := src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Codec returns the name (as WriterOptions.Codec takes it) of the one
// compression codec every column chunk of the file uses, or false when
// chunks differ or use a codec deid does not write. A file deid rewrites in
// part keeps this codec in the row groups it re-encodes: a file whose row
// groups disagree on a column's codec is valid Parquet, but some readers
// (parquet-go v0.32) decode every row group with the first one's codec.
func (f *File) Codec() (string, bool) {
	md := f.pf.MetaData()
	name := ""
	for i := 0; i < md.NumRowGroups(); i++ {
		rg := md.RowGroup(i)
		for j := 0; j < rg.NumColumns(); j++ {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				return "", false
			}
			n, ok := codecName(cc.Compression())
			if !ok || name != "" && n != name {
				return "", false
			}
			name = n
		}
	}
	return name, name != ""
}

// codecName is the WriterOptions name of codec c.
func codecName(c compress.Compression) (string, bool) {
	for name, k := range Codecs {
		if name != "" && k == c {
			return name, true
		}
	}
	return "", false
}
