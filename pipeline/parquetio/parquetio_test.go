package parquetio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/deidproject/deid/pipeline/internal/testmem"
)

func checkedMem(t testing.TB) *testmem.Allocator {
	t.Helper()
	return testmem.New(t)
}

// readAll opens a file and decodes every row group, returning the row count.
func readAll(t testing.TB, mem memory.Allocator, loc string) (int64, error) {
	f, err := openPath(loc, mem)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cols := make([]int, f.Schema().NumFields())
	for i := range cols {
		cols[i] = i
	}
	var rows int64
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		err := f.ReadRowGroup(context.Background(), rg, ReadOptions{Columns: cols, BatchSize: 4096}, func(r arrow.RecordBatch) error {
			rows += r.NumRows()
			return nil
		})
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

const corpus = "../../../shared/corpus/parquet-testing-bad"

// TestBadCorpus: every malformed file of apache/parquet-testing's bad_data
// is rejected with an error that names the file and matches ErrCorrupt,
// never a panic. ARROW-GH-43605 is the exception: it is valid (dictionary
// indices RLE-encoded with bit width 0, legal for a one-value dictionary;
// it once crashed arrow-go's reader), and parquet-go and DuckDB read the same
// 21,186 rows from it, so deid reads it too.
func TestBadCorpus(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("corpus not found beside the checkout (%v)", err)
	}
	want := map[string]string{
		"ARROW-GH-41317.parquet":               "deserializing page header failed",
		"ARROW-GH-41321.parquet":               "invalid or corrupted bit width",
		"ARROW-GH-45185.parquet":               "nonzero repetition level",
		"ARROW-GH-47662.parquet":               "eof",
		"ARROW-RS-GH-6229-DICTHEADER.parquet":  "lies outside",
		"ARROW-RS-GH-6229-LEVELS.parquet":      "EOF",
		"PARQUET-1481.parquet":                 "invalid physical column type",
		"datapage_v1-corrupt-checksum.parquet": "page checksum mismatch",
	}
	files, _ := filepath.Glob(filepath.Join(corpus, "*.parquet"))
	if len(files) < len(want)+1 {
		t.Fatalf("corpus has %d files", len(files))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			mem := checkedMem(t)
			rows, err := readAll(t, mem, path)
			if name == "ARROW-GH-43605.parquet" {
				if err != nil || rows != 21186 {
					t.Fatalf("valid file: %d rows, %v", rows, err)
				}
				return
			}
			sub, known := want[name]
			if !known {
				t.Fatalf("new corpus file: decide what deid must say about it (got %v)", err)
			}
			if err == nil {
				t.Fatal("accepted a corrupt file")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), sub) {
				t.Errorf("error %q: want ErrCorrupt naming the file and mentioning %q", err, sub)
			}
			if name == "datapage_v1-corrupt-checksum.parquet" && !errors.Is(err, ErrChecksum) {
				t.Errorf("checksum error does not match ErrChecksum: %v", err)
			}
		})
	}
}

// sampleRow is written by parquet-go, which stores page CRCs.
type sampleRow struct {
	ID    string    `parquet:"id"`
	User  int64     `parquet:"user_id,optional"`
	Query *string   `parquet:"query,optional"`
	At    time.Time `parquet:"at,timestamp(millisecond)"`
	Lat   float64   `parquet:"lat"`
	City  string    `parquet:"city,dict"`
}

