package transforms

import "testing"

// TestBatchDedup: find returns the first row with the same value, also when
// every hash collides (all probes walk the same run) and across resets to
// smaller and larger batches.
func TestBatchDedup(t *testing.T) {
	var d batchDedup
	for _, tc := range []struct {
		name string
		vals []int
		hash func(v int) uint64
	}{
		{"distinct", []int{1, 2, 3, 4, 5}, func(v int) uint64 { return hashInt(uint64(v)) }},
		{"repeats", []int{7, 7, 8, 7, 8, 9, 9}, func(v int) uint64 { return hashInt(uint64(v)) }},
		{"all hashes collide", []int{1, 2, 1, 3, 2, 3, 4, 1}, func(int) uint64 { return 42 }},
		{"empty", nil, func(int) uint64 { return 0 }},
		{"large", func() []int {
			v := make([]int, 100000)
			for i := range v {
				v[i] = i % 33333
			}
			return v
		}(), func(v int) uint64 { return hashInt(uint64(v)) }},
	} {
		d.reset(len(tc.vals))
		first := map[int]int{}
		for i, v := range tc.vals {
			want := -1
			if j, ok := first[v]; ok {
				want = j
			} else {
				first[v] = i
			}
			if got := d.find(i, tc.hash(v), func(j int) bool { return tc.vals[j] == v }); got != want {
				t.Fatalf("%s: row %d (value %d): found %d, want %d", tc.name, i, v, got, want)
			}
		}
	}
}
