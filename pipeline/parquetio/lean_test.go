package parquetio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	aparquet "github.com/apache/arrow-go/v18/parquet"
	acompress "github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/deidproject/deid/pipeline/internal/pqtest"
)

// leanValue renders value i of a for comparisons: NULL, or the value
// (strings quoted), whatever the array's encoding.
func leanValue(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch x := a.(type) {
	case *array.Dictionary:
		return leanValue(x.Dictionary(), x.GetValueIndex(i))
	case *array.String:
		return strconv.Quote(x.Value(i))
	case *array.Binary:
		return strconv.Quote(string(x.Value(i)))
	case *array.Float64:
		return strconv.FormatUint(math.Float64bits(x.Value(i)), 16)
	case *array.Float32:
		return strconv.FormatUint(uint64(math.Float32bits(x.Value(i))), 16)
	}
	return a.ValueStr(i)
}

// readColumns reads every column of every row group and returns, per
// column, its values rendered by leanValue and the Arrow type of the
// batches (dense or dictionary).
func readColumns(t *testing.T, mem memory.Allocator, path string, opt ReadOptions, wantLean bool) ([][]string, []arrow.DataType, error) {
	t.Helper()
	f, err := openPath(path, mem)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if opt.Columns == nil {
		for i := 0; i < f.Schema().NumFields(); i++ {
			opt.Columns = append(opt.Columns, i)
		}
	}
	out := make([][]string, len(opt.Columns))
	types := make([]arrow.DataType, len(opt.Columns))
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		if _, ok := f.leanPlan(rg, opt); ok != wantLean && !opt.ArrowGo {
			t.Fatalf("%s row group %d: lean reader applies: %v, want %v", path, rg, ok, wantLean)
		}
		err := f.ReadRowGroup(context.Background(), rg, opt, func(b arrow.RecordBatch) error {
			if int(b.NumRows()) > int(opt.BatchSize) {
				return fmt.Errorf("a batch of %d rows, more than %d", b.NumRows(), opt.BatchSize)
			}
			for k := range opt.Columns {
				c := b.Column(k)
				if c.Len() != int(b.NumRows()) {
					return fmt.Errorf("column %d has %d values in a batch of %d rows", k, c.Len(), b.NumRows())
				}
				types[k] = c.DataType()
				for i := 0; i < c.Len(); i++ {
					out[k] = append(out[k], leanValue(c, i))
				}
			}
			return nil
		})
		if err != nil {
			return out, types, err
		}
	}
	return out, types, nil
}

// randString returns a string drawn from a few shapes: empty, short ASCII,
// CJK text, long values, and (for dictionary columns) a small set.
func randString(r *rand.Rand, distinct int) string {
	if distinct > 0 {
		return fmt.Sprintf("城市-%d", r.IntN(distinct))
	}
	switch r.IntN(10) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("长", 1+r.IntN(300))
	case 2:
		return string([]byte{0xff, 0xfe, byte(r.IntN(256))}) // not UTF-8
	}
	return fmt.Sprintf("v%d-%x", r.Int64(), r.Uint32())
}