// writeSample writes n rows with parquet-go in row groups of rg rows.
func writeSample(t testing.TB, path string, n, rg int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[sampleRow](f, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(int64(rg)),
		parquet.PageBufferSize(4096))
	r := rand.New(rand.NewPCG(1, 2))
	rows := make([]sampleRow, n)
	for i := range rows {
		q := fmt.Sprintf("查询 %d 13800138000", r.IntN(1000))
		rows[i] = sampleRow{ID: fmt.Sprintf("ev-%06d", i), User: int64(r.IntN(100)), At: time.UnixMilli(int64(i) * 1000).UTC(),
			Lat: float64(r.IntN(1e6)) / 1e4, City: []string{"杭州市", "北京市", "上海市"}[r.IntN(3)]}
		if i%7 != 0 {
			rows[i].Query = &q
		}
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestReadValidFile(t *testing.T) {
	mem := checkedMem(t)
	path := filepath.Join(t.TempDir(), "ok.parquet")
	writeSample(t, path, 5000, 1500)
	rows, err := readAll(t, mem, path)
	if err != nil || rows != 5000 {
		t.Fatalf("%d rows, %v", rows, err)
	}
	f, err := openPath(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.NumRowGroups() != 4 || f.RowGroupRows(3) != 500 {
		t.Errorf("row groups %d, last %d", f.NumRowGroups(), f.RowGroupRows(3))
	}
	city := f.LeafIndex("city")
	if !f.DictionaryEncoded(0, city) || f.DictionaryEncoded(0, f.LeafIndex("id")) {
		t.Errorf("dictionary detection: city %v id %v", f.DictionaryEncoded(0, city), f.DictionaryEncoded(0, f.LeafIndex("id")))
	}
	// reading city as a dictionary gives the same values
	var got []string
	err = f.ReadRowGroup(context.Background(), 0, ReadOptions{Columns: []int{city}, BatchSize: 700, Dictionary: map[int]bool{city: true}},
		func(r arrow.RecordBatch) error {
			d, ok := r.Column(0).(*array.Dictionary)
			if !ok {
				return fmt.Errorf("city read as %T", r.Column(0))
			}
			for i := 0; i < d.Len(); i++ {
				got = append(got, d.Dictionary().(*array.String).Value(d.GetValueIndex(i)))
			}
			return nil
		})
	if err != nil || len(got) != 1500 {
		t.Fatalf("%d values, %v", len(got), err)
	}
}

// pageBodies returns the byte ranges of every page body in a file, found by
// walking page headers from each column chunk's start.
func pageBodies(t *testing.T, data []byte) [][2]int {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]int
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			start := c.MetaData.DataPageOffset
			if c.MetaData.DictionaryPageOffset > 0 && c.MetaData.DictionaryPageOffset < start {
				start = c.MetaData.DictionaryPageOffset
			}
			end := start + c.MetaData.TotalCompressedSize
			for pos := start; pos < end; {
				h, n, err := parsePageHeader(data[pos:end])
				if err != nil {
					t.Fatalf("page header at %d: %v", pos, err)
				}
				if !h.hasCRC {
					t.Fatalf("parquet-go wrote a page without CRC at %d", pos)
				}
				body := int(pos) + n
				out = append(out, [2]int{body, body + int(h.compressedSize)})
				pos = int64(body) + int64(h.compressedSize)
			}
		}
	}
	return out
}

// TestChecksumCatchesEveryPage flips one byte in the body of each page in
// turn: every flip is caught, as a checksum mismatch, never silently read.
func TestChecksumCatchesEveryPage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ok.parquet")
	writeSample(t, path, 3000, 1000)
	data, _ := os.ReadFile(path)
	bodies := pageBodies(t, data)
	if len(bodies) < 12 {
		t.Fatalf("only %d pages", len(bodies))
	}
	for i, b := range bodies {
		if b[1] == b[0] {
			continue
		}
		bad := bytes.Clone(data)
		bad[(b[0]+b[1])/2] ^= 0x40
		p := filepath.Join(dir, fmt.Sprintf("bad%d.parquet", i))
		os.WriteFile(p, bad, 0o644)
		mem := checkedMem(t)
		_, err := readAll(t, mem, p)
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), p) {
			t.Errorf("page %d flipped: %v", i, err)
		}
	}
}

