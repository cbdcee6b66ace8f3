package transforms

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TestDictionaryCache: batches sharing a dictionary transform it once, the
// result equals the transform's own output value by value, its dictionary
// holds distinct values only, and NULLs (in indices, in the dictionary, or
// produced by the transform) stay NULL.
func TestDictionaryCache(t *testing.T) {
	mem := checkedMem(t)
	vals := []*string{sp("1.2.3.4"), sp("1.2.3.9"), nil, sp("unknown"), sp("2408:8207:1851:a::1"), sp("1.2.3.4"), sp("10.0.0.1")}
	cases := []struct {
		name   string
		params map[string]any
	}{
		{"generalize_ip", map[string]any{"variant": "bench"}},
		{"pseudonymize", nil},
		{"url_strip", nil},
	}
	for _, c := range cases {
		tr := bind(t, c.name, c.params)
		whole := dictStringArray(t, mem, vals)
		var cache DictionaryCache
		for _, cut := range [][2]int64{{0, 3}, {3, 7}, {1, 6}} {
			batch := array.NewSlice(whole, cut[0], cut[1]).(*array.Dictionary)
			got, err := cache.Apply(mem, tr, batch)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tr.Apply(mem, batch)
			if err != nil {
				t.Fatal(err)
			}
			g, w := readStrings(t, got), readStrings(t, want)
			for i := range w {
				if deref(g[i]) != deref(w[i]) || (g[i] == nil) != (w[i] == nil) {
					t.Errorf("%s value %d: cache %q, direct %q", c.name, i, deref(g[i]), deref(w[i]))
				}
			}
			d := got.(*array.Dictionary).Dictionary().(*array.String)
			seen := map[string]bool{}
			for i := 0; i < d.Len(); i++ {
				if d.IsNull(i) || seen[d.Value(i)] {
					t.Errorf("%s: dictionary entry %d is NULL or repeated", c.name, i)
				}
				seen[d.Value(i)] = true
			}
			if !arrow.TypeEqual(got.DataType(), &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}) {
				t.Errorf("%s: type %s", c.name, got.DataType())
			}
			got.Release()
			want.Release()
			batch.Release()
		}
		if cache.Transformed != 1 {
			t.Errorf("%s: dictionary transformed %d times for one dictionary", c.name, cache.Transformed)
		}
		// a new dictionary is transformed anew
		other := dictStringArray(t, mem, []*string{sp("9.9.9.9")})
		out, err := cache.Apply(mem, tr, other.(*array.Dictionary))
		if err != nil || cache.Transformed != 2 {
			t.Errorf("%s: new dictionary: %v, transformed %d", c.name, err, cache.Transformed)
		}
		out.Release()
		other.Release()
		cache.Release()
		whole.Release()
	}
}