// writeParquetGo writes a random file with parquet-go: every encoding the
// lean reader decodes, random nulls, codec, page size and page version.
func writeParquetGo(t *testing.T, r *rand.Rand, path string) string {
	codecs := []compress.Codec{&parquet.Uncompressed, &parquet.Snappy, &parquet.Zstd}
	codec := codecs[r.IntN(len(codecs))]
	opt := func(n parquet.Node) parquet.Node {
		if r.IntN(4) == 0 {
			return parquet.Required(n)
		}
		return parquet.Optional(n)
	}
	group := parquet.Group{
		"s_plain":  opt(parquet.Encoded(parquet.String(), &parquet.Plain)),
		"s_delta":  opt(parquet.Encoded(parquet.String(), &parquet.DeltaLengthByteArray)),
		"s_dict":   opt(parquet.Encoded(parquet.String(), &parquet.RLEDictionary)),
		"b_plain":  opt(parquet.Leaf(parquet.ByteArrayType)),
		"i64":      opt(parquet.Encoded(parquet.Int(64), &parquet.Plain)),
		"i64delta": opt(parquet.Encoded(parquet.Int(64), &parquet.DeltaBinaryPacked)),
		"i64dict":  opt(parquet.Encoded(parquet.Int(64), &parquet.RLEDictionary)),
		"i32":      opt(parquet.Encoded(parquet.Int(32), &parquet.Plain)),
		"i32delta": opt(parquet.Encoded(parquet.Int(32), &parquet.DeltaBinaryPacked)),
		"u32":      opt(parquet.Uint(32)),
		"ts":       opt(parquet.Timestamp(parquet.Millisecond)),
		"f64":      opt(parquet.Leaf(parquet.DoubleType)),
		"f64dict":  opt(parquet.Encoded(parquet.Leaf(parquet.DoubleType), &parquet.RLEDictionary)),
		"f32":      opt(parquet.Leaf(parquet.FloatType)),
		"date":     opt(parquet.Date()),
	}
	for name, n := range group {
		group[name] = parquet.Compressed(n, codec)
	}
	sch := parquet.NewSchema("t", group)
	rows := []int{0, 1, 7, 100, 1000, 5000}[r.IntN(6)]
	nullP := []float64{0, 0.1, 0.5, 1}[r.IntN(4)]
	pageSize := []int{256, 4096, 65536}[r.IntN(3)]
	version := 1 + r.IntN(2)
	rgRows := []int64{64, 1000, 1 << 20}[r.IntN(3)]
	desc := fmt.Sprintf("parquet-go %s, %d rows, nulls %.1f, pages %d B, v%d, row groups of %d", codec.CompressionCodec(), rows, nullP, pageSize, version, rgRows)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewWriter(f, sch, parquet.PageBufferSize(pageSize), parquet.DataPageVersion(version), parquet.MaxRowsPerRowGroup(rgRows))
	cols := sch.Columns()
	for i := 0; i < rows; i++ {
		row := make(parquet.Row, 0, len(cols))
		for ci, path := range cols {
			leaf, _ := sch.Lookup(path...)
			optional := leaf.Node.Optional()
			if optional && r.Float64() < nullP {
				row = append(row, parquet.NullValue().Level(0, 0, ci))
				continue
			}
			var v parquet.Value
			switch path[0] {
			case "s_plain", "s_delta":
				v = parquet.ValueOf(randString(r, 0))
			case "s_dict":
				v = parquet.ValueOf(randString(r, 1+r.IntN(40)))
			case "b_plain":
				v = parquet.ValueOf([]byte(randString(r, 0)))
			case "i64", "i64dict":
				v = parquet.ValueOf([]int64{r.Int64() - r.Int64(), int64(r.IntN(5)), math.MinInt64, math.MaxInt64}[r.IntN(4)])
			case "i64delta":
				v = parquet.ValueOf([]int64{r.Int64() - r.Int64(), int64(i), math.MinInt64, math.MaxInt64}[r.IntN(4)])
			case "i32", "i32delta":
				v = parquet.ValueOf([]int32{r.Int32() - r.Int32(), int32(i), math.MinInt32, math.MaxInt32}[r.IntN(4)])
			case "u32":
				v = parquet.ValueOf(r.Uint32())
			case "ts":
				v = parquet.Int64Value(r.Int64N(1 << 45))
			case "f64":
				v = parquet.ValueOf([]float64{r.NormFloat64(), math.Inf(-1), math.NaN(), -0.0}[r.IntN(4)])
			case "f64dict":
				v = parquet.ValueOf(float64(r.IntN(7)) / 4)
			case "f32":
				v = parquet.ValueOf(float32(r.NormFloat64()))
			case "date":
				v = parquet.Int32Value(r.Int32N(40000))
			}
			def := 0
			if optional {
				def = 1
			}
			row = append(row, v.Level(0, def, ci))
		}
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return desc
}

// writeArrowGo writes a random file with arrow-go, whose dictionary
// encoding falls back to PLAIN in the middle of a chunk when the
// dictionary outgrows its (here tiny) page size limit.
func writeArrowGo(t *testing.T, r *rand.Rand, path string) string {
	mem := memory.DefaultAllocator
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "lowcard", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "d", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: false},
	}, nil)
	rows := []int{1, 500, 3000}[r.IntN(3)]
	nullP := []float64{0, 0.2, 0.9}[r.IntN(3)]
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for i := 0; i < rows; i++ {
		null := func() bool { return r.Float64() < nullP }
		if null() {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(randString(r, 0))
		}
		if null() {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(randString(r, 1+i/50))
		}
		if null() {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Int64Builder).Append(r.Int64N(1000) - 500)
		}
		if null() {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Int64N(1 << 45)))
		}
		if null() {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(r.NormFloat64())
		}
		b.Field(5).(*array.Int32Builder).Append(r.Int32())
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	codecs := []acompress.Compression{acompress.Codecs.Uncompressed, acompress.Codecs.Snappy, acompress.Codecs.Zstd}
	codec := codecs[r.IntN(3)]
	version := []aparquet.DataPageVersion{aparquet.DataPageV1, aparquet.DataPageV2}[r.IntN(2)]
	dictLimit := []int64{64, 1024, 1 << 20}[r.IntN(3)]
	props := aparquet.NewWriterProperties(aparquet.WithCompression(codec), aparquet.WithDataPageVersion(version),
		aparquet.WithDictionaryPageSizeLimit(dictLimit), aparquet.WithDataPageSize(int64(512+r.IntN(8192))),
		aparquet.WithMaxRowGroupLength(int64(1+r.IntN(4000))), aparquet.WithBatchSize(int64(64+r.IntN(512))))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pqtest.WriteArrow(t, f, rec, props, pqarrow.DefaultWriterProps())
	return fmt.Sprintf("arrow-go %v, %d rows, nulls %.1f, v%v, dictionary limit %d", codec, rows, nullP, version, dictLimit)
}

