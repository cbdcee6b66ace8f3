package parquetio

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// CreatedBy is written into every output file's footer. It carries no
// version or build information so that outputs stay byte-identical across
// builds of the same code.
const CreatedBy = "deid"

// WriterOptions are the encoding settings of output files.
type WriterOptions struct {
	// Codec is the page compression: "zstd" (the default when empty),
	// "snappy", "gzip", "lz4" or "none".
	Codec string
	// CompressionLevel is the codec's level; 0 means DefaultZstdLevel for
	// zstd and the codec's default otherwise.
	CompressionLevel int
	// MaxRowGroupRows caps the rows of one output row group; 0 means
	// 131,072, which keeps each row group's dictionaries small enough to stay
	// dictionaries and its buffered pages small (DuckDB writes about 123K
	// rows per row group).
	MaxRowGroupRows int64
	// DataPageSize is the target size of a data page; 0 means 1 MiB.
	DataPageSize int64
	// DictionaryPageLimit is the largest dictionary a column chunk keeps
	// before falling back to plain encoding; 0 means 4 MiB (room for about
	// 100,000 pseudonyms, so a row group's pseudonymized ids stay compact).
	DictionaryPageLimit int64
	// StatisticsLimit is the longest min or max, in bytes, that a BYTE_ARRAY
	// column chunk's statistics hold; 0 means DefaultStatisticsLimit. The
	// fast writer cuts a longer min to a prefix and rounds a longer max up
	// (see boundMax); arrow-go's writer leaves such a bound out.
	StatisticsLimit int
}

// DefaultRowGroupRows is the default cap on an output row group's rows.
const DefaultRowGroupRows = 1 << 17

// DefaultZstdLevel is the zstd level used unless another is asked for: level
// 1 costs about half the CPU of level 3 and, with dictionary-encoded columns,
// still writes smaller files than the bench's DuckDB peer at level 3.
const DefaultZstdLevel = 1

// Codecs maps WriterOptions.Codec names to Parquet codecs.
var Codecs = map[string]compress.Compression{
	"":       compress.Codecs.Zstd,
	"zstd":   compress.Codecs.Zstd,
	"snappy": compress.Codecs.Snappy,
	"gzip":   compress.Codecs.Gzip,
	"lz4":    compress.Codecs.Lz4Raw,
	"none":   compress.Codecs.Uncompressed,
}

func (o WriterOptions) properties(mem memory.Allocator, sch *arrow.Schema, dict map[string]bool) (*parquet.WriterProperties, error) {
	codec, ok := Codecs[o.Codec]
	if !ok {
		return nil, fmt.Errorf("unknown codec %q (zstd, snappy, gzip, lz4, none)", o.Codec)
	}
	level := o.CompressionLevel
	switch {
	case level == 0 && codec == compress.Codecs.Zstd:
		level = DefaultZstdLevel
	case level == 0:
		level = compress.DefaultCompressionLevel
	}
	dictLimit := o.DictionaryPageLimit
	if dictLimit <= 0 {
		dictLimit = 4 << 20
	}
	rows := o.MaxRowGroupRows
	if rows <= 0 {
		rows = DefaultRowGroupRows
	}
	page := o.DataPageSize
	if page <= 0 {
		page = 1 << 20
	}
	props := []parquet.WriterProperty{
		parquet.WithAllocator(mem),
		parquet.WithCreatedBy(CreatedBy),
		parquet.WithVersion(parquet.V2_6),
		parquet.WithDataPageVersion(parquet.DataPageV1),
		parquet.WithCompression(codec),
		parquet.WithCompressionLevel(level),
		parquet.WithMaxRowGroupLength(rows),
		parquet.WithDataPageSize(page),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryPageSizeLimit(dictLimit),
		parquet.WithStats(true),
		parquet.WithMaxStatsSize(int64(o.statLimit())),
	}
	for _, f := range sch.Fields() {
		if dict[f.Name] {
			props = append(props, parquet.WithDictionaryFor(f.Name, true))
		}
	}
	return parquet.NewWriterProperties(props...), nil
}

// PartWriter encodes record batches into one self-contained Parquet part
// (magic, row groups, footer). Splice joins parts into a file.
type PartWriter struct {
	fw   *pqarrow.FileWriter
	rows int64
}

