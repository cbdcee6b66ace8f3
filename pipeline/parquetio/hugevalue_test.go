package parquetio

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go/format"
)

// hugeColumns are columns of large and odd values: a UTF-8 value the limit
// cuts inside a code point, one of U+10FFFF only (no max can be rounded
// up), binary values of 0xFF only, with 0xFF tails and of NUL bytes, next
// to ordinary values, NULLs and empty strings.
func hugeColumns(big int) (names []string, types []arrow.DataType, vals [][]any) {
	rep := strings.Repeat
	s := []any{"a", rep("€", big/3), "zz", nil, "", rep("\U0010FFFF", big/8), "m", rep("b", big), "c"}
	b := []any{"\x00", rep("\xff", big), "\x01", "", nil, "ab" + rep("\xff", big/2), "x", rep("\x00", big/2), "y"}
	d := []any{"k", rep("€", big/3), "k", nil, rep("€", big/3), "k", "", "k", "k"}
	return []string{"s", "b", "d"}, []arrow.DataType{tUTF8, tBinary, tUTF8}, [][]any{s, b, d}
}

func hugeBatch(mem memory.Allocator, names []string, types []arrow.DataType, vals [][]any) arrow.RecordBatch {
	fields := make([]arrow.Field, len(names))
	arrs := make([]arrow.Array, len(names))
	for i, name := range names {
		fields[i] = arrow.Field{Name: name, Type: types[i], Nullable: true}
		bld := array.NewBinaryBuilder(mem, types[i].(arrow.BinaryDataType))
		for _, v := range vals[i] {
			if v == nil {
				bld.AppendNull()
			} else {
				bld.AppendString(v.(string))
			}
		}
		arrs[i] = bld.NewArray()
		bld.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(len(vals[0])))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// TestHugeValuesStayReadable writes values far larger than a page and the
// statistics limit with both writers: the footer stays small, every byte
// array bound is at most the limit and bounds every value, a value larger
// than a page is a page of its own, and deid's reader, arrow-go and
// parquet-go read every value back.
func TestHugeValuesStayReadable(t *testing.T) {
	const big = 300 << 10
	names, types, vals := hugeColumns(big)
	opt := WriterOptions{DataPageSize: 64 << 10, MaxRowGroupRows: 5}
	for _, w := range []struct {
		name  string
		write func(testing.TB, memory.Allocator, *arrow.Schema, map[string]bool, WriterOptions, []arrow.RecordBatch) []byte
	}{{"fast", writeFast}, {"arrow", writeArrowSpliced}} {
		for _, dict := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, dictionary %v", w.name, dict), func(t *testing.T) {
				mem := checkedMem(t)
				rec := hugeBatch(mem, names, types, vals)
				defer rec.Release()
				data := w.write(t, mem, rec.Schema(), map[string]bool{"s": dict, "b": dict, "d": dict}, opt, []arrow.RecordBatch{rec})
				md, _, err := readFooter(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if n := footerLen(data); n > 16<<10 {
					t.Errorf("footer of %d bytes", n)
				}
				checkBounds(t, md, vals, DefaultStatisticsLimit)
				if w.name == "fast" {
					checkPages(t, data, int(opt.DataPageSize))
				}
				path := writeTemp(t, "huge.parquet", data)
				_, got := readOurs(t, mem, path, false)
				compareColumns(t, "deid reader", names, vals, got)
				compareColumns(t, "parquet-go", names, vals, readParquetGo(t, data, types))
				compareColumns(t, "arrow-go", names, vals, readArrowGo(t, mem, data))
			})
		}
	}
}