// writeModelFile writes the i-th generated file of a model test into dir,
// every third one with arrow-go's writer and the others with parquet-go's,
// from a random stream of (i, seed); it returns the path, a description and
// the stream, for the test's further choices.
func writeModelFile(t *testing.T, dir string, i int, seed uint64) (string, string, *rand.Rand) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(i), seed))
	path := filepath.Join(dir, fmt.Sprintf("f%d.parquet", i))
	if i%3 == 2 {
		return path, writeArrowGo(t, r, path), r
	}
	return path, writeParquetGo(t, r, path), r
}

// TestLeanReaderModel: on many generated files, the lean reader yields the
// same values, types and batch sizes as arrow-go's reader, dense and with
// string columns read as dictionaries.
func TestLeanReaderModel(t *testing.T) {
	files := 60
	if testing.Short() {
		files = 30
	}
	dir := t.TempDir()
	for i := 0; i < files; i++ {
		path, desc, r := writeModelFile(t, dir, i, 99)
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			// arrow's checked allocator: testmem's stack traces are too slow here
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			batch := int64([]int{3, 7, 100, 4096}[r.IntN(4)])
			// (arrow-go's delta decoder leaks 64-byte buffers: its own allocator)
			want, wantTypes, err := readColumns(t, memory.DefaultAllocator, path, ReadOptions{BatchSize: batch, ArrowGo: true}, false)
			if err != nil {
				t.Fatalf("%s: arrow-go: %v", desc, err)
			}
			got, gotTypes, err := readColumns(t, mem, path, ReadOptions{BatchSize: batch}, true)
			if err != nil {
				t.Fatalf("%s: lean: %v", desc, err)
			}
			compareLean(t, desc+", dense", got, want)
			for k := range wantTypes {
				if wantTypes[k] != nil && !arrow.TypeEqual(gotTypes[k], wantTypes[k]) {
					t.Errorf("%s: column %d is %s, arrow-go reads %s", desc, k, gotTypes[k], wantTypes[k])
				}
			}
			// string columns as dictionaries, whatever their pages hold
			f, err := openPath(path, mem)
			if err != nil {
				t.Fatal(err)
			}
			dict := map[int]bool{}
			for k, fld := range f.Schema().Fields() {
				if fld.Type.ID() == arrow.STRING || fld.Type.ID() == arrow.BINARY {
					dict[k] = true
				}
			}
			f.Close()
			got, gotTypes, err = readColumns(t, mem, path, ReadOptions{BatchSize: batch, Dictionary: dict}, true)
			if err != nil {
				t.Fatalf("%s: lean, dictionaries: %v", desc, err)
			}
			compareLean(t, desc+", dictionaries", got, want)
			for k := range dict {
				if gotTypes[k] != nil && gotTypes[k].ID() != arrow.DICTIONARY {
					t.Errorf("%s: column %d read as %s, want a dictionary", desc, k, gotTypes[k])
				}
			}
		})
	}
}

