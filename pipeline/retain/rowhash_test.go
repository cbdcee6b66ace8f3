package retain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// hashRows returns the row hashes of one batch of the given columns.
func hashRows(t testing.TB, cols ...arrow.Array) []rowHash {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: string(rune('a' + i)), Type: c.DataType(), Nullable: true}
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(cols[0].Len()))
	defer rec.Release()
	var h rowHasher
	return h.appendHashes(nil, rec)
}

// strs builds a string array; nil is NULL.
func strs(mem memory.Allocator, vs ...any) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, v := range vs {
		if v == nil {
			b.AppendNull()
		} else {
			b.Append(v.(string))
		}
	}
	return b.NewArray()
}

// dictOf builds a dictionary array of string entries and indices (nil:
// NULL).
func dictOf(mem memory.Allocator, entries []string, idx ...any) arrow.Array {
	d := strs(mem, anys(entries)...)
	defer d.Release()
	ib := array.NewInt32Builder(mem)
	defer ib.Release()
	for _, i := range idx {
		if i == nil {
			ib.AppendNull()
		} else {
			ib.Append(int32(i.(int)))
		}
	}
	ia := ib.NewArray()
	defer ia.Release()
	return array.NewDictionaryArray(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, ia, d)
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// TestRowHashEqualIffEqual: two rows hash alike when their values are
// equal column by column, whatever the encoding (a dictionary entry as the
// plain value, a slice of an array as a fresh one, any NaN as another),
// and differently when a value differs, including a NULL against an empty
// string or a zero, and values that run together when concatenated.
func TestRowHashEqualIffEqual(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	huge := strings.Repeat("长", 1<<20)
	f64 := func(vs ...float64) arrow.Array {
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.AppendValues(vs, nil)
		return b.NewArray()
	}
	i64 := func(valid []bool, vs ...int64) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.AppendValues(vs, valid)
		return b.NewArray()
	}
	dec := func(vs ...int64) arrow.Array {
		b := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 10, Scale: 2})
		defer b.Release()
		for _, v := range vs {
			b.Append(decimal128.FromI64(v))
		}
		return b.NewArray()
	}
	cases := []struct {
		name string
		cols func() []arrow.Array // two or more rows
		same [][2]int             // rows that must hash alike; every other pair differs
	}{
		{"strings", func() []arrow.Array {
			return []arrow.Array{strs(mem, "13800138000", "13800138000", "13800138001", "", nil, "\xff\xfe", "\xff\xfe", huge, huge)}
		}, [][2]int{{0, 1}, {5, 6}, {7, 8}}},
		{"run together", func() []arrow.Array {
			return []arrow.Array{strs(mem, "ab", "a", "ab"), strs(mem, "c", "bc", "c")}
		}, [][2]int{{0, 2}}},
		{"NULL against empty and zero", func() []arrow.Array {
			return []arrow.Array{strs(mem, nil, "", nil, nil), i64([]bool{true, true, false, false}, 0, 0, 0, 7)}
		}, [][2]int{{2, 3}}}, // a NULL is NULL whatever lies under it
		{"floats", func() []arrow.Array {
			return []arrow.Array{f64(math.NaN(), math.Float64frombits(0x7ff0000000000abc), 0, math.Copysign(0, -1), math.Inf(1), 1.5, 1.5)}
		}, [][2]int{{0, 1}, {5, 6}}},
		{"dictionary as plain", func() []arrow.Array {
			return []arrow.Array{dictOf(mem, []string{"x", "y", ""}, 0, 1, nil, 2, 0), strs(mem, "x", "x", "x", "x", "x")}
		}, [][2]int{{0, 4}}},
		{"decimal by its text", func() []arrow.Array { return []arrow.Array{dec(12345, 12345, 12346)} }, [][2]int{{0, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cols := c.cols()
			defer func() {
				for _, a := range cols {
					a.Release()
				}
			}()
			hs := hashRows(t, cols...)
			same := map[[2]int]bool{}
			for _, p := range c.same {
				same[p] = true
			}
			for i := range hs {
				for j := i + 1; j < len(hs); j++ {
					if eq := hs[i] == hs[j]; eq != same[[2]int{i, j}] {
						t.Errorf("rows %d and %d: hashes equal %v, want %v", i, j, eq, !eq)
					}
				}
			}
		})
	}
	// a dictionary column hashes as its plain values, and a slice as the
	// same values built fresh
	plain := strs(mem, "x", "y", nil, "", "x")
	defer plain.Release()
	d := dictOf(mem, []string{"x", "y", ""}, 0, 1, nil, 2, 0)
	defer d.Release()
	if a, b := hashRows(t, plain), hashRows(t, d); !equalHashes(a, b) {
		t.Errorf("dictionary %v, plain %v", b, a)
	}
	whole := f64(1, 2, 3, 4)
	defer whole.Release()
	part := array.NewSlice(whole, 1, 3)
	defer part.Release()
	fresh := f64(2, 3)
	defer fresh.Release()
	if a, b := hashRows(t, part), hashRows(t, fresh); !equalHashes(a, b) {
		t.Errorf("slice %v, fresh %v", a, b)
	}
	sp := array.NewSlice(plain, 1, 4)
	defer sp.Release()
	sd := array.NewSlice(d, 1, 4)
	defer sd.Release()
	if a, b := hashRows(t, sp), hashRows(t, sd); !equalHashes(a, b) {
		t.Errorf("sliced dictionary %v, sliced plain %v", b, a)
	}
}

