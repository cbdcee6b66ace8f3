package retain

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	apq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline/internal/pqtest"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// bloomGroup is a row group of the bloom filter tests: its rows cycle
// through users; old puts them past retention, else inside it.
type bloomGroup struct {
	users []int64
	old   bool
}

// bloomFile is a file of the bloom filter tests and how it is written.
type bloomFile struct {
	groups []bloomGroup
	// bloom writes a bloom filter on the subject column; tiny makes it 32
	// bytes, saturated by the row group's many users, so that it answers
	// "may contain" for every id (a false positive for the absent ones)
	bloom, tiny bool
	// corrupt overwrites the bloom filters' headers: unreadable filters
	// settle nothing
	corrupt bool
}

// bloomRows are the rows of f's row groups of rgRows rows each.
func bloomRows(n int, f bloomFile, rgRows int) []order {
	var rows []order
	for g, grp := range f.groups {
		for i := range rgRows {
			c := cutoff.Add(time.Duration(i) * time.Hour)
			if grp.old {
				c = cutoff.AddDate(0, 0, -(i + 2))
			}
			rows = append(rows, order{ID: fmt.Sprintf("f%d-g%d-%d", n, g, i), User: grp.users[i%len(grp.users)],
				Created: c.Add(-24 * time.Hour), Completed: tp(c), Amount: float64(i) + 0.5,
				Province: []string{"浙江省", "广东省"}[i%2], Phone: fmt.Sprintf("1380013%04d", i)})
		}
	}
	return rows
}

// strUser is the string subject id of user id u.
func strUser(u int64) string { return fmt.Sprintf("u%d", u) }

// writeBloomOrders writes rows with arrow-go's writer, in row groups of
// rgRows rows, with a bloom filter on user_id as f asks; strSubject makes
// user_id a string column ("u<id>").
func writeBloomOrders(t testing.TB, path string, rows []order, rgRows int64, f bloomFile, strSubject bool) {
	t.Helper()
	mem := memory.NewGoAllocator()
	fields := orderSchema(false).Fields()
	if strSubject {
		fields[1].Type = arrow.BinaryTypes.String
	}
	sch := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for _, o := range rows {
		b.Field(0).(*array.StringBuilder).Append(o.ID)
		if strSubject {
			b.Field(1).(*array.StringBuilder).Append(strUser(o.User))
		} else {
			b.Field(1).(*array.Int64Builder).Append(o.User)
		}
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(o.Created.UnixMicro()))
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(o.Completed.UnixMicro()))
		b.Field(4).(*array.Float64Builder).Append(o.Amount)
		b.Field(5).(*array.StringBuilder).Append(o.Province)
		b.Field(6).(*array.StringBuilder).Append(o.Phone)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	// zstd, as deid writes rewritten row groups: parquet-go (v0.32) reads
	// every row group of a column with the first one's codec
	opts := []apq.WriterProperty{apq.WithMaxRowGroupLength(rgRows), apq.WithStats(true), apq.WithCompression(compress.Codecs.Zstd)}
	switch {
	case f.tiny:
		opts = append(opts, apq.WithBloomFilterEnabledFor("user_id", true), apq.WithMaxBloomFilterBytes(32))
	case f.bloom:
		opts = append(opts, apq.WithBloomFilterEnabledFor("user_id", true), apq.WithBloomFilterNDVFor("user_id", 64), apq.WithBloomFilterFPPFor("user_id", 0.001))
	}
	data := encodeArrowGo(t, rec, apq.NewWriterProperties(opts...))
	if f.corrupt {
		r, err := file.NewParquetReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < r.NumRowGroups(); i++ {
			cc, err := r.MetaData().RowGroup(i).ColumnChunk(r.MetaData().Schema.ColumnIndexByName("user_id"))
			if err != nil || cc.BloomFilterOffset() <= 0 {
				t.Fatalf("row group %d: no bloom filter to corrupt (%v)", i, err)
			}
			copy(data[cc.BloomFilterOffset():], bytes.Repeat([]byte{0xff}, 16))
		}
		r.Close()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readBloomOrders reads the keys of a file's rows with parquet-go.
func readBloomOrders(t testing.TB, path string, strSubject bool) []string {
	t.Helper()
	var out []order
	if strSubject {
		type strRow struct {
			readRow
			User string `parquet:"user_id,optional"`
		}
		rows, err := parquet.ReadFile[strRow](path)
		if err != nil {
			t.Fatalf("parquet-go cannot read %s: %v", path, err)
		}
		for _, r := range rows {
			u, err := strconv.ParseInt(strings.TrimPrefix(r.User, "u"), 10, 64)
			if err != nil {
				t.Fatalf("%s: user_id %q", path, r.User)
			}
			r.readRow.User = u
			out = append(out, fromReadRow(r.readRow))
		}
	} else {
		rows, err := parquet.ReadFile[readRow](path)
		if err != nil {
			t.Fatalf("parquet-go cannot read %s: %v", path, err)
		}
		for _, r := range rows {
			out = append(out, fromReadRow(r))
		}
	}
	keys := make([]string, len(out))
	for i, o := range out {
		keys[i] = o.key()
	}
	sort.Strings(keys)
	return keys
}

func fromReadRow(r readRow) order {
	o := order{ID: r.ID, User: r.User, Created: r.Created.UTC(), Amount: r.Amount, Province: r.Province, Phone: r.Phone}
	if r.Completed != nil {
		c := r.Completed.UTC()
		o.Completed = &c
	}
	return o
}

// chunkBytes returns the bytes of every row group's column chunks, read
// with arrow-go's metadata.
func chunkBytes(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out [][]byte
	for i := 0; i < r.NumRowGroups(); i++ {
		rg := r.MetaData().RowGroup(i)
		start, end := int64(len(data)), int64(0)
		for j := 0; j < rg.NumColumns(); j++ {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				t.Fatal(err)
			}
			s := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < s {
				s = cc.DictionaryPageOffset()
			}
			start, end = min(start, s), max(end, s+cc.TotalCompressedSize())
		}
		out = append(out, data[start:end])
	}
	return out
}