func compareLean(t *testing.T, desc string, got, want [][]string) {
	t.Helper()
	for k := range want {
		if len(got[k]) != len(want[k]) {
			t.Errorf("%s: column %d: %d values, arrow-go %d", desc, k, len(got[k]), len(want[k]))
			continue
		}
		for i := range want[k] {
			if got[k][i] != want[k][i] {
				t.Errorf("%s: column %d row %d: %.60s, arrow-go %.60s", desc, k, i, got[k][i], want[k][i])
				break
			}
		}
	}
}

// TestLeanReaderDamage: damaged files (bytes overwritten inside column
// chunks, with and without page CRCs) are refused with an error naming
// the file, or read; never a panic.
func TestLeanReaderDamage(t *testing.T) {
	dir := t.TempDir()
	rounds := 400
	if testing.Short() {
		rounds = 60
	}
	r := rand.New(rand.NewPCG(7, 7))
	var srcs [][]byte
	for i := 0; i < 6; i++ {
		p := filepath.Join(dir, fmt.Sprintf("src%d.parquet", i))
		if i%2 == 0 {
			writeArrowGo(t, r, p)
		} else {
			writeParquetGo(t, r, p)
		}
		b, _ := os.ReadFile(p)
		srcs = append(srcs, b)
	}
	refused := 0
	for i := 0; i < rounds; i++ {
		src := srcs[i%len(srcs)]
		if len(src) < 64 {
			continue
		}
		b := bytes.Clone(src)
		// damage the data region only, so the footer still parses
		end := len(b) - 8 - int(uint32(b[len(b)-8])|uint32(b[len(b)-7])<<8|uint32(b[len(b)-6])<<16|uint32(b[len(b)-5])<<24)
		if end <= 5 {
			continue
		}
		for k := 0; k < 1+r.IntN(4); k++ {
			b[4+r.IntN(end-4)] = byte(r.IntN(256))
		}
		p := filepath.Join(dir, fmt.Sprintf("bad%d.parquet", i))
		os.WriteFile(p, b, 0o644)
		mem := memory.NewGoAllocator()
		_, _, err := readColumns(t, mem, p, ReadOptions{BatchSize: 333}, true)
		if err == nil {
			continue
		}
		refused++
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
			t.Errorf("round %d: %v: want ErrCorrupt naming the file", i, err)
		}
		if strings.Contains(err.Error(), "decoder failed") {
			t.Errorf("round %d: the lean reader panicked: %.300v", i, err)
		}
	}
	if refused == 0 {
		t.Error("no damaged file was refused")
	}
}

// TestHybridDecoders checks the lean reader's decoders on hand-made input
// (the byte layouts of the Parquet specification's examples).
func TestHybridDecoders(t *testing.T) {
	// bit-packed run of 8 values 0..7 at width 3: header (1<<1)|1 = 3,
	// bytes 10001000 11000110 11111010 (spec example)
	dst := make([]int32, 8)
	if err := hybridInt32(dst, []byte{3, 0x88, 0xc6, 0xfa}, 3, 8); err != nil || fmt.Sprint(dst) != "[0 1 2 3 4 5 6 7]" {
		t.Errorf("bit-packed: %v %v", dst, err)
	}
	// RLE run of 5 copies of 300 at width 9: header 5<<1 = 10, value 2 bytes LE
	dst = make([]int32, 5)
	if err := hybridInt32(dst, []byte{10, 0x2c, 0x01}, 9, 5); err != nil || fmt.Sprint(dst) != "[300 300 300 300 300]" {
		t.Errorf("RLE: %v %v", dst, err)
	}
	if err := hybridInt32(dst, []byte{10, 0x2c}, 9, 5); err == nil {
		t.Error("a truncated run was accepted")
	}
	if err := hybridInt32(dst, []byte{10, 0x2c, 0x03}, 9, 5); err == nil {
		t.Error("a run value wider than the bit width was accepted")
	}
	if err := hybridInt32(dst, []byte{3, 0x88}, 33, 5); err == nil {
		t.Error("bit width 33 was accepted")
	}
	// definition levels 1,0,1,1 then a run of 3 zeros
	bm := make([]byte, 1)
	n, err := decodeDefLevels(bm, []byte{3, 0b1101, 6, 0}, 7)
	if err != nil || n != 3 || bm[0] != 0b1101 {
		t.Errorf("levels: %08b, %d valid, %v", bm[0], n, err)
	}
	// DELTA_BINARY_PACKED, spec example 1: 1..5 is block 128, 4 miniblocks,
	// 5 values, first 1, min delta 1, widths 0: deltas all zero
	vals := make([]int64, 5)
	src := []byte{0x80, 0x01, 4, 5, 2, 2, 0, 0, 0, 0}
	if p, err := decodeDelta(vals, src, 5); err != nil || p != len(src) || fmt.Sprint(vals) != "[1 2 3 4 5]" {
		t.Errorf("delta: %v, %d bytes of %d, %v", vals, p, len(src), err)
	}
	if _, err := decodeDelta(vals, src, 4); err == nil {
		t.Error("a delta stream of 5 values was accepted for 4")
	}
	if _, err := decodeDelta(vals, src[:7], 5); err == nil {
		t.Error("a truncated delta stream was accepted")
	}
}