// TestDamagedFiles: empty, truncated, random and foreign files are rejected
// with ErrCorrupt naming the file.
func TestDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	writeSample(t, good, 2000, 700)
	data, _ := os.ReadFile(good)
	r := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, 5000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	cases := map[string][]byte{
		"empty":            {},
		"magic only":       []byte("PAR1"),
		"text":             []byte("event_id,user_id\n1,2\n"),
		"random":           random,
		"random with PAR1": append(append([]byte("PAR1"), random...), []byte("\x10\x00\x00\x00PAR1")...),
		"truncated footer": data[:len(data)-3],
		"no footer":        data[:len(data)/2],
		"cut mid-file":     append(bytes.Clone(data[:len(data)/3]), data[len(data)-40:]...),
		"zeroed middle":    zeroed(data, len(data)/4, len(data)/2),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".parquet")
			os.WriteFile(p, b, 0o644)
			mem := checkedMem(t)
			_, err := readAll(t, mem, p)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v: want ErrCorrupt naming %s", err, p)
			}
		})
	}
	if _, err := readAll(t, memory.NewGoAllocator(), filepath.Join(dir, "missing.parquet")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func zeroed(b []byte, from, to int) []byte {
	c := bytes.Clone(b)
	clear(c[from:to])
	return c
}

func TestPageHeaderParser(t *testing.T) {
	headers := []format.PageHeader{
		{Type: format.DataPage, UncompressedPageSize: 100, CompressedPageSize: 40, CRC: 0x7fabcdef,
			DataPageHeader: thrift.New(format.DataPageHeader{NumValues: 10, Encoding: format.Plain, Statistics: format.Statistics{MinValue: []byte("a"), MaxValue: []byte("zz"), NullCount: 3}})},
		{Type: format.DictionaryPage, UncompressedPageSize: 5, CompressedPageSize: 5, CRC: -12345,
			DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: 1, Encoding: format.Plain, IsSorted: true})},
		{Type: format.DataPageV2, UncompressedPageSize: 1 << 20, CompressedPageSize: 1 << 19,
			DataPageHeaderV2: thrift.New(format.DataPageHeaderV2{NumValues: 5, NumNulls: 1, NumRows: 5, Encoding: format.RLEDictionary,
				DefinitionLevelsByteLength: 3, IsCompressed: thrift.New(true)})},
	}
	for i, h := range headers {
		b, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, "body"...)
		got, n, err := parsePageHeader(b)
		if err != nil || n != len(b)-4 {
			t.Fatalf("header %d: n=%d of %d, %v", i, n, len(b)-4, err)
		}
		if got.pageType != int32(h.Type) || got.compressedSize != h.CompressedPageSize ||
			got.uncompressedSize != h.UncompressedPageSize || got.hasCRC != (h.CRC != 0) || got.crc != uint32(h.CRC) {
			t.Errorf("header %d: %+v", i, got)
		}
		for cut := 0; cut < n; cut++ {
			if _, _, err := parsePageHeader(b[:cut]); !errors.Is(err, errShortHeader) {
				t.Errorf("header %d cut at %d: %v", i, cut, err)
			}
		}
	}
}

func FuzzPageHeader(f *testing.F) {
	h := format.PageHeader{Type: format.DataPage, UncompressedPageSize: 9, CompressedPageSize: 9, CRC: 5,
		DataPageHeader: thrift.New(format.DataPageHeader{NumValues: 1, Statistics: format.Statistics{MinValue: []byte("x")}})}
	b, _ := thrift.Marshal(new(thrift.CompactProtocol), &h)
	f.Add(b)
	f.Add([]byte{0x15, 0x00, 0x15, 0x12, 0x19, 0xfc, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, err := parsePageHeader(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) || got.compressedSize < 0 {
			t.Fatalf("n=%d len=%d header %+v", n, len(b), got)
		}
		var ref format.PageHeader
		if thrift.Unmarshal(new(thrift.CompactProtocol), b[:n], &ref) == nil &&
			(ref.CompressedPageSize != got.compressedSize || int32(ref.Type) != got.pageType) {
			t.Fatalf("parquet-go reads %+v, we read %+v", ref, got)
		}
	})
}

