package transforms

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSubjectSetContainsInt: membership of integer ids, behind the set's
// bit filter, is exact: every id on the list is found (extremes, negatives,
// repeats), and no other, for sets from empty to 200,000 ids.
func TestSubjectSetContainsInt(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	edges := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 32, -(1 << 32)}
	for _, n := range []int{0, 1, 7, 1000, 200_000} {
		var ids []int64
		want := map[int64]bool{}
		for i := 0; i < n; i++ {
			v := r.Int64N(3_000_000) - 1_000_000
			if i < len(edges) {
				v = edges[i]
			}
			ids = append(ids, v, v) // repeats
			want[v] = true
		}
		s := NewIntSubjectSet(ids)
		if s.Len() != len(want) {
			t.Errorf("n=%d: Len %d, want %d", n, s.Len(), len(want))
		}
		for v := range want {
			if !s.ContainsInt(v) {
				t.Fatalf("n=%d: %d is on the list but not found", n, v)
			}
		}
		probes := append([]int64(nil), edges...)
		for range 100_000 {
			probes = append(probes, r.Int64N(3_000_000)-1_000_000, int64(r.Uint64()))
		}
		for _, v := range probes {
			if s.ContainsInt(v) != want[v] {
				t.Fatalf("n=%d: ContainsInt(%d) = %v", n, v, !want[v])
			}
		}
	}
	if NewStringSubjectSet([]string{"a"}).ContainsInt(0) {
		t.Error("a string set contains an integer")
	}
}

func BenchmarkSubjectSetContainsInt(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	ids := make([]int64, 100_000)
	for i := range ids {
		ids[i] = r.Int64N(1 << 40)
	}
	s := NewIntSubjectSet(ids)
	probes := make([]int64, 1<<16)
	for i := range probes {
		probes[i] = r.Int64N(1 << 40)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.ContainsInt(probes[i&(len(probes)-1)])
	}
}
