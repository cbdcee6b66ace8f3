package parquetio

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	aparquet "github.com/apache/arrow-go/v18/parquet"
	acompress "github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// supportType is one column type the matrix test writes: its Arrow type
// and a generator of its values.
type supportType struct {
	typ    arrow.DataType
	append func(b array.Builder, r *rand.Rand)
}

// supportTypes are an Arrow type of every physical type of leanTypes, and
// types outside the matrix (BOOLEAN, FIXED_LEN_BYTE_ARRAY), which must fall
// back to arrow-go.
func supportTypes() []supportType {
	return []supportType{
		{arrow.PrimitiveTypes.Int32, func(b array.Builder, r *rand.Rand) { b.(*array.Int32Builder).Append(r.Int32N(40) - 20) }},
		{arrow.PrimitiveTypes.Uint32, func(b array.Builder, r *rand.Rand) { b.(*array.Uint32Builder).Append(r.Uint32()) }},
		{arrow.FixedWidthTypes.Date32, func(b array.Builder, r *rand.Rand) { b.(*array.Date32Builder).Append(arrow.Date32(r.Int32N(30000))) }},
		{arrow.PrimitiveTypes.Int64, func(b array.Builder, r *rand.Rand) { b.(*array.Int64Builder).Append(r.Int64() >> r.IntN(64)) }},
		{arrow.PrimitiveTypes.Uint64, func(b array.Builder, r *rand.Rand) { b.(*array.Uint64Builder).Append(r.Uint64()) }},
		{&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, func(b array.Builder, r *rand.Rand) {
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + r.Int64N(1<<40)))
		}},
		{arrow.PrimitiveTypes.Float32, func(b array.Builder, r *rand.Rand) { b.(*array.Float32Builder).Append(float32(r.IntN(64)) / 4) }},
		{arrow.PrimitiveTypes.Float64, func(b array.Builder, r *rand.Rand) { b.(*array.Float64Builder).Append(r.NormFloat64()) }},
		{arrow.BinaryTypes.String, func(b array.Builder, r *rand.Rand) { b.(*array.StringBuilder).Append(randString(r, 1+r.IntN(40))) }},
		{arrow.BinaryTypes.Binary, func(b array.Builder, r *rand.Rand) { b.(*array.BinaryBuilder).Append([]byte(randString(r, 0))) }},
		{arrow.FixedWidthTypes.Boolean, func(b array.Builder, r *rand.Rand) { b.(*array.BooleanBuilder).Append(r.IntN(2) == 0) }},
		{&arrow.Decimal128Type{Precision: 20, Scale: 2}, func(b array.Builder, r *rand.Rand) {
			b.(*array.Decimal128Builder).Append(decimal128.FromI64(r.Int64N(1 << 50)))
		}},
	}
}

// supportEncodings are the encodings the test asks arrow-go for: dictionary
// (PLAIN_DICTIONARY or RLE_DICTIONARY, with PLAIN fallback pages), PLAIN,
// both deltas, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT (outside the matrix).
var supportEncodings = []struct {
	name string
	dict bool
	enc  aparquet.Encoding
}{
	{"dictionary", true, aparquet.Encodings.Plain},
	{"plain", false, aparquet.Encodings.Plain},
	{"delta_binary_packed", false, aparquet.Encodings.DeltaBinaryPacked},
	{"delta_length_byte_array", false, aparquet.Encodings.DeltaLengthByteArray},
	{"delta_byte_array", false, aparquet.Encodings.DeltaByteArray},
	{"byte_stream_split", false, aparquet.Encodings.ByteStreamSplit},
}

// supportCodecs are the codecs the test writes: those of leanCodecs and
// three outside them.
var supportCodecs = []acompress.Compression{acompress.Codecs.Uncompressed, acompress.Codecs.Snappy, acompress.Codecs.Zstd,
	acompress.Codecs.Gzip, acompress.Codecs.Brotli, acompress.Codecs.Lz4Raw}

// supportCell is a cell of the matrix: a physical type with an encoding,
// a codec or a data page version. (Every combination of the three is not
// one arrow-go writes: it never dictionary-encodes 4-byte values without
// compression, say.)
type supportCell struct {
	physical aparquet.Type
	what     string
}

