package parquetio

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/deidproject/deid/pipeline/internal/pqtest"
)

var (
	tUTF8   = arrow.BinaryTypes.String
	tBinary = arrow.BinaryTypes.Binary
)

// allTypes has a column of every type the fast writer supports.
var allTypes = []tcol{
	{name: "s", typ: tUTF8},
	{name: "s_mixed", typ: tUTF8, dictArrs: 2}, // utf8 field, some batches bring dictionaries
	{name: "b", typ: tBinary},
	{name: "ds", typ: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: tUTF8}, dictArrs: 2},
	{name: "db", typ: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: tBinary}, dictArrs: 1},
	{name: "i32", typ: arrow.PrimitiveTypes.Int32},
	{name: "i64", typ: arrow.PrimitiveTypes.Int64},
	{name: "f32", typ: arrow.PrimitiveTypes.Float32},
	{name: "f64", typ: arrow.PrimitiveTypes.Float64},
	{name: "bo", typ: arrow.FixedWidthTypes.Boolean},
	{name: "tms", typ: &arrow.TimestampType{Unit: arrow.Millisecond}},
	{name: "tus", typ: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{name: "tns", typ: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "Asia/Shanghai"}},
	{name: "d", typ: arrow.FixedWidthTypes.Date32},
}

func colNames(cols []tcol) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

func colTypes(cols []tcol) []arrow.DataType {
	out := make([]arrow.DataType, len(cols))
	for i, c := range cols {
		out[i] = c.typ
	}
	return out
}

