package parquetio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

var spliceSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "user", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// batch builds rows [from, from+n) of a deterministic table.
func batch(mem memory.Allocator, from, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, spliceSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		if i%11 == 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("ev-%d", i))
		}
		b.Field(1).(*array.Int64Builder).Append(int64(i % 97))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(i) * 3_600_000))
		b.Field(3).(*array.Float64Builder).Append(float64(i%500) / 100)
		b.Field(4).(*array.StringBuilder).Append([]string{"杭州市", "北京市", "延边朝鲜族自治州"}[i%3])
	}
	return b.NewRecordBatch()
}

// writePart encodes the given row ranges as one part.
func writePart(t *testing.T, mem memory.Allocator, ranges [][2]int, opt WriterOptions) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	pw, err := NewPartWriter(&buf, spliceSchema, map[string]bool{"city": true, "user": true}, opt, mem)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		rec := batch(mem, r[0], r[1])
		if err := pw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

func TestSplice(t *testing.T) {
	mem := checkedMem(t)
	opt := WriterOptions{MaxRowGroupRows: 700}
	parts := []Part{
		writePart(t, mem, [][2]int{{0, 500}, {500, 500}}, opt), // two row groups (700 + 300)
		writePart(t, mem, nil, opt),                            // empty: contributes nothing
		writePart(t, mem, [][2]int{{1000, 1}}, opt),
		writePart(t, mem, [][2]int{{1001, 999}}, opt),
	}
	var out bytes.Buffer
	rows, err := Splice(&out, parts)
	if err != nil || rows != 2000 {
		t.Fatalf("rows %d, %v", rows, err)
	}
	path := filepath.Join(t.TempDir(), "spliced.parquet")
	os.WriteFile(path, out.Bytes(), 0o644)

	// read back with parquet-go, an independent reader
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := parquet.OpenFile(f, int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(pf.RowGroups()) != 5 || pf.NumRows() != 2000 { // 700+300, 1, 700+299
		t.Errorf("%d row groups, %d rows", len(pf.RowGroups()), pf.NumRows())
	}
	type row struct {
		ID   *string   `parquet:"id,optional"`
		User int64     `parquet:"user,optional"`
		At   time.Time `parquet:"at,optional,timestamp(millisecond)"`
		Lat  float64   `parquet:"lat,optional"`
		City string    `parquet:"city,optional"`
	}
	got, err := parquet.Read[row](f, int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		wantID := fmt.Sprintf("ev-%d", i)
		if (i%11 == 0) != (r.ID == nil) || r.ID != nil && *r.ID != wantID || r.User != int64(i%97) ||
			!r.At.Equal(time.UnixMilli(int64(i)*3_600_000)) || r.Lat != float64(i%500)/100 ||
			r.City != []string{"杭州市", "北京市", "延边朝鲜族自治州"}[i%3] {
			t.Fatalf("row %d: %+v", i, r)
		}
	}

	// and with our own reader, through the checksum and row group machinery
	n, err := readAll(t, mem, path)
	if err != nil || n != 2000 {
		t.Fatalf("our reader: %d rows, %v", n, err)
	}
	ours, err := openPath(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	if !ours.DictionaryEncoded(0, ours.LeafIndex("city")) || ours.DictionaryEncoded(0, ours.LeafIndex("id")) {
		t.Error("per-column dictionary choice not kept")
	}

	// splicing the same parts again gives the same bytes
	var again bytes.Buffer
	if _, err := Splice(&again, parts); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Error("splice is not deterministic")
	}
}

func TestSpliceEmpty(t *testing.T) {
	mem := checkedMem(t)
	var out bytes.Buffer
	rows, err := Splice(&out, []Part{writePart(t, mem, nil, WriterOptions{})})
	if err != nil || rows != 0 {
		t.Fatal(rows, err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil || pf.NumRows() != 0 || len(pf.Schema().Fields()) != 5 {
		t.Fatalf("empty file: %v", err)
	}
}

func TestSpliceRejectsSchemaMismatch(t *testing.T) {
	mem := checkedMem(t)
	a := writePart(t, mem, [][2]int{{0, 10}}, WriterOptions{})
	var buf bytes.Buffer
	other := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int32}}, nil)
	pw, _ := NewPartWriter(&buf, other, nil, WriterOptions{}, mem)
	pw.Close()
	if _, err := Splice(new(bytes.Buffer), []Part{a, bytes.NewReader(buf.Bytes())}); err == nil {
		t.Fatal("spliced parts of different schemas")
	}
}

func TestWantsDictionary(t *testing.T) {
	mem := checkedMem(t)
	rec := batch(mem, 0, 5000)
	defer rec.Release()
	for i, want := range []bool{false, true, false, true, true} { // id, user, at, lat, city
		if got := WantsDictionary(rec.Column(i)); got != want {
			t.Errorf("%s: %v, want %v", rec.ColumnName(i), got, want)
		}
	}
}

// TestWantsDictionaryByValue: a dictionary array is judged by the values
// its rows hold, as the same values dense would be: entries repeated in
// the dictionary count once, and distinct values mean no dictionary.
func TestWantsDictionaryByValue(t *testing.T) {
	mem := checkedMem(t)
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	build := func(entries []string, idx []int32) *array.Dictionary {
		sb := array.NewStringBuilder(mem)
		defer sb.Release()
		sb.AppendValues(entries, nil)
		vals := sb.NewArray()
		defer vals.Release()
		ib := array.NewInt32Builder(mem)
		defer ib.Release()
		ib.AppendValues(idx, nil)
		ia := ib.NewArray()
		defer ia.Release()
		return array.NewDictionaryArray(dt, ia, vals)
	}
	const n = 2000
	distinct := make([]string, n)
	idx := make([]int32, n)
	repeated := make([]string, n) // 2,000 entries, two values
	for i := range distinct {
		distinct[i] = fmt.Sprintf("v%05d", i)
		idx[i] = int32(i)
		repeated[i] = []string{"a", "b"}[i%2]
	}
	for _, c := range []struct {
		name    string
		entries []string
		want    bool
	}{
		{"distinct values", distinct, false},
		{"repeated entries", repeated, true},
	} {
		d := build(c.entries, idx)
		if got := WantsDictionary(d); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		d.Release()
	}
}