// TestSupportMatrix writes, with arrow-go's writer (a writer other than
// deid's), a file for every type × encoding × codec × data page version ×
// format version (1.0 writes PLAIN_DICTIONARY, later ones RLE_DICTIONARY)
// it accepts, with NULLs and several pages, and checks that the lean
// reader takes exactly the row groups the tables list (leanTypes with their
// encodings, leanCodecs), that what it reads equals arrow-go's reading, and
// that every cell the tables list was read by the lean reader in some file;
// files outside the tables are read by arrow-go.
func TestSupportMatrix(t *testing.T) {
	dir := t.TempDir()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	r := rand.New(rand.NewPCG(7, 8))
	lean, fallback, refused := 0, 0, 0
	covered := map[supportCell]bool{}
	codecs := supportCodecs
	if testing.Short() {
		codecs = codecs[:4] // the lean reader's three and one it leaves to arrow-go
	}
	for _, st := range supportTypes() {
		rec := supportRecord(st, r, 400)
		for _, e := range supportEncodings {
			for _, codec := range codecs {
				for _, version := range []aparquet.DataPageVersion{aparquet.DataPageV1, aparquet.DataPageV2} {
					for _, format := range []aparquet.Version{aparquet.V1_0, aparquet.V2_LATEST} {
						desc := fmt.Sprintf("%s %s %s page v%d format %s", st.typ, e.name, codec, version+1, format)
						path := filepath.Join(dir, fmt.Sprintf("f%d.parquet", lean+fallback+refused))
						props := aparquet.NewWriterProperties(aparquet.WithCompression(codec), aparquet.WithDataPageVersion(version),
							aparquet.WithVersion(format), aparquet.WithDictionaryDefault(e.dict), aparquet.WithEncoding(e.enc),
							aparquet.WithDataPageSize(512), aparquet.WithMaxRowGroupLength(300), aparquet.WithBatchSize(128),
							aparquet.WithAllocator(memory.DefaultAllocator))
						if !writeSupportFile(path, rec, props) {
							refused++ // arrow-go does not write this encoding for this type
							continue
						}
						want := supportWantsLean(t, path, st.typ, version, covered)
						if want {
							lean++
						} else {
							fallback++
						}
						wantVals, _, err := readColumns(t, memory.DefaultAllocator, path, ReadOptions{BatchSize: 100, ArrowGo: true}, false)
						if err != nil {
							t.Fatalf("%s: arrow-go: %v", desc, err)
						}
						// (arrow-go's delta decoder leaks 64-byte buffers: its own allocator)
						readMem := memory.Allocator(memory.DefaultAllocator)
						if want {
							readMem = mem
						}
						got, _, err := readColumns(t, readMem, path, ReadOptions{BatchSize: 100}, want)
						if err != nil {
							t.Fatalf("%s: %v", desc, err)
						}
						compareLean(t, desc, got, wantVals)
					}
				}
			}
		}
		rec.Release()
	}
	for _, lt := range leanTypes {
		var cells []string
		for _, enc := range lt.encodings {
			cells = append(cells, aparquet.Encoding(enc).String())
		}
		for _, codec := range leanCodecs {
			cells = append(cells, codec.String())
		}
		cells = append(cells, "page v1", "page v2")
		for _, what := range cells {
			if !covered[supportCell{lt.physical, what}] {
				t.Errorf("no file read by the lean reader exercised %s with %s, which the matrix lists", lt.physical, what)
			}
		}
	}
	t.Logf("%d files read by the lean reader, %d by arrow-go, %d combinations arrow-go does not write", lean, fallback, refused)
	if lean < 100 || fallback < 100 {
		t.Errorf("%d lean and %d fallback files: the matrix was not covered", lean, fallback)
	}
}

// supportRecord returns rows values of st, a tenth of them NULL.
func supportRecord(st supportType, r *rand.Rand, rows int) arrow.RecordBatch {
	sch := arrow.NewSchema([]arrow.Field{{Name: "c", Type: st.typ, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	for range rows {
		if r.IntN(10) == 0 {
			b.Field(0).AppendNull()
		} else {
			st.append(b.Field(0), r)
		}
	}
	return b.NewRecordBatch()
}

// writeSupportFile writes rec to path, or reports false when arrow-go
// refuses the properties (an encoding it does not write for the type).
func writeSupportFile(path string, rec arrow.RecordBatch, props *aparquet.WriterProperties) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(rec.Schema(), &buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return false
	}
	if err := fw.Write(rec); err != nil {
		return false
	}
	if err := fw.Close(); err != nil {
		return false
	}
	return os.WriteFile(path, buf.Bytes(), 0o644) == nil
}

// supportWantsLean reports whether the tables say the lean reader decodes
// every row group of the file at path, from the file's own metadata, and
// marks the cells of such a file covered.
func supportWantsLean(t *testing.T, path string, typ arrow.DataType, version aparquet.DataPageVersion, covered map[supportCell]bool) bool {
	t.Helper()
	f, err := openPath(path, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md := f.pf.MetaData()
	physical := md.Schema.Column(0).PhysicalType()
	var encodings []int32
	for _, lt := range leanTypes {
		if lt.physical == physical && slices.Contains(lt.arrow, typ.ID()) {
			encodings = lt.encodings
		}
	}
	want := encodings != nil
	var cells []supportCell
	for rg := 0; rg < md.NumRowGroups(); rg++ {
		cc, err := md.RowGroup(rg).ColumnChunk(0)
		if err != nil {
			t.Fatal(err)
		}
		want = want && slices.Contains(leanCodecs, cc.Compression())
		cells = append(cells, supportCell{physical, cc.Compression().String()}, supportCell{physical, fmt.Sprintf("page v%d", version+1)})
		for _, e := range cc.Encodings() {
			want = want && slices.Contains(encodings, int32(e))
			cells = append(cells, supportCell{physical, e.String()})
		}
	}
	for _, c := range cells {
		covered[c] = covered[c] || want
	}
	return want
}
