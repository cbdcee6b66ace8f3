package transforms

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
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
			got, want := cacheAndDirect(t, mem, &cache, tr, batch, c.name)
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

// TestDictionaryCacheLazy: past LazyAbove, batches (slices of one
// dictionary array) get values equal to the transform's own, and each
// dictionary entry they use is transformed once across batches. Each
// batch's dictionary begins with the previous batch's entries in the same
// memory (what a writer relies on to keep its lookups), and a new
// dictionary starts over in new memory: earlier outputs keep their values.
func TestDictionaryCacheLazy(t *testing.T) {
	mem := checkedMem(t)
	r := rand.New(rand.NewPCG(9, 9))
	var vals []*string
	for i := 0; i < 3000; i++ {
		switch k := r.IntN(20); {
		case k == 0:
			vals = append(vals, nil)
		case k == 1:
			vals = append(vals, sp("unknown"))
		case k == 2:
			vals = append(vals, sp(fmt.Sprintf("2408:8207:%x::%x", r.IntN(50), r.IntN(9))))
		default:
			vals = append(vals, sp(fmt.Sprintf("10.%d.%d.%d", r.IntN(4), r.IntN(30), r.IntN(9))))
		}
	}
	for _, c := range []struct {
		name   string
		params map[string]any
	}{
		{"generalize_ip", map[string]any{"variant": "bench"}},
		{"pseudonymize", nil},
		{"url_strip", nil},
	} {
		tr := bind(t, c.name, c.params)
		whole := dictStringArray(t, mem, vals)
		entries := whole.(*array.Dictionary).Dictionary().Len()
		cache := DictionaryCache{LazyAbove: 100}
		used := map[int]bool{}
		var outs []arrow.Array
		var wants [][]*string
		for _, cut := range [][2]int64{{0, 700}, {700, 1400}, {100, 2900}, {2900, 3000}} {
			batch := array.NewSlice(whole, cut[0], cut[1]).(*array.Dictionary)
			for i := 0; i < batch.Len(); i++ {
				if !batch.IsNull(i) {
					used[batch.GetValueIndex(i)] = true
				}
			}
			got, want := cacheAndDirect(t, mem, &cache, tr, batch, c.name)
			wants = append(wants, readStrings(t, want))
			want.Release()
			batch.Release()
			outs = append(outs, got)
			d, ok := got.(*array.Dictionary)
			if !ok {
				t.Errorf("%s: lazy output is %s", c.name, got.DataType())
				continue
			}
			if len(outs) > 1 {
				prev := outs[len(outs)-2].(*array.Dictionary).Dictionary().(*array.String)
				cur := d.Dictionary().(*array.String)
				if cur.Len() < prev.Len() || &cur.ValueOffsets()[0] != &prev.ValueOffsets()[0] {
					t.Errorf("%s: batch %d's dictionary (%d entries) does not extend the previous one's (%d) in place", c.name, len(outs), cur.Len(), prev.Len())
				}
			}
		}
		if cache.lazy.Transformed != len(used) || entries <= 100 {
			t.Errorf("%s: %d entries transformed, %d used (of %d)", c.name, cache.lazy.Transformed, len(used), entries)
		}
		other := dictStringArray(t, mem, vals[:500])
		out, err := cache.Apply(mem, tr, other.(*array.Dictionary))
		if err != nil {
			t.Fatal(err)
		}
		out.Release()
		other.Release()
		for i, o := range outs {
			if got := readStrings(t, o); fmt.Sprint(derefAll(got)) != fmt.Sprint(derefAll(wants[i])) {
				t.Errorf("%s: batch %d's output changed after a new dictionary", c.name, i)
			}
			o.Release()
		}
		cache.Release()
		whole.Release()
	}
}

func derefAll(v []*string) []string {
	s := make([]string, len(v))
	for i, p := range v {
		s[i] = "<nil>"
		if p != nil {
			s[i] = *p
		}
	}
	return s
}

// cacheAndDirect applies tr to batch through the cache and directly, checks
// that both give the same values, and returns both for the caller to
// release.
func cacheAndDirect(t *testing.T, mem memory.Allocator, cache *DictionaryCache, tr Transform, batch *array.Dictionary, name string) (arrow.Array, arrow.Array) {
	t.Helper()
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
			t.Errorf("%s value %d: cache %q, direct %q", name, i, deref(g[i]), deref(w[i]))
		}
	}
	return got, want
}