func TestDictionaryEntries(t *testing.T) {
	mem := checkedMem(t)
	path := filepath.Join(t.TempDir(), "ok.parquet")
	writeSample(t, path, 5000, 1500)
	f, err := openPath(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, ok := f.DictionaryEntries(0, f.LeafIndex("city")); !ok || n != 3 {
		t.Errorf("city dictionary: %d entries, %v; want 3", n, ok)
	}
	if _, ok := f.DictionaryEntries(0, f.LeafIndex("id")); ok {
		t.Error("id has no dictionary page")
	}
}

// openPath opens the Parquet file at path on local disk.
func openPath(path string, mem memory.Allocator) (*File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := src.Stat()
	if err != nil {
		src.Close()
		return nil, err
	}
	return Open(src, st.Size(), path, mem)
}

// closeCounter is a file's bytes that count how often they are closed.
type closeCounter struct {
	*bytes.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// TestOpenOwnsTheSource: Open closes its source when it fails (an empty,
// short or non-Parquet file: an ErrCorrupt naming the location) and File's
// Close closes it once.
func TestOpenOwnsTheSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.parquet")
	writeSample(t, path, 10, 10)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, []byte("PAR1"), bytes.Repeat([]byte("x"), 100), good[:len(good)-3]} {
		src := &closeCounter{Reader: bytes.NewReader(bad)}
		_, err := Open(src, int64(len(bad)), "lake/bad\x07.parquet", memory.DefaultAllocator)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"lake/bad\a.parquet"`) || src.closed != 1 {
			t.Errorf("%d bytes: %v, closed %d times; want ErrCorrupt naming the quoted location, closed once", len(bad), err, src.closed)
		}
	}
	src := &closeCounter{Reader: bytes.NewReader(good)}
	f, err := Open(src, int64(len(good)), "ok.parquet", memory.DefaultAllocator)
	if err != nil || src.closed != 0 {
		t.Fatalf("%v, closed %d times", err, src.closed)
	}
	if err := f.Close(); err != nil || src.closed != 1 {
		t.Errorf("Close: %v, source closed %d times", err, src.closed)
	}
}

// TestReadRowGroupCallerPanic: a panic in the caller's own code (the batch
// callback, the row filter's Select), on the lean reader and arrow-go's,
// leaves ReadRowGroup as a *CallerPanic with its value and stack, never as
// an ErrCorrupt blaming the file.
func TestReadRowGroupCallerPanic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.parquet")
	writeSample(t, path, 3000, 1000)
	f, err := openPath(path, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id := f.LeafIndex("id")
	boom := func() { panic("boom") }
	for _, arrowGo := range []bool{false, true} {
		for _, where := range []string{"callback", "select"} {
			t.Run(fmt.Sprint(where, " arrow-go ", arrowGo), func(t *testing.T) {
				opt := ReadOptions{Columns: []int{id}, BatchSize: 100, ArrowGo: arrowGo}
				fn := func(arrow.RecordBatch) error { boom(); return nil }
				if where == "select" {
					if arrowGo {
						t.Skip("the row filter is the lean reader's")
					}
					fn = func(arrow.RecordBatch) error { return nil }
					opt.Filter = &RowFilter{Columns: []int{0}, Select: func([]arrow.Array) ([]bool, int, []arrow.Array, error) {
						boom()
						return nil, 0, nil, nil
					}}
				}
				var err error
				var got any
				func() {
					defer func() { got = recover() }()
					err = f.ReadRowGroup(context.Background(), 1, opt, fn)
				}()
				cp, ok := got.(*CallerPanic)
				if !ok || cp.Value != "boom" || !strings.Contains(string(cp.Stack), "TestReadRowGroupCallerPanic") {
					t.Fatalf("recovered %v, error %v; want a CallerPanic of boom with its stack", got, err)
				}
			})
		}
	}
}