// writeFast writes the batches with a FastPartWriter.
func writeFast(t testing.TB, mem memory.Allocator, sch *arrow.Schema, dict map[string]bool, opt WriterOptions, recs []arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewFastPartWriter(&buf, sch, dict, opt, mem)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		rows += r.NumRows()
	}
	if w.Rows() != rows {
		t.Errorf("Rows() = %d, want %d", w.Rows(), rows)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeArrow(t testing.TB, mem memory.Allocator, sch *arrow.Schema, dict map[string]bool, opt WriterOptions, recs []arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPartWriter(&buf, sch, dict, opt, mem)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func concat(parts [][][]any) [][]any {
	var out [][]any
	for _, p := range parts {
		if out == nil {
			out = make([][]any, len(p))
		}
		for j := range p {
			out[j] = append(out[j], p[j]...)
		}
	}
	return out
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// checkStats compares every chunk's statistics, read with parquet-go (values)
// and arrow (whether min and max are set), with statistics computed from the
// expected values.
func checkStats(t *testing.T, mem memory.Allocator, path string, data []byte, names []string, want [][]any) {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := openPath(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	md := pf.Metadata()
	if len(md.ColumnOrders) != len(names) {
		t.Errorf("%d column orders for %d columns", len(md.ColumnOrders), len(names))
	}
	start := 0
	for i, rg := range md.RowGroups {
		n := int(rg.NumRows)
		for j, c := range rg.Columns {
			vals := want[j][start : start+n]
			nulls, mn, mx, has := expectStats(vals)
			st := c.MetaData.Statistics
			if c.MetaData.NumValues != int64(n) || st.NullCount != nulls {
				t.Errorf("row group %d %s: %d values, %d nulls; want %d, %d", i, names[j], c.MetaData.NumValues, st.NullCount, n, nulls)
			}
			cc, err := ours.ColumnChunk(i, j)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := cc.Statistics()
			if err != nil || ts == nil {
				t.Fatalf("row group %d %s: arrow reads no statistics: %v", i, names[j], err)
			}
			if ts.HasMinMax() != has {
				t.Errorf("row group %d %s: min/max set %v, want %v", i, names[j], ts.HasMinMax(), has)
				continue
			}
			if has && (!bytes.Equal(st.MinValue, mn) || !bytes.Equal(st.MaxValue, mx)) {
				t.Errorf("row group %d %s: min %s max %s, want %s %s", i, names[j], show(string(st.MinValue)), show(string(st.MaxValue)),
					show(string(mn)), show(string(mx)))
			}
			if c.OffsetIndexOffset != 0 || c.ColumnIndexOffset != 0 || c.MetaData.BloomFilterOffset != 0 {
				t.Errorf("row group %d %s: page index or bloom filter written", i, names[j])
			}
		}
		start += n
	}
}

// TestFastWriterRoundTrip writes random batches of every supported type with
// random options and reads them back with deid's reader (dense and as
// dictionaries) and with parquet-go, then checks the chunk statistics.
func TestFastWriterRoundTrip(t *testing.T) {
	codecs := []string{"", "zstd", "snappy", "gzip", "lz4", "none"}
	for seed := uint64(1); seed <= 24; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			mem := checkedMem(t)
			g := newTgen(seed, mem)
			defer g.release()
			r := g.r
			if seed%4 == 1 {
				g.big = 1
			}
			opt := WriterOptions{
				Codec:               codecs[r.IntN(len(codecs))],
				MaxRowGroupRows:     []int64{1000, 0, 777, 4096}[r.IntN(4)],
				DataPageSize:        []int64{4096, 0, 1000, 64 << 10}[r.IntN(4)],
				DictionaryPageLimit: []int64{0, 2000, 300, 1 << 16}[r.IntN(4)],
			}
			dict := map[string]bool{}
			for _, c := range allTypes {
				dict[c.name] = r.IntN(3) > 0
			}
			var recs []arrow.RecordBatch
			var parts [][][]any
			for b := 0; b < 2+r.IntN(6); b++ {
				n := []int{0, 1, r.IntN(3000), 2500, r.IntN(300)}[r.IntN(5)]
				rec, vals := g.batch(allTypes, n)
				recs = append(recs, rec)
				parts = append(parts, vals)
			}
			if seed%4 == 1 { // make sure the 1 MiB value comes
				rec, vals := g.batch(allTypes, 50)
				recs = append(recs, rec)
				parts = append(parts, vals)
			}
			defer releaseAll(recs)
			want := concat(parts)
			if seed%4 == 1 && !hasBig(want) {
				t.Fatal("no 1 MiB value generated")
			}
			sch := tschema(allTypes)
			data := writeFast(t, mem, sch, dict, opt, recs)
			t.Logf("options %+v: %d rows, %d bytes", opt, len(want[0]), len(data))
			path := writeTemp(t, "fast.parquet", data)
			names := colNames(allTypes)

			_, got := readOurs(t, mem, path, false)
			compareColumns(t, "deid reader", names, want, got)
			_, got = readOurs(t, mem, path, true)
			compareColumns(t, "deid reader, dictionaries", names, want, got)
			if opt.Codec != "lz4" { // parquet-go v0.32.0 cannot read arrow's LZ4_RAW pages either
				compareColumns(t, "parquet-go", names, want, readParquetGo(t, data, colTypes(allTypes)))
			}
			checkStats(t, mem, path, data, names, want)

			md, _, err := readFooter(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			maxRows := opt.MaxRowGroupRows
			if maxRows == 0 {
				maxRows = 1 << 18
			}
			for i, rg := range md.RowGroups {
				if i < len(md.RowGroups)-1 && rg.NumRows != maxRows || rg.NumRows == 0 || rg.NumRows > maxRows {
					t.Errorf("row group %d of %d has %d rows (cap %d)", i, len(md.RowGroups), rg.NumRows, maxRows)
				}
			}
			if md.NumRows != int64(len(want[0])) || md.CreatedBy != CreatedBy || md.Version != 2 {
				t.Errorf("footer: %d rows, created by %q, version %d", md.NumRows, md.CreatedBy, md.Version)
			}

			// the same batches give the same bytes
			if again := writeFast(t, mem, sch, dict, opt, recs); !bytes.Equal(again, data) {
				t.Error("the same batches gave different bytes")
			}
		})
	}
}

func hasBig(cols [][]any) bool {
	for _, c := range cols {
		for _, v := range c {
			if s, ok := v.(string); ok && len(s) >= 1<<20 {
				return true
			}
		}
	}
	return false
}

// TestFastWriterDictionary: dictionary pages hold only the entries values
// reference, Arrow dictionary arrays and dense strings share the chunk
// dictionary, and a dictionary over DictionaryPageLimit falls back to PLAIN.
func TestFastWriterDictionary(t *testing.T) {
	mem := checkedMem(t)
	g := newTgen(99, mem)
	defer g.release()
	cols := []tcol{{name: "city", typ: tUTF8, dictArrs: 2}, {name: "id", typ: tUTF8}}
	var recs []arrow.RecordBatch
	var parts [][][]any
	for i := 0; i < 6; i++ {
		var city arrow.Array
		var cv []any
		if i%2 == 0 {
			city, cv = g.dictColumn(cols[0], 500)
		} else {
			city, cv = g.denseColumn(cols[0], 500)
		}
		ids := make([]any, 500)
		for k := range ids {
			ids[k] = fmt.Sprintf("event-%06d-%d", i*500+k, k%7)
		}
		id := buildArray(mem, tUTF8, ids)
		fields := []arrow.Field{{Name: "city", Type: city.DataType(), Nullable: true}, {Name: "id", Type: tUTF8, Nullable: true}}
		recs = append(recs, newRecord(arrow.NewSchema(fields, nil), []arrow.Array{city, id}, 500))
		city.Release()
		id.Release()
		parts = append(parts, [][]any{cv, ids})
	}
	defer releaseAll(recs)
	want := concat(parts)
	opt := WriterOptions{MaxRowGroupRows: 1200, DataPageSize: 256, DictionaryPageLimit: 8 << 10}
	data := writeFast(t, mem, tschema(cols), map[string]bool{"city": true, "id": true}, opt, recs)
	path := writeTemp(t, "dict.parquet", data)
	_, got := readOurs(t, mem, path, true)
	compareColumns(t, "deid reader", colNames(cols), want, got)
	compareColumns(t, "parquet-go", colNames(cols), want, readParquetGo(t, data, colTypes(cols)))
	checkStats(t, mem, path, data, colNames(cols), want)

	f, err := openPath(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md, _, _ := readFooter(bytes.NewReader(data))
	start := 0
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		n := int(f.RowGroupRows(rg))
		distinct := map[any]bool{}
		for _, v := range want[0][start : start+n] {
			if v != nil {
				distinct[v] = true
			}
		}
		if !f.DictionaryEncoded(rg, 0) {
			t.Errorf("row group %d: city not dictionary-encoded", rg)
		}
		if k, ok := f.DictionaryEntries(rg, 0); !ok || k != len(distinct) {
			t.Errorf("row group %d: city dictionary of %d entries (%v), %d distinct values", rg, k, ok, len(distinct))
		}
		// 1200 ids of about 22 bytes: the 8 KiB dictionary overflows
		id := md.RowGroups[rg].Columns[1].MetaData
		var plain, dict int32
		for _, s := range id.EncodingStats {
			switch {
			case s.PageType == format.DataPage && s.Encoding == format.Plain:
				plain += s.Count
			case s.PageType == format.DataPage && s.Encoding == format.RLEDictionary:
				dict += s.Count
			}
		}
		if plain == 0 || dict == 0 || id.DictionaryPageOffset == 0 || !slicesContain(id.Encoding, format.RLEDictionary) {
			t.Errorf("row group %d: id pages plain %d, dictionary %d, encodings %v: want a fallback after dictionary pages", rg, plain, dict, id.Encoding)
		}
		start += n
	}
}

func slicesContain(s []format.Encoding, e format.Encoding) bool {
	for _, x := range s {
		if x == e {
			return true
		}
	}
	return false
}

// TestFastWriterDropsUnusedDictionary: when the dictionary overflows before
// any dictionary-encoded page is cut, the chunk is written PLAIN only.
func TestFastWriterDropsUnusedDictionary(t *testing.T) {
	mem := checkedMem(t)
	vals := make([]any, 3000)
	for i := range vals {
		vals[i] = fmt.Sprintf("unique-%d", i)
	}
	arr := buildArray(mem, tUTF8, vals)
	defer arr.Release()
	cols := []tcol{{name: "id", typ: tUTF8}}
	rec := newRecord(tschema(cols), []arrow.Array{arr}, 3000)
	defer rec.Release()
	data := writeFast(t, mem, tschema(cols), map[string]bool{"id": true}, WriterOptions{DictionaryPageLimit: 10 << 10}, []arrow.RecordBatch{rec})
	md, _, _ := readFooter(bytes.NewReader(data))
	c := md.RowGroups[0].Columns[0].MetaData
	if c.DictionaryPageOffset != 0 || slicesContain(c.Encoding, format.RLEDictionary) {
		t.Errorf("dictionary kept: encodings %v, stats %+v", c.Encoding, c.EncodingStats)
	}
	path := writeTemp(t, "plain.parquet", data)
	_, got := readOurs(t, mem, path, false)
	compareColumns(t, "deid reader", []string{"id"}, [][]any{vals}, got)
	checkStats(t, mem, path, data, []string{"id"}, [][]any{vals})
}

// TestFastWriterSchemaParity: for the same batches, the file of the fast
// writer and arrow's read back with the same Arrow schema and values, and
// their Parquet schemas are identical, so that Splice can join parts of both.
func TestFastWriterSchemaParity(t *testing.T) {
	mem := checkedMem(t)
	g := newTgen(7, mem)
	g.noNullEntries = true
	defer g.release()
	cols := make([]tcol, len(allTypes))
	copy(cols, allTypes)
	for i := range cols { // arrow wants batches of exactly the schema's types
		if _, ok := cols[i].typ.(*arrow.DictionaryType); ok {
			cols[i].dictArrs = 1
		} else {
			cols[i].dictArrs = 0
		}
	}
	sch := tschema(cols)
	var recs []arrow.RecordBatch
	var parts [][][]any
	for i := 0; i < 4; i++ {
		rec, vals := g.batch(cols, 700)
		recs = append(recs, rec)
		parts = append(parts, vals)
	}
	defer releaseAll(recs)
	want := concat(parts)
	dict := map[string]bool{"s": true, "ds": true, "db": true, "i64": true, "f64": true, "tms": true}
	opt := WriterOptions{MaxRowGroupRows: 1000}
	fast := writeFast(t, mem, sch, dict, opt, recs)
	slow := writeArrow(t, mem, sch, dict, opt, recs)
	fastSch, fastVals := readOurs(t, mem, writeTemp(t, "fast.parquet", fast), false)
	slowSch, slowVals := readOurs(t, mem, writeTemp(t, "arrow.parquet", slow), false)
	if !fastSch.Equal(slowSch) {
		t.Errorf("schemas differ:\nfast  %s\narrow %s", fastSch, slowSch)
	}
	names := colNames(cols)
	compareColumns(t, "arrow's file", names, want, slowVals)
	compareColumns(t, "fast file", names, want, fastVals)

	fmd, _, _ := readFooter(bytes.NewReader(fast))
	amd, _, _ := readFooter(bytes.NewReader(slow))
	if !reflect.DeepEqual(fmd.Schema, amd.Schema) {
		t.Errorf("Parquet schemas differ:\nfast  %+v\narrow %+v", fmd.Schema, amd.Schema)
	}
	for j := range cols {
		fe, ae := fmd.RowGroups[0].Columns[j].MetaData.Encoding, amd.RowGroups[0].Columns[j].MetaData.Encoding
		if !reflect.DeepEqual(fe, ae) {
			t.Logf("column %s: encodings %v, arrow %v", names[j], fe, ae)
		}
	}

	// parts of both writers splice into one file
	var out bytes.Buffer
	rows, err := Splice(&out, []Part{bytes.NewReader(slow), bytes.NewReader(fast)})
	if err != nil || rows != int64(2*len(want[0])) {
		t.Fatalf("splice: %d rows, %v", rows, err)
	}
	_, got := readOurs(t, mem, writeTemp(t, "mixed.parquet", out.Bytes()), false)
	compareColumns(t, "spliced", names, concat([][][]any{want, want}), got)
}

// TestFastWriterChecksums flips one byte in the body of every page in turn:
// each flip is caught as a checksum mismatch.
func TestFastWriterChecksums(t *testing.T) {
	mem := checkedMem(t)
	g := newTgen(3, mem)
	defer g.release()
	cols := []tcol{allTypes[0], allTypes[3], allTypes[6], allTypes[8], allTypes[9]}
	var recs []arrow.RecordBatch
	for i := 0; i < 3; i++ {
		rec, _ := g.batch(cols, 1000)
		recs = append(recs, rec)
	}
	defer releaseAll(recs)
	data := writeFast(t, mem, tschema(cols), map[string]bool{"s": true, "ds": true, "f64": true},
		WriterOptions{MaxRowGroupRows: 1500, DataPageSize: 2048}, recs)
	dir := t.TempDir()
	bodies := pageBodies(t, data) // fails on a page without CRC
	if len(bodies) < 20 {
		t.Fatalf("only %d pages", len(bodies))
	}
	flipped := 0
	for i, b := range bodies {
		if b[1] == b[0] {
			continue
		}
		bad := bytes.Clone(data)
		bad[(b[0]+b[1])/2] ^= 0x40
		p := filepath.Join(dir, fmt.Sprintf("bad%d.parquet", i))
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readAll(t, mem, p)
		if !errors.Is(err, ErrChecksum) {
			t.Errorf("page %d of %d flipped: %v", i, len(bodies), err)
		}
		// parquet-go verifies the CRCs of data pages too (of dictionary pages
		// it does not, but zstd's frame checksum catches the flip)
		if _, err := pqtest.Rows(bad); err == nil {
			t.Errorf("page %d of %d flipped: parquet-go: %v", i, len(bodies), err)
		}
		flipped++
	}
	t.Logf("%d pages flipped", flipped)
}

// TestFastWriterSplice: fast parts, one of them empty, splice into a file
// that both readers read.
func TestFastWriterSplice(t *testing.T) {
	mem := checkedMem(t)
	g := newTgen(5, mem)
	defer g.release()
	sch := tschema(allTypes)
	dict := map[string]bool{"s": true, "ds": true, "i32": true}
	opt := WriterOptions{MaxRowGroupRows: 600, DataPageSize: 4096}
	var parts []Part
	var wants [][][]any
	for p, sizes := range [][]int{{500, 400}, nil, {1}, {1300}} {
		var recs []arrow.RecordBatch
		for _, n := range sizes {
			rec, vals := g.batch(allTypes, n)
			recs = append(recs, rec)
			wants = append(wants, vals)
		}
		data := writeFast(t, mem, sch, dict, opt, recs)
		releaseAll(recs)
		parts = append(parts, bytes.NewReader(data))
		if p == 1 {
			md, _, err := readFooter(bytes.NewReader(data))
			if err != nil || len(md.RowGroups) != 0 || md.NumRows != 0 {
				t.Fatalf("empty part: %v", err)
			}
		}
	}
	var out bytes.Buffer
	rows, err := Splice(&out, parts)
	want := concat(wants)
	if err != nil || rows != int64(len(want[0])) {
		t.Fatalf("splice: %d rows, %v", rows, err)
	}
	path := writeTemp(t, "spliced.parquet", out.Bytes())
	names := colNames(allTypes)
	_, got := readOurs(t, mem, path, false)
	compareColumns(t, "deid reader", names, want, got)
	compareColumns(t, "parquet-go", names, want, readParquetGo(t, out.Bytes(), colTypes(allTypes)))
	checkStats(t, mem, path, out.Bytes(), names, want)
}

func TestFastWriterUnsupported(t *testing.T) {
	mem := checkedMem(t)
	for _, dt := range []arrow.DataType{
		&arrow.TimestampType{Unit: arrow.Second},
		arrow.BinaryTypes.LargeString,
		arrow.BinaryTypes.LargeBinary,
		arrow.PrimitiveTypes.Int16,
		arrow.PrimitiveTypes.Uint64,
		arrow.FixedWidthTypes.Date64,
		arrow.FixedWidthTypes.Float16,
		&arrow.Decimal128Type{Precision: 12, Scale: 2},
		arrow.ListOf(arrow.PrimitiveTypes.Int64),
		arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64}),
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.PrimitiveTypes.Int64},
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.LargeString},
	} {
		var buf bytes.Buffer
		sch := arrow.NewSchema([]arrow.Field{{Name: "ok", Type: tUTF8}, {Name: "x", Type: dt}}, nil)
		if _, err := NewFastPartWriter(&buf, sch, nil, WriterOptions{}, mem); !errors.Is(err, ErrUnsupported) || buf.Len() != 0 {
			t.Errorf("%s: %v, %d bytes written", dt, err, buf.Len())
		}
	}
	if _, err := NewFastPartWriter(new(bytes.Buffer), tschema(allTypes), nil, WriterOptions{Codec: "brotli"}, mem); err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown codec: %v", err)
	}
	// a batch of another type is refused
	w, err := NewFastPartWriter(new(bytes.Buffer), tschema(allTypes[5:6]), nil, WriterOptions{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	arr := buildArray(mem, arrow.PrimitiveTypes.Int64, []any{int64(1)})
	rec := newRecord(arrow.NewSchema([]arrow.Field{{Name: "i32", Type: arr.DataType()}}, nil), []arrow.Array{arr}, 1)
	if err := w.Write(rec); err == nil {
		t.Error("wrote int64 values to an int32 column")
	}
	rec.Release()
	arr.Release()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHybridEncoding decodes the encoders' output with a decoder written from
// the Parquet spec.
func TestHybridEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for iter := 0; iter < 2000; iter++ {
		n := r.IntN(300)
		width := 1 + r.IntN(20)
		vals := make([]uint32, n)
		for i := 0; i < n; {
			run := 1 + r.IntN([]int{3, 20, 100}[r.IntN(3)])
			v := r.Uint32() & (1<<width - 1)
			for k := 0; k < run && i < n; k++ {
				if r.IntN(8) == 0 {
					vals[i] = r.Uint32() & (1<<width - 1)
				} else {
					vals[i] = v
				}
				i++
			}
		}
		enc := encodeHybrid(nil, vals, width)
		if got, err := decodeHybrid(enc, width, n); err != nil || !reflect.DeepEqual(got, vals) && n > 0 {
			t.Fatalf("width %d, %d values: %v\n got %v\nwant %v", width, n, err, got, vals)
		}
		// the same as definition levels
		var bb bitBuf
		ones := 0
		bits := make([]uint32, n)
		for i := range bits {
			bits[i] = vals[i] & 1
			bb.appendBit(bits[i] == 1)
			ones += int(bits[i])
		}
		enc = encodeLevels(nil, bb.b, n, ones)
		if got, err := decodeHybrid(enc, 1, n); err != nil || !reflect.DeepEqual(got, bits) && n > 0 {
			t.Fatalf("levels, %d values: %v\n got %v\nwant %v", n, err, got, bits)
		}
	}
}

// decodeHybrid decodes n values of the RLE/bit-packed hybrid encoding.
func decodeHybrid(b []byte, width, n int) ([]uint32, error) {
	var out []uint32
	pos := 0
	uvarint := func() (uint64, error) {
		var v uint64
		for shift := 0; ; shift += 7 {
			if pos >= len(b) {
				return 0, errors.New("truncated varint")
			}
			c := b[pos]
			pos++
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return v, nil
			}
		}
	}
	for len(out) < n {
		h, err := uvarint()
		if err != nil {
			return out, err
		}
		if h&1 == 0 { // RLE
			var v uint32
			for i := 0; i < (width+7)/8; i++ {
				if pos >= len(b) {
					return out, errors.New("truncated RLE value")
				}
				v |= uint32(b[pos]) << (8 * i)
				pos++
			}
			for k := uint64(0); k < h>>1; k++ {
				out = append(out, v)
			}
			continue
		}
		count := int(h>>1) * 8
		nbytes := int(h>>1) * width
		if pos+nbytes > len(b) {
			return out, errors.New("truncated bit-packed run")
		}
		for k := 0; k < count; k++ {
			var v uint32
			for bit := 0; bit < width; bit++ {
				abs := k*width + bit
				if b[pos+abs/8]&(1<<(abs%8)) != 0 {
					v |= 1 << bit
				}
			}
			out = append(out, v)
		}
		pos += nbytes
	}
	if pos != len(b) {
		return out, fmt.Errorf("%d bytes left over", len(b)-pos)
	}
	return out[:n], nil
}