// FuzzLeanDecoders: the lean reader's decoders never panic or write past
// the values they were asked for, whatever the input.
func FuzzLeanDecoders(f *testing.F) {
	f.Add([]byte{3, 0x88, 0xc6, 0xfa}, uint8(3), uint16(8))
	f.Add([]byte{10, 0x2c, 0x01}, uint8(9), uint16(5))
	f.Add([]byte{0x80, 0x01, 4, 5, 2, 2, 0, 0, 0, 0}, uint8(0), uint16(5))
	f.Add([]byte{3, 0b1101, 6, 0}, uint8(1), uint16(7))
	f.Fuzz(func(t *testing.T, src []byte, w uint8, n16 uint16) {
		n := int(n16 % 4096)
		idx := make([]int32, n+1)
		idx[n] = -7
		if err := hybridInt32(idx[:n], src, int(w%40), n); err == nil && w%40 <= 32 {
			for _, x := range idx[:n] {
				if w%40 < 32 && uint64(uint32(x)) >= 1<<(w%40) {
					t.Fatalf("value %d wider than %d bits", x, w%40)
				}
			}
		}
		if idx[n] != -7 {
			t.Fatal("wrote past the values")
		}
		bm := make([]byte, (n+7)/8+1)
		bm[len(bm)-1] = 0xa5
		if valid, err := decodeDefLevels(bm[:len(bm)-1], src, n); err == nil && (valid < 0 || valid > n) {
			t.Fatalf("%d valid of %d", valid, n)
		}
		if bm[len(bm)-1] != 0xa5 {
			t.Fatal("levels wrote past the bitmap")
		}
		vals := make([]int64, n)
		if p, err := decodeDelta(vals, src, n); err == nil && (p < 0 || p > len(src)) {
			t.Fatalf("consumed %d of %d bytes", p, len(src))
		}
	})
}

// TestChunkStreamWindow: a window grown for a large page goes back to the
// usual size once that page is consumed, and the bytes read through it are
// the file's, in order, across the change.
func TestChunkStreamWindow(t *testing.T) {
	data := make([]byte, 9<<20)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	s := chunkStream{r: bytes.NewReader(data), base: 100, end: int64(len(data))}
	var got []byte
	take := func(n int) {
		if err := s.fill(n); err != nil {
			t.Fatal(err)
		}
		n = min(n, s.hi-s.lo)
		got = append(got, s.buf[s.lo:s.lo+n]...)
		s.lo += n
	}
	take(1000)
	take(5 << 20) // a large page
	if len(s.buf) < 5<<20 {
		t.Fatalf("window of %d bytes for a 5 MiB page", len(s.buf))
	}
	take(300)
	if len(s.buf) != leanReadSize {
		t.Fatalf("window of %d bytes after the large page, want %d", len(s.buf), leanReadSize)
	}
	for s.base+int64(s.hi) < s.end || s.lo < s.hi {
		take(70_000)
	}
	if !bytes.Equal(got, data[100:]) {
		t.Fatalf("read %d bytes, not the file's %d from offset 100", len(got), len(data)-100)
	}
}