// TestStatisticsLimitOption: StatisticsLimit sets the bound, values up to
// it stay exact, and the default keeps 1 KiB values exact.
func TestStatisticsLimitOption(t *testing.T) {
	for _, c := range []struct {
		limit, n int
		exact    bool
	}{{0, DefaultStatisticsLimit, true}, {0, DefaultStatisticsLimit + 1, false}, {16, 16, true}, {16, 17, false}, {3, 200, false}} {
		t.Run(fmt.Sprint(c.limit, "/", c.n), func(t *testing.T) {
			mem := checkedMem(t)
			v := strings.Repeat("q", c.n)
			vals := [][]any{{v, "a"}}
			rec := hugeBatch(mem, []string{"s"}, []arrow.DataType{tUTF8}, vals)
			defer rec.Release()
			data := writeFast(t, mem, rec.Schema(), nil, WriterOptions{StatisticsLimit: c.limit}, []arrow.RecordBatch{rec})
			md, _, err := readFooter(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			limit := c.limit
			if limit == 0 {
				limit = DefaultStatisticsLimit
			}
			st := md.RowGroups[0].Columns[0].MetaData.Statistics
			if got := string(st.MaxValue) == v; got != c.exact {
				t.Errorf("max %q: exact %v, want %v", st.MaxValue, got, c.exact)
			}
			checkBounds(t, md, vals, limit)
		})
	}
}

func footerLen(data []byte) int {
	n := len(data)
	return int(data[n-8]) | int(data[n-7])<<8 | int(data[n-6])<<16 | int(data[n-5])<<24
}

// writeArrowSpliced is writeArrow through Splice, as deid writes files
// from arrow-go's parts: the footer Splice writes pairs the statistics.
func writeArrowSpliced(t testing.TB, mem memory.Allocator, sch *arrow.Schema, dict map[string]bool, opt WriterOptions, recs []arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Splice(&buf, []Part{bytes.NewReader(writeArrow(t, mem, sch, dict, opt, recs))}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkBounds checks every byte array chunk's min and max: both present or
// both absent, no longer than limit, min ≤ every value ≤ max bytewise,
// valid UTF-8 for a UTF-8 column whose values are, and no deprecated min
// and max.
func checkBounds(t *testing.T, md *format.FileMetaData, vals [][]any, limit int) {
	t.Helper()
	start := 0
	for i, rg := range md.RowGroups {
		for j, c := range rg.Columns {
			st := c.MetaData.Statistics
			if (st.MinValue == nil) != (st.MaxValue == nil) {
				t.Errorf("row group %d column %d: min %s without max %s, or the other way round", i, j, show(string(st.MinValue)), show(string(st.MaxValue)))
			}
			if len(st.MinValue) > limit || len(st.MaxValue) > limit || st.Min != nil || st.Max != nil {
				t.Errorf("row group %d column %d: statistics of %d and %d bytes, deprecated %d and %d", i, j,
					len(st.MinValue), len(st.MaxValue), len(st.Min), len(st.Max))
			}
			_, text := md.Schema[j+1].LogicalType.Value.(*format.StringType)
			for _, v := range vals[j][start : start+int(rg.NumRows)] {
				s, ok := v.(string)
				if !ok {
					continue
				}
				if st.MinValue != nil && string(st.MinValue) > s || st.MaxValue != nil && string(st.MaxValue) < s {
					t.Errorf("row group %d column %d: [%s, %s] does not hold %s", i, j, show(string(st.MinValue)), show(string(st.MaxValue)), show(s))
				}
				if text && utf8.ValidString(s) && (!utf8.Valid(st.MinValue) || !utf8.Valid(st.MaxValue)) {
					t.Errorf("row group %d column %d: bounds %q, %q are not UTF-8", i, j, st.MinValue, st.MaxValue)
				}
			}
		}
		start += int(rg.NumRows)
	}
}

// checkPages: every data page holds at most about a page of bytes, or a
// single value.
func checkPages(t *testing.T, data []byte, pageSize int) {
	t.Helper()
	md, _, err := readFooter(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range md.RowGroups {
		for _, c := range rg.Columns {
			pos := c.MetaData.DataPageOffset
			if d := c.MetaData.DictionaryPageOffset; d > 0 && d < pos {
				pos = d
			}
			end := pos + c.MetaData.TotalCompressedSize
			for pos < end {
				h, n, err := parsePageHeader(data[pos:end])
				if err != nil {
					t.Fatal(err)
				}
				if h.hasData && int(h.uncompressedSize) > 2*pageSize && h.numValues != 1 {
					t.Errorf("column %s: page of %d bytes holds %d values", c.MetaData.PathInSchema[0], h.uncompressedSize, h.numValues)
				}
				pos += int64(n) + int64(h.compressedSize)
			}
		}
	}
}

// readArrowGo reads every column with arrow-go's own Parquet reader.
func readArrowGo(t *testing.T, mem memory.Allocator, data []byte) [][]any {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("arrow-go: %v", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 3}, mem)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("arrow-go: %v", err)
	}
	defer tbl.Release()
	out := make([][]any, tbl.NumCols())
	for j := range out {
		for _, a := range tbl.Column(j).Data().Chunks() {
			out[j] = append(out[j], arrowValues(a)...)
		}
	}
	return out
}

// TestLargeValuesBoundPagesAndRowGroups: a long value repeated through a
// dictionary page, then a value that makes the chunk fall back to PLAIN,
// does not re-encode the page into one huge PLAIN page; and row groups of
// large incompressible values are cut by bytes before MaxRowGroupRows.
func TestLargeValuesBoundPagesAndRowGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 120 MB")
	}
	t.Run("fallback", func(t *testing.T) {
		mem := checkedMem(t)
		long := strings.Repeat("L", 100<<10)
		vals := [][]any{{}}
		for i := 0; i < 400; i++ {
			vals[0] = append(vals[0], long, "short")
		}
		vals[0] = append(vals[0], strings.Repeat("N", 5<<20), "short")
		rec := hugeBatch(mem, []string{"s"}, []arrow.DataType{tUTF8}, vals)
		defer rec.Release()
		data := writeFast(t, mem, rec.Schema(), map[string]bool{"s": true}, WriterOptions{}, []arrow.RecordBatch{rec})
		checkPages(t, data, 8<<20) // 40 MB of values as PLAIN would be one page
		path := writeTemp(t, "fallback.parquet", data)
		_, got := readOurs(t, mem, path, false)
		compareColumns(t, "deid reader", []string{"s"}, vals, got)
		compareColumns(t, "arrow-go", []string{"s"}, vals, readArrowGo(t, mem, data))
	})
	t.Run("row group bytes", func(t *testing.T) {
		mem := checkedMem(t)
		r := rand.New(rand.NewPCG(1, 2))
		var recs []arrow.RecordBatch
		want := [][]any{{}}
		for b := 0; b < 8; b++ {
			vals := [][]any{{}}
			for i := 0; i < 100; i++ {
				v := make([]byte, 100<<10)
				for k := 0; k+8 <= len(v); k += 8 {
					binary.LittleEndian.PutUint64(v[k:], r.Uint64())
				}
				vals[0] = append(vals[0], string(v))
			}
			recs = append(recs, hugeBatch(mem, []string{"b"}, []arrow.DataType{tBinary}, vals))
			want[0] = append(want[0], vals[0]...)
		}
		defer releaseAll(recs)
		data := writeFast(t, mem, recs[0].Schema(), nil, WriterOptions{Codec: "none"}, recs)
		md, _, err := readFooter(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if len(md.RowGroups) < 2 {
			t.Errorf("%d row groups for 80 MB", len(md.RowGroups))
		}
		for i, rg := range md.RowGroups {
			if rg.TotalCompressedSize > maxRowGroupBytes+11<<20 {
				t.Errorf("row group %d: %d bytes", i, rg.TotalCompressedSize)
			}
		}
		if md.NumRows != int64(len(want[0])) {
			t.Errorf("%d rows, want %d", md.NumRows, len(want[0]))
		}
	})
}