// bloomSays reports whether the bloom filter of user_id in row group rg of
// the file at path may contain id, asked through arrow-go directly.
func bloomSays(t testing.TB, path string, rg int, id int64, strSubject bool) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rgr, err := r.GetBloomFilterReader().RowGroup(rg)
	if err != nil {
		t.Fatal(err)
	}
	bf, err := rgr.GetColumnBloomFilter(r.MetaData().Schema.ColumnIndexByName("user_id"))
	if err != nil || bf == nil {
		t.Fatalf("%s row group %d: no bloom filter on user_id (%v)", path, rg, err)
	}
	if strSubject {
		return (&metadata.TypedBloomFilter[apq.ByteArray]{BloomFilter: bf}).Check(apq.ByteArray(strUser(id)))
	}
	return (&metadata.TypedBloomFilter[int64]{BloomFilter: bf}).Check(id)
}

// span returns the users from lo to hi, step 2.
func span(lo, hi int64) []int64 {
	var out []int64
	for u := lo; u <= hi; u += 2 {
		out = append(out, u)
	}
	return out
}

// TestBloomFilters erases subjects from files written with and without
// bloom filters on the subject column, with integer and string subjects.
// Row groups whose statistics cannot rule out an erased subject (its id
// lies within their min and max, or the subjects are strings) are settled
// by their bloom filter, without decoding, and stay byte for byte; those
// holding an erased subject, or whose filter answers a false positive, are
// decoded, and the rows left are exactly the expected ones.
func TestBloomFilters(t *testing.T) {
	even, odd := span(1000, 1018), span(1001, 1019)
	many := span(1000, 5000) // saturates a 32-byte filter
	cases := []struct {
		name  string
		files []bloomFile
		opts  policyOpts
		// the row groups that are past retention are dropped; the bloom
		// filter tests only check the decoded and bloom-settled counts
		want report.RowGroupCounts
		// untouched files must stay byte for byte; within rewritten
		// files, copied lists the (old, new) row group pairs that must
		cmp [][2]int
	}{
		{name: "bloom filters settle the row groups without the subject", opts: policyOpts{erasure: []int64{1003}},
			files: []bloomFile{{bloom: true, groups: []bloomGroup{{users: even}, {users: odd}, {users: even}}}, {bloom: true, groups: []bloomGroup{{users: even}}}},
			want:  report.RowGroupCounts{Scanned: 4, Copied: 3, BloomSkipped: 3, Rewritten: 1}, cmp: [][2]int{{0, 0}, {2, 2}}},
		{name: "no bloom filter: decoded as before", opts: policyOpts{erasure: []int64{1003}},
			files: []bloomFile{{groups: []bloomGroup{{users: even}, {users: odd}, {users: even}}}, {groups: []bloomGroup{{users: even}}}},
			want:  report.RowGroupCounts{Scanned: 4, RuleColumnsOnly: 3, Rewritten: 1}},
		{name: "a false positive costs a decode only", opts: policyOpts{erasure: []int64{1003}},
			files: []bloomFile{{tiny: true, groups: []bloomGroup{{users: many}, {users: odd}}}},
			want:  report.RowGroupCounts{Scanned: 2, RuleColumnsOnly: 1, Rewritten: 1}},
		{name: "unreadable bloom filters: decoded", opts: policyOpts{erasure: []int64{1003}},
			files: []bloomFile{{bloom: true, corrupt: true, groups: []bloomGroup{{users: even}, {users: odd}}}},
			want:  report.RowGroupCounts{Scanned: 2, RuleColumnsOnly: 1, Rewritten: 1}},
		{name: "every row group settled: the file is untouched", opts: policyOpts{erasure: []int64{1003, 1005}},
			files: []bloomFile{{bloom: true, groups: []bloomGroup{{users: even}, {users: even}}}},
			want:  report.RowGroupCounts{Scanned: 2, Copied: 2, BloomSkipped: 2}},
		{name: "expired without a held subject: dropped on the bloom filter", opts: policyOpts{holds: []int64{1003}},
			files: []bloomFile{{bloom: true, groups: []bloomGroup{{users: even, old: true}, {users: odd, old: true}, {users: even}}}},
			want:  report.RowGroupCounts{Scanned: 3, Dropped: 1, BloomSkipped: 1, Copied: 1, Rewritten: 1}},
	}
	for _, c := range cases {
		for _, str := range []bool{false, true} {
			name := c.name + "/int64"
			if str {
				name = c.name + "/string"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				const rgRows = 400
				plan := writePolicy(t, dir, c.opts)
				if str {
					// the lists hold string ids
					for _, l := range []struct {
						name string
						ids  []int64
					}{{"erasure.csv", c.opts.erasure}, {"holds.csv", c.opts.holds}} {
						if l.ids == nil {
							continue
						}
						var b strings.Builder
						b.WriteString("user_id\n")
						for _, id := range l.ids {
							b.WriteString(strUser(id) + "\n")
						}
						if err := os.WriteFile(filepath.Join(dir, l.name), []byte(b.String()), 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
				var paths []string
				var want [][]string
				var before [][]byte
				var chunks [][][]byte
				for n, f := range c.files {
					p := filepath.Join(dir, "orders", fmt.Sprintf("part-%d.parquet", n))
					rows := bloomRows(n, f, rgRows)
					writeBloomOrders(t, p, rows, rgRows, f, str)
					for g, grp := range f.groups {
						for _, id := range c.opts.erasure {
							in := slices.Contains(grp.users, id)
							says := (f.bloom || f.tiny) && !f.corrupt
							if says && bloomSays(t, p, g, id, str) != in && !f.tiny {
								t.Fatalf("%s row group %d: the bloom filter answers %v for %d, the test expects it exact", p, g, !in, id)
							}
							if says && f.tiny && !bloomSays(t, p, g, id, str) {
								t.Fatalf("%s row group %d: the saturated filter should answer a false positive for %d", p, g, id)
							}
						}
					}
					var keys []string
					for _, o := range rows {
						if r, _ := oracle(o, c.opts, cutoff); r == "" {
							keys = append(keys, o.key())
						}
					}
					sort.Strings(keys)
					data, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					paths, want, before, chunks = append(paths, p), append(want, keys), append(before, data), append(chunks, chunkBytes(t, p))
				}
				rep := run(t, plan, false)
				ds := rep.Datasets[0]
				if ds.RowGroups != c.want {
					t.Errorf("row groups %+v, want %+v", ds.RowGroups, c.want)
				}
				for n, p := range paths {
					after, err := os.ReadFile(p)
					if len(want[n]) == 0 {
						if !os.IsNotExist(err) {
							t.Errorf("%s: every row expired, the file should be gone (%v)", p, err)
						}
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if got := readBloomOrders(t, p, str); !slices.Equal(got, want[n]) {
						t.Errorf("%s: %d rows, want %d:\n got %v\nwant %v", p, len(got), len(want[n]), got, want[n])
					}
					if len(want[n]) == len(c.files[n].groups)*rgRows {
						if !bytes.Equal(after, before[n]) {
							t.Errorf("%s: nothing to remove, yet the file changed", p)
						}
						continue
					}
					now := chunkBytes(t, p)
					for _, pair := range c.cmp {
						if !bytes.Equal(chunks[n][pair[0]], now[pair[1]]) {
							t.Errorf("%s: row group %d was settled by its bloom filter, yet its bytes changed (new row group %d)", p, pair[0], pair[1])
						}
					}
				}
				// a second run changes nothing
				again := run(t, plan, false).Datasets[0]
				if again.Files.Rewritten+again.Files.Deleted != 0 {
					t.Errorf("second run: files %+v, want nothing changed", again.Files)
				}
			})
		}
	}
}

// TestBloomHashesPerType checks the ids' hashes against filters arrow-go
// wrote for subject columns of every integer width and signedness and of
// strings: a listed id absent from the row group (within its min and max)
// is ruled out by the filter, a present one is not, and ids out of the
// column's range (which no row can hold) are left out rather than making
// the filter useless.
func TestBloomHashesPerType(t *testing.T) {
	users := span(1000, 1018) // even ids
	cases := []struct {
		typ    arrow.DataType
		absent []int64 // none in the row group: settled by the filter
	}{
		{arrow.PrimitiveTypes.Int64, []int64{1003, -7, 1 << 40}},
		{arrow.PrimitiveTypes.Uint64, []int64{1003, -7}},
		{arrow.PrimitiveTypes.Int32, []int64{1003, -7, 1 << 40}},
		{arrow.PrimitiveTypes.Uint32, []int64{1003, -7, 1 << 40}},
		{arrow.PrimitiveTypes.Int16, []int64{1003, -7}},
		{arrow.PrimitiveTypes.Uint8, []int64{3, -7, 300}}, // uint8 ids: 0..18, even
		{arrow.BinaryTypes.String, []int64{1003}},
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			mem := memory.NewGoAllocator()
			sch := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: c.typ, Nullable: true}}, nil)
			b := array.NewRecordBuilder(mem, sch)
			defer b.Release()
			ids := users
			if c.typ.ID() == arrow.UINT8 {
				ids = span(0, 18)
			}
			for _, u := range ids {
				switch bb := b.Field(0).(type) {
				case *array.Int64Builder:
					bb.Append(u)
				case *array.Uint64Builder:
					bb.Append(uint64(u))
				case *array.Int32Builder:
					bb.Append(int32(u))
				case *array.Uint32Builder:
					bb.Append(uint32(u))
				case *array.Int16Builder:
					bb.Append(int16(u))
				case *array.Uint8Builder:
					bb.Append(uint8(u))
				case *array.StringBuilder:
					bb.Append(strUser(u))
				}
			}
			rec := b.NewRecordBatch()
			defer rec.Release()
			f := writeOpen(t, mem, rec, apq.NewWriterProperties(apq.WithStats(true), apq.WithBloomFilterEnabledFor("user_id", true),
				apq.WithBloomFilterNDVFor("user_id", 64), apq.WithBloomFilterFPPFor("user_id", 0.001)))
			defer f.Close()
			d := &dataset{opt: &Options{Mem: mem, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
			cols := ruleCols{time: -1, fallback: -1, subject: f.LeafIndex("user_id"), subjectType: c.typ}
			set := func(extra ...int64) *transforms.SubjectSet {
				all := append(slices.Clone(c.absent), extra...)
				if c.typ.ID() == arrow.STRING {
					var s []string
					for _, id := range all {
						s = append(s, strUser(id))
					}
					return transforms.NewStringSubjectSet(s)
				}
				return transforms.NewIntSubjectSet(all)
			}
			if may, bloom := d.subjectsMayMatch(f, cols, 0, set()); may || !bloom {
				t.Errorf("ids %v, none in the row group: may %v, bloom %v; want ruled out by the bloom filter", c.absent, may, bloom)
			}
			present := ids[3]
			if may, bloom := d.subjectsMayMatch(f, cols, 0, set(present)); !may || bloom {
				t.Errorf("ids %v and %d, which is in the row group: may %v, bloom %v; want may", c.absent, present, may, bloom)
			}
		})
	}
}

