package classes

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// strs builds a string array; nil entries are NULL.
func strs(mem memory.Allocator, vals ...any) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.Append(v.(string))
		}
	}
	return b.NewArray()
}

// TestClassKeys: rows fall in one class exactly when every quasi-identifier
// value is equal, whatever the encoding; NULL is its own value and the
// boundaries between values count.
func TestClassKeys(t *testing.T) {
	mem := memory.NewGoAllocator()
	dictOf := func(vals ...string) arrow.Array {
		b := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String})
		defer b.Release()
		for _, v := range vals {
			b.(*array.BinaryDictionaryBuilder).AppendString(v)
		}
		return b.NewArray()
	}
	ints := func(vals ...int64) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.AppendValues(vals, nil)
		return b.NewArray()
	}
	cases := []struct {
		name string
		// two rows each: one set of columns for row a, one for row b
		a, b []arrow.Array
		same bool
	}{
		{"equal strings", []arrow.Array{strs(mem, "杭州"), strs(mem, "30-45")}, []arrow.Array{strs(mem, "杭州"), strs(mem, "30-45")}, true},
		{"one value differs", []arrow.Array{strs(mem, "杭州"), strs(mem, "30-45")}, []arrow.Array{strs(mem, "杭州"), strs(mem, "45-60")}, false},
		{"value boundaries", []arrow.Array{strs(mem, "ab"), strs(mem, "c")}, []arrow.Array{strs(mem, "a"), strs(mem, "bc")}, false},
		{"NULL is not empty", []arrow.Array{strs(mem, nil)}, []arrow.Array{strs(mem, "")}, false},
		{"NULL equals NULL", []arrow.Array{strs(mem, nil), strs(mem, "x")}, []arrow.Array{strs(mem, nil), strs(mem, "x")}, true},
		{"dictionary as dense", []arrow.Array{dictOf("北京")}, []arrow.Array{strs(mem, "北京")}, true},
		{"integers", []arrow.Array{ints(1990)}, []arrow.Array{ints(1990)}, true},
		{"integers differ", []arrow.Array{ints(1990)}, []arrow.Array{ints(1991)}, false},
		{"integer and its text", []arrow.Array{ints(1990)}, []arrow.Array{strs(mem, "1990")}, false},
		{"order of columns", []arrow.Array{strs(mem, "a"), strs(mem, "b")}, []arrow.Array{strs(mem, "b"), strs(mem, "a")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Hasher
			ka := h.Keys(nil, c.a)
			kb := h.Keys(nil, c.b)
			if len(ka) != 1 || len(kb) != 1 {
				t.Fatalf("keys: %d and %d, want one row each", len(ka), len(kb))
			}
			if (ka[0] == kb[0]) != c.same {
				t.Errorf("same class %v, want %v", ka[0] == kb[0], c.same)
			}
			// a fresh hasher gives the same key: no seed
			var h2 Hasher
			if h2.Keys(nil, c.a)[0] != ka[0] {
				t.Error("the key depends on the hasher")
			}
		})
	}
}

// TestClassCounts: counts merged from row groups in any order give the
// classes' sizes; Small and SmallRows agree with them.
func TestClassCounts(t *testing.T) {
	mem := memory.NewGoAllocator()
	cases := []struct {
		name   string
		groups [][]any // per row group: the city of each row
		minK   int
		rows   int64 // rows in classes below minK
		small  int64 // classes below minK
	}{
		{"empty", nil, 2, 0, 0},
		{"all large", [][]any{{"a", "a"}, {"a", "b", "b"}}, 2, 0, 0},
		{"one small", [][]any{{"a", "a", "c"}, {"b", "b"}}, 2, 1, 1},
		{"split across groups", [][]any{{"a"}, {"a"}, {"a"}, {"b", "b"}}, 3, 2, 1},
		{"NULL is a class", [][]any{{nil, nil, "a"}, {"a", nil}}, 3, 2, 1},
		{"all small", [][]any{{"a", "b", "c"}}, 1000, 3, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, reverse := range []bool{false, true} {
				// a limit of one class: every merge spills a run
				cc := &Counts{MinK: c.minK, Tally: NewTally(t.TempDir(), 1)}
				want := map[any]int{}
				for i := range c.groups {
					g := c.groups[i]
					if reverse {
						g = c.groups[len(c.groups)-1-i]
					}
					a := strs(mem, g...)
					var h Hasher
					local := map[Key]uint32{}
					for _, k := range h.Keys(nil, []arrow.Array{a}) {
						local[k]++
					}
					a.Release()
					if err := cc.Merge(local); err != nil {
						t.Fatal(err)
					}
					for _, v := range g {
						want[v]++
					}
				}
				counts := map[Key]uint32{}
				if err := cc.Tally.Each(func(k Key, n uint32) error { counts[k] = n; return nil }); err != nil {
					t.Fatal(err)
				}
				if err := cc.Finish(nil); err != nil {
					t.Fatal(err)
				}
				rows, classes := cc.SmallRows()
				if rows != c.rows || classes != c.small {
					t.Errorf("reverse %v: %d rows in %d small classes, want %d in %d", reverse, rows, classes, c.rows, c.small)
				}
				for v, n := range want {
					a := strs(mem, v)
					var h Hasher
					k := h.Keys(nil, []arrow.Array{a})[0]
					a.Release()
					if got := counts[k]; got != uint32(n) || cc.Small(k) != (n < c.minK) {
						t.Errorf("class %v: %d rows (small %v), want %d", v, got, cc.Small(k), n)
					}
				}
			}
		})
	}
}