func TestFastPageHeader(t *testing.T) {
	for _, dict := range []bool{false, true} {
		b := appendPageHeader(nil, dict, 123456, 789, 0xdeadbeef, 4242, format.RLEDictionary)
		var h format.PageHeader
		if err := thrift.Unmarshal(new(thrift.CompactProtocol), b, &h); err != nil {
			t.Fatal(err)
		}
		if h.UncompressedPageSize != 123456 || h.CompressedPageSize != 789 || uint32(h.CRC) != 0xdeadbeef {
			t.Errorf("header %+v", h)
		}
		if dict {
			d, ok := h.DictionaryPageHeader.Get()
			if h.Type != format.DictionaryPage || !ok || d.NumValues != 4242 || d.Encoding != format.RLEDictionary {
				t.Errorf("dictionary header %+v", h)
			}
		} else {
			d, ok := h.DataPageHeader.Get()
			if h.Type != format.DataPage || !ok || d.NumValues != 4242 || d.Encoding != format.RLEDictionary ||
				d.DefinitionLevelEncoding != format.RLE || d.RepetitionLevelEncoding != format.RLE {
				t.Errorf("data page header %+v", h)
			}
		}
		ph, n, err := parsePageHeader(append(b, "body"...))
		if err != nil || n != len(b) || ph.crc != 0xdeadbeef || !ph.hasCRC {
			t.Errorf("parsePageHeader: %+v, %d of %d, %v", ph, n, len(b), err)
		}
	}
}