// NewPartWriter starts a part with the given Arrow schema. dict names the
// columns to dictionary-encode; the others are written plainly. A
// dictionary-encoded column falls back to plain encoding in a row group
// whose dictionary outgrows DictionaryPageLimit.
func NewPartWriter(w io.Writer, sch *arrow.Schema, dict map[string]bool, opt WriterOptions, mem memory.Allocator) (*PartWriter, error) {
	props, err := opt.properties(mem, sch, dict)
	if err != nil {
		return nil, err
	}
	fw, err := pqarrow.NewFileWriter(sch, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
	if err != nil {
		return nil, fmt.Errorf("start Parquet writer: %w", err)
	}
	return &PartWriter{fw: fw}, nil
}

// Write appends a record batch; row groups are cut at MaxRowGroupRows.
func (p *PartWriter) Write(rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil
	}
	p.rows += rec.NumRows()
	return p.fw.WriteBuffered(rec)
}

// Rows returns the rows written so far.
func (p *PartWriter) Rows() int64 { return p.rows }

// Close flushes the last row group and writes the part's footer.
func (p *PartWriter) Close() error { return p.fw.Close() }

// WantsDictionary estimates, from the first rows of a, whether dictionary
// encoding can pay off: unless nearly every sampled value is distinct (event
// ids, free text). Values that repeat across a row group but not within the
// sample, like pseudonymized user ids, still get a dictionary; one that grows
// too large falls back to plain encoding (DictionaryPageLimit). The estimate
// depends only on the data, so it is the same in every run.
func WantsDictionary(a arrow.Array) bool {
	const sample = 1 << 14
	n := min(a.Len(), sample)
	if n == 0 {
		return true
	}
	limit := n * 9 / 10 // more distinct values than this: plain
	switch a := a.(type) {
	case *array.String:
		return stringsRepeat(a, a, n, limit)
	case *array.Dictionary:
		// by value, as if dense: a dictionary array may hold repeated
		// entries, and the choice must not depend on how values were read
		if d, ok := a.Dictionary().(*array.String); ok {
			return stringsRepeat(a, d, n, limit)
		}
	case *array.Float64:
		return fixedRepeat(a.Float64Values()[:n], a, limit)
	case *array.Int64:
		return fixedRepeat(a.Int64Values()[:n], a, limit)
	case *array.Timestamp:
		return fixedRepeat(a.TimestampValues()[:n], a, limit)
	}
	return true
}

// stringsRepeat reports whether the first n values of a, which indexes
// vals (a itself, or its dictionary), hold at most limit distinct ones.
func stringsRepeat(a arrow.Array, vals *array.String, n, limit int) bool {
	d, _ := a.(*array.Dictionary)
	seen := make(map[string]struct{}, n/4)
	for i := 0; i < n; i++ {
		if a.IsNull(i) {
			continue
		}
		j := i
		if d != nil {
			if j = d.GetValueIndex(i); vals.IsNull(j) {
				continue
			}
		}
		if _, ok := seen[vals.Value(j)]; !ok {
			seen[vals.Value(j)] = struct{}{}
			if len(seen) > limit {
				return false
			}
		}
	}
	return true
}

func fixedRepeat[T comparable](vals []T, a arrow.Array, limit int) bool {
	seen := make(map[T]struct{}, len(vals)/4)
	for i, v := range vals {
		if a.IsNull(i) {
			continue
		}
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			if len(seen) > limit {
				return false
			}
		}
	}
	return true
}

// PartEncoder encodes record batches into one Parquet part: a FastPartWriter
// where it supports the schema, else arrow-go's writer (PartWriter).
type PartEncoder interface {
	// Write appends a record batch.
	Write(rec arrow.RecordBatch) error
	// Rows returns the rows written so far.
	Rows() int64
	// Close flushes the last row group and writes the footer.
	Close() error
}

// NewPartEncoder starts a part with the fastest writer that supports sch.
// Both writers produce identical Parquet schemas for nullable fields, so
// their parts splice together.
func NewPartEncoder(w io.Writer, sch *arrow.Schema, dict map[string]bool, opt WriterOptions, mem memory.Allocator) (PartEncoder, error) {
	fw, err := NewFastPartWriter(w, sch, dict, opt, mem)
	if err == nil {
		return fw, nil
	}
	if !errors.Is(err, ErrUnsupported) {
		return nil, err
	}
	// arrow-go's writer closes a writer that is an io.Closer; the caller owns w
	return NewPartWriter(struct{ io.Writer }{w}, sch, dict, opt, mem)
}
