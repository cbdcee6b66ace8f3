// Package parallel runs the independent parts of one task on a second
// goroutine when a CPU would otherwise stay idle.
package parallel

import (
	"sync"
	"sync/atomic"
)

// Each calls fn(0) to fn(n-1). With two set, this goroutine and a helper
// take the indices in turn, each index once; otherwise they run one after
// the other here. fn must be safe to run for different indices at once. A
// panic in the helper is raised again on this goroutine.
func Each(n int, two bool, fn func(int)) {
	if n < 2 || !two {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int32
	work := func() {
		for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
			fn(i)
		}
	}
	var wg sync.WaitGroup
	var crash any
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { crash = recover() }()
		work()
	}()
	work()
	wg.Wait()
	if crash != nil {
		panic(crash)
	}
}