func equalHashes(a, b []rowHash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzRowHash: two rows of two text columns (each maybe NULL) hash alike
// exactly when their values are equal.
func FuzzRowHash(f *testing.F) {
	f.Add("ab", "c", "a", "bc", false, false)
	f.Add("", "", "", "", true, false)
	f.Add("x", "\xff", "x", "\xff", false, true)
	f.Fuzz(func(t *testing.T, a1, b1, a2, b2 string, null1, null2 bool) {
		mem := memory.NewGoAllocator()
		var x1, x2 any = a1, a2
		if null1 {
			x1 = nil
		}
		if null2 {
			x2 = nil
		}
		ca, cb := strs(mem, x1, x2), strs(mem, b1, b2)
		defer ca.Release()
		defer cb.Release()
		hs := hashRows(t, ca, cb)
		equal := x1 == x2 && b1 == b2
		if (hs[0] == hs[1]) != equal {
			t.Errorf("(%q, %q) and (%q, %q): hashes equal %v", x1, b1, x2, b2, !equal)
		}
	})
}

// BenchmarkRowHashes hashes batches of the bench's browsing shape (text,
// timestamps, integers, a dictionary) and guards that a warm hasher
// allocates nothing per batch.
func BenchmarkRowHashes(b *testing.B) {
	mem := memory.NewGoAllocator()
	const n = 8192
	sb, tb, ib := array.NewStringBuilder(mem), array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}), array.NewInt64Builder(mem)
	for i := range n {
		sb.Append(strings.Repeat("0123456789abcdef", 2)[:16+i%16])
		tb.Append(arrow.Timestamp(1_700_000_000_000_000 + int64(i)))
		ib.Append(int64(i % 100))
	}
	cols := []arrow.Array{sb.NewArray(), tb.NewArray(), ib.NewArray()}
	idx := make([]any, n)
	for i := range idx {
		idx[i] = i % 3
	}
	cols = append(cols, dictOf(mem, []string{"杭州", "北京", "上海"}, idx...))
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: string(rune('a' + i)), Type: c.DataType(), Nullable: true}
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, n)
	var h rowHasher
	dst := make([]rowHash, 0, n)
	h.appendHashes(dst, rec)
	if allocs := testing.AllocsPerRun(10, func() { dst = h.appendHashes(dst[:0], rec) }); allocs > 0 {
		b.Fatalf("%v allocations per batch", allocs)
	}
	b.SetBytes(n)
	b.ResetTimer()
	for range b.N {
		dst = h.appendHashes(dst[:0], rec)
	}
}