// duckdbPeer returns the DuckDB peer binary, or "".
func duckdbPeer() string {
	for _, p := range []string{filepath.Join(os.TempDir(), "deid-benchbin", "duckdb-peer"), "/tmp/benchbin/duckdb-peer"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// TestFastWriterDuckDB: DuckDB reads the same rows from arrow's file and the
// fast writer's, for a browsing-like table and for a table of every type
// with small pages, NULL-only chunks and dictionary fallbacks.
func TestFastWriterDuckDB(t *testing.T) {
	peer := duckdbPeer()
	if peer == "" {
		t.Skip("duckdb-peer not built")
	}
	diff := func(t *testing.T, mem memory.Allocator, sch *arrow.Schema, dict map[string]bool, opt WriterOptions, recs []arrow.RecordBatch, key string) {
		a := writeTemp(t, "arrow.parquet", writeArrow(t, mem, sch, dict, opt, recs))
		b := writeTemp(t, "fast.parquet", writeFast(t, mem, sch, dict, opt, recs))
		args := []string{"-mode", "diff", "-a", a, "-b", b}
		if key != "" {
			args = append(args, "-key", key)
		}
		var out bytes.Buffer
		cmd := exec.Command(peer, args...)
		cmd.Dir = t.TempDir()
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil || !strings.Contains(out.String(), "SAME") {
			t.Fatalf("duckdb-peer -mode diff: %v\n%s", err, out.String())
		}
		t.Logf("duckdb-peer: %s", strings.TrimSpace(out.String()))
	}
	t.Run("browsing", func(t *testing.T) {
		mem := checkedMem(t)
		sch, recs, dict := browsingBatches(mem, 40_000, 10_000, 1)
		defer releaseAll(recs)
		diff(t, mem, sch, dict, WriterOptions{MaxRowGroupRows: 16_384, DataPageSize: 64 << 10}, recs, "event_id")
	})
	t.Run("browsing, literals-only pages", func(t *testing.T) {
		// default pages (1 MiB): event_id's and the dictionary indices'
		// pages are coded without the match search (TestLiteralsOnlyChoice)
		mem := checkedMem(t)
		sch, recs, dict := browsingBatches(mem, 40_000, 40_000, 1)
		defer releaseAll(recs)
		diff(t, mem, sch, dict, WriterOptions{}, recs, "event_id")
	})
	t.Run("all types", func(t *testing.T) {
		mem := checkedMem(t)
		g := newTgen(21, mem, true)
		g.noNullEntries = true
		defer g.release()
		cols := make([]tcol, len(allTypes))
		copy(cols, allTypes)
		for i := range cols {
			cols[i].dictArrs = 0
			if _, ok := cols[i].typ.(*arrow.DictionaryType); ok {
				cols[i].dictArrs = 1
			}
		}
		var recs []arrow.RecordBatch
		for i := 0; i < 5; i++ {
			rec, _ := g.batch(cols, []int{1500, 0, 700, 2000, 1}[i])
			recs = append(recs, rec)
		}
		defer releaseAll(recs)
		dict := map[string]bool{}
		for i, c := range cols {
			dict[c.name] = i%3 != 2
		}
		diff(t, mem, tschema(cols), dict, WriterOptions{MaxRowGroupRows: 1000, DataPageSize: 2048, DictionaryPageLimit: 1500}, recs, "")
	})
}

// TestBitBufAppendBits checks bit copies at every alignment against bit-by-bit
// copies.
func TestBitBufAppendBits(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	src := make([]byte, 64)
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	for iter := 0; iter < 3000; iter++ {
		var got, want bitBuf
		for p := 0; p < 1+r.IntN(5); p++ {
			off := r.IntN(200)
			k := r.IntN(len(src)*8 - off)
			got.appendBits(src, off, k)
			for i := 0; i < k; i++ {
				want.appendBit(bitSet(src, off+i))
			}
		}
		if got.n != want.n || !bytes.Equal(got.b[:(got.n+7)/8], want.b[:(want.n+7)/8]) {
			t.Fatalf("iteration %d: got %d bits %x, want %d bits %x", iter, got.n, got.b, want.n, want.b)
		}
	}
}

// TestFastWriterAllNull: chunks without a value, dictionary-encoded or not,
// read back as NULLs and have no min or max.
func TestFastWriterAllNull(t *testing.T) {
	mem := checkedMem(t)
	cols := []tcol{
		{name: "s", typ: tUTF8}, {name: "sd", typ: tUTF8},
		{name: "ds", typ: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: tUTF8}, dictArrs: 1},
		{name: "f", typ: arrow.PrimitiveTypes.Float64}, {name: "fd", typ: arrow.PrimitiveTypes.Float64},
		{name: "bo", typ: arrow.FixedWidthTypes.Boolean},
	}
	g := newTgen(1, mem)
	defer g.release()
	const n = 2000
	arrs := make([]arrow.Array, len(cols))
	want := make([][]any, len(cols))
	for i, c := range cols {
		want[i] = make([]any, n)
		if c.dictArrs == 1 {
			dict := buildArray(mem, tUTF8, []any{"a", "b"})
			idx := buildArray(mem, arrow.PrimitiveTypes.Int32, make([]any, n))
			arrs[i] = array.NewDictionaryArray(c.typ, idx, dict)
			dict.Release()
			idx.Release()
		} else {
			arrs[i] = buildArray(mem, c.valueType(), want[i])
		}
	}
	rec := newRecord(tschema(cols), arrs, n)
	for _, a := range arrs {
		a.Release()
	}
	defer rec.Release()
	// and NaNs only: no min or max either
	nan := buildArray(mem, arrow.PrimitiveTypes.Float64, []any{math.NaN(), math.NaN(), nil})
	defer nan.Release()
	opt := WriterOptions{MaxRowGroupRows: 1500, DataPageSize: 100}
	dict := map[string]bool{"sd": true, "ds": true, "fd": true}
	data := writeFast(t, mem, tschema(cols), dict, opt, []arrow.RecordBatch{rec})
	path := writeTemp(t, "nulls.parquet", data)
	names := colNames(cols)
	_, got := readOurs(t, mem, path, true)
	compareColumns(t, "deid reader", names, want, got)
	compareColumns(t, "parquet-go", names, want, readParquetGo(t, data, colTypes(cols)))
	checkStats(t, mem, path, data, names, want)

	ncols := []tcol{{name: "f", typ: arrow.PrimitiveTypes.Float64}, {name: "fd", typ: arrow.PrimitiveTypes.Float64}}
	nrec := newRecord(tschema(ncols), []arrow.Array{nan, nan}, 3)
	defer nrec.Release()
	data = writeFast(t, mem, tschema(ncols), dict, opt, []arrow.RecordBatch{nrec})
	path = writeTemp(t, "nan.parquet", data)
	nwant := [][]any{arrowValues(nan), arrowValues(nan)}
	_, got = readOurs(t, mem, path, false)
	compareColumns(t, "deid reader", colNames(ncols), nwant, got)
	checkStats(t, mem, path, data, colNames(ncols), nwant)
}

// TestFastWriterSpareSameBytes: encoding a batch's columns on two
// goroutines (SetSpare) writes the same bytes as one after the other.
func TestFastWriterSpareSameBytes(t *testing.T) {
	mem := checkedMem(t)
	sch, recs, dict := browsingBatches(mem, 60_000, 7_000, 3)
	defer releaseAll(recs)
	opt := WriterOptions{MaxRowGroupRows: 16_384, DataPageSize: 64 << 10}
	var parts [2][]byte
	for k, spare := range []func() bool{nil, func() bool { return true }} {
		var buf bytes.Buffer
		w, err := NewFastPartWriter(&buf, sch, dict, opt, mem)
		if err != nil {
			t.Fatal(err)
		}
		w.SetSpare(spare)
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		parts[k] = buf.Bytes()
	}
	if !bytes.Equal(parts[0], parts[1]) {
		t.Errorf("with a spare CPU: %d bytes, without: %d, not the same", len(parts[1]), len(parts[0]))
	}
}

// TestFastWriterGrowingDictionary: batches whose dictionaries grow in place
// (each begins with the previous one's entries in the same memory, as
// transforms.DictionaryCache's lazy batches do), including entries with
// equal values, row groups cut mid-dictionary, dense batches among them and
// a dictionary that overflows, write the same bytes as the same values
// dense. A dictionary that starts elsewhere is not taken for a grown one.
func TestFastWriterGrowingDictionary(t *testing.T) {
	mem := checkedMem(t)
	r := rand.New(rand.NewPCG(5, 5))
	const entries = 3000
	pool := make([]string, entries)
	for i := range pool {
		pool[i] = fmt.Sprintf("%032x", r.Uint64()%1500) // repeated values among entries
	}
	// the entries' results, appended in place as batches first use them
	offs := make([]int32, 1, entries+1)
	data := make([]byte, 0, 32*entries)
	memo := make([]int32, entries)
	for i := range memo {
		memo[i] = -1
	}
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: tUTF8}
	sch := arrow.NewSchema([]arrow.Field{{Name: "v", Type: dt, Nullable: true}}, nil)
	dense := arrow.NewSchema([]arrow.Field{{Name: "v", Type: tUTF8, Nullable: true}}, nil)
	var grown, flat []arrow.RecordBatch
	defer func() { releaseAll(grown); releaseAll(flat) }()
	for b := 0; b < 12; b++ {
		n := 200 + r.IntN(700)
		ib := array.NewInt32Builder(mem)
		sb := array.NewStringBuilder(mem)
		for i := 0; i < n; i++ {
			if r.IntN(15) == 0 {
				ib.AppendNull()
				sb.AppendNull()
				continue
			}
			e := r.IntN(min(entries, 400*(b+1)))
			if b == 5 || b == 6 { // values first seen dense, then through the dictionary
				e = 2000 + r.IntN(entries-2000)
			}
			if memo[e] < 0 {
				memo[e] = int32(len(offs) - 1)
				data = append(data, pool[e]...)
				offs = append(offs, int32(len(data)))
			}
			ib.Append(memo[e])
			sb.Append(pool[e])
		}
		if b == 7 { // a copy in other memory: a new dictionary with the same entries
			offs, data = slices.Clone(offs), slices.Clip(slices.Clone(data))
			data = slices.Grow(data, 32*entries)
		}
		vd := array.NewData(tUTF8, len(offs)-1, []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offs)), memory.NewBufferBytes(data)}, nil, 0, 0)
		va := array.MakeFromData(vd)
		idx := ib.NewArray()
		da := array.NewDictionaryArray(dt, idx, va)
		sa := sb.NewArray()
		if b == 5 || b == 9 || b == 10 { // dense values in a chunk of dictionary entries
			grown = append(grown, array.NewRecordBatch(dense, []arrow.Array{sa}, int64(n)))
		} else {
			grown = append(grown, array.NewRecordBatch(sch, []arrow.Array{da}, int64(n)))
		}
		flat = append(flat, array.NewRecordBatch(dense, []arrow.Array{sa}, int64(n)))
		for _, a := range []arrow.Array{va, idx, da, sa} {
			a.Release()
		}
		vd.Release()
		ib.Release()
		sb.Release()
	}
	for _, opt := range []WriterOptions{
		{MaxRowGroupRows: 1500, DataPageSize: 512},
		{MaxRowGroupRows: 4000, DictionaryPageLimit: 20 << 10},
		{MaxRowGroupRows: 1 << 20},
	} {
		want := writeFast(t, mem, dense, map[string]bool{"v": true}, opt, flat)
		got := writeFast(t, mem, sch, map[string]bool{"v": true}, opt, grown)
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: growing dictionaries write %d bytes, dense values %d, not the same", opt, len(got), len(want))
		}
	}
}
