package parallel

import (
	"sync/atomic"
	"testing"
)

// TestEach: every index runs exactly once, with and without the helper, and
// a panic in either goroutine reaches the caller.
func TestEach(t *testing.T) {
	for _, two := range []bool{false, true} {
		for _, n := range []int{0, 1, 2, 7, 1000} {
			counts := make([]atomic.Int32, n)
			Each(n, two, func(i int) { counts[i].Add(1) })
			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Fatalf("two %v, n %d: index %d ran %d times", two, n, i, c)
				}
			}
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("two %v: a panic was lost", two)
				}
			}()
			Each(100, two, func(i int) {
				if i == 57 {
					panic("boom")
				}
			})
		}()
	}
}