// TestRowsFrom: the erasure's check of a staged file maps each re-encoded
// row group back to the published one it came from (copied ones and one
// with every row erased have none; one re-encoded as two has two), checks
// once all of a published row group's are in, in any order and from
// several goroutines, and refuses a row that is not one of its rows, even
// when another published row group holds it.
func TestRowsFrom(t *testing.T) {
	mk := func() *outputJob {
		some := []transforms.Fate{transforms.FateKeep}
		return &outputJob{dst: "d", loc: "out/f.parquet",
			fates:  [][]transforms.Fate{nil, some, some, nil, some},
			groups: []int{0, 2, 0, 0, 1},
			older:  [][]rowHash{nil, {1, 2, 3, 3}, {9}, nil, {4, 5}}}
	}
	// the staged file's re-encoded row groups: published 1 (twice), then 4
	for _, c := range []struct {
		name   string
		calls  map[int][]rowHash
		order  []int
		refuse bool
	}{
		{"subsets", map[int][]rowHash{0: {3, 1}, 1: {3}, 2: {5}}, []int{0, 1, 2}, false},
		{"any order", map[int][]rowHash{0: {3, 1}, 1: {3}, 2: {5}}, []int{2, 1, 0}, false},
		{"a duplicate too many", map[int][]rowHash{0: {3, 3}, 1: {3}, 2: {}}, []int{0, 1, 2}, true},
		{"a row of another row group", map[int][]rowHash{0: {1}, 1: {2}, 2: {9}}, []int{0, 1, 2}, true},
		{"a new row", map[int][]rowHash{0: {1}, 1: {7}, 2: {4}}, []int{1, 2, 0}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := mk().rowsFrom()
			var refused error
			var wg sync.WaitGroup
			var mu sync.Mutex
			for _, k := range c.order {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := check(k, slices.Clone(c.calls[k])); err != nil {
						mu.Lock()
						refused = err
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if (refused != nil) != c.refuse || refused != nil && !errors.Is(refused, ErrNewRows) {
				t.Errorf("error %v, want refused %v", refused, c.refuse)
			}
		})
	}
}

// TestRewriteDictionaryReadsOnlyFast: the erasure's rewrite reads
// dictionary-encoded text as dictionaries only into deid's own encoder; a
// file with a column that encoder lacks (int16, so arrow-go's writes the
// part) is rewritten from dense values, and neither leaves an entry of the
// erased rows in a dictionary page.
func TestRewriteDictionaryReadsOnlyFast(t *testing.T) {
	for _, withInt16 := range []bool{false, true} {
		t.Run(fmt.Sprint("int16 ", withInt16), func(t *testing.T) {
			mem := memory.NewGoAllocator()
			fields := []arrow.Field{{Name: "user", Type: arrow.BinaryTypes.String, Nullable: true}}
			sb := array.NewStringBuilder(mem)
			for i := range 100 {
				sb.Append(fmt.Sprintf("pseudonym-%02d", i%10))
			}
			cols := []arrow.Array{sb.NewArray()}
			if withInt16 {
				ib := array.NewInt16Builder(mem)
				for i := range 100 {
					ib.Append(int16(i))
				}
				fields = append(fields, arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int16, Nullable: true})
				cols = append(cols, ib.NewArray())
			}
			rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 100)
			dir := t.TempDir()
			src := filepath.Join(dir, "published.parquet")
			f, err := os.Create(src)
			if err != nil {
				t.Fatal(err)
			}
			w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			w.Close()
			pf, _, err := pqstore.Open(context.Background(), storage.Local{}, src, mem)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			if !pf.DictionaryEncoded(0, 0) {
				t.Fatal("the text column is not dictionary-encoded: the test proves nothing")
			}
			fates := make([]transforms.Fate, 100)
			for i := range fates {
				if i%10 == 3 { // pseudonym-03's rows are erased
					fates[i] = transforms.FateErased
				}
			}
			d := &dataset{opt: &Options{Mem: mem, BatchSize: 32, scratch: dir}}
			var hashes []rowHash
			part, groups, err := d.rewrite(context.Background(), pf, 0, fates, sinks{hashes: &hashes})
			if err != nil {
				t.Fatal(err)
			}
			defer part.Discard()
			if groups != 1 || len(hashes) != 100 {
				t.Fatalf("%d groups, %d rows hashed", groups, len(hashes))
			}
			out := filepath.Join(dir, "part.parquet")
			b := make([]byte, part.Size())
			if _, err := part.ReadAt(b, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			os.WriteFile(out, b, 0o600)
			unused, dicts := unusedDictionaryEntries(t, out)
			if len(unused) > 0 || dicts == 0 {
				t.Errorf("unused entries %v in %d dictionaries", unused, dicts)
			}
		})
	}
}