// TestStatsUnsignedSubjects: the statistics of an unsigned subject column
// are read as unsigned, so ids at or above 2^31 (uint32) are not taken for
// negative numbers and an erased subject inside the row group's range is
// never ruled out by them.
func TestStatsUnsignedSubjects(t *testing.T) {
	const base = 3_000_000_000 // above math.MaxInt32
	for _, typ := range []arrow.DataType{arrow.PrimitiveTypes.Uint32, arrow.PrimitiveTypes.Uint64} {
		t.Run(typ.String(), func(t *testing.T) {
			mem := memory.NewGoAllocator()
			sch := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: typ, Nullable: true}}, nil)
			b := array.NewRecordBuilder(mem, sch)
			defer b.Release()
			for u := uint64(base); u < base+10; u += 2 {
				switch bb := b.Field(0).(type) {
				case *array.Uint32Builder:
					bb.Append(uint32(u))
				case *array.Uint64Builder:
					bb.Append(u)
				}
			}
			rec := b.NewRecordBatch()
			defer rec.Release()
			f := writeOpen(t, mem, rec, apq.NewWriterProperties(apq.WithStats(true)))
			defer f.Close()
			cols := ruleCols{time: -1, fallback: -1, subject: f.LeafIndex("user_id"), subjectType: typ}
			for _, c := range []struct {
				ids  []int64
				want bool
			}{
				{[]int64{base + 4}, true},     // in the row group
				{[]int64{base + 5}, true},     // absent, but within min and max: statistics cannot tell
				{[]int64{base + 11}, false},   // above max
				{[]int64{base - 1}, false},    // below min
				{[]int64{-1294967296}, false}, // base's bit pattern read as int32
			} {
				if got := statsMayMatch(f, cols, 0, transforms.NewIntSubjectSet(c.ids)); got != c.want {
					t.Errorf("ids %v: statistics may match %v, want %v", c.ids, got, c.want)
				}
			}
		})
	}
}

// encodeArrowGo encodes rec as a Parquet file with arrow-go's writer.
func encodeArrowGo(t testing.TB, rec arrow.RecordBatch, props *apq.WriterProperties) []byte {
	t.Helper()
	var buf bytes.Buffer
	pqtest.WriteArrow(t, &buf, rec, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	return buf.Bytes()
}

// writeOpen writes rec with arrow-go's writer and props to a file and opens
// it with parquetio.
func writeOpen(t *testing.T, mem memory.Allocator, rec arrow.RecordBatch, props *apq.WriterProperties) *parquetio.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.parquet")
	if err := os.WriteFile(p, encodeArrowGo(t, rec, props), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _, err := pqstore.Open(context.Background(), storage.Local{}, p, mem)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
