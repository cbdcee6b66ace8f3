// Package testmem is an Arrow allocator for tests that fails a test when
// memory is still allocated at its end, like memory.CheckedAllocator, but
// tolerates one known upstream leak: arrow-go v18's DELTA_BINARY_PACKED
// decoder allocates its miniblock bit widths from the caller's allocator and
// never frees them (the garbage collector reclaims them; only the accounting
// is off). Every other leak fails the test, with the allocating stack.
package testmem

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// knownLeaks are functions whose allocations are never freed upstream.
var knownLeaks = []string{
	"parquet/internal/encoding.(*deltaBitPackDecoder[...]).initBlock",
}

// Allocator tracks live allocations with their stacks.
type Allocator struct {
	base memory.GoAllocator
	mu   sync.Mutex
	live map[uintptr]allocation
	cur  int // bytes allocated now
	peak int // the most bytes allocated at once
}

type allocation struct {
	size  int
	stack string
	known bool
}

// New returns an allocator that checks for leaks when t ends.
func New(t testing.TB) *Allocator {
	a := &Allocator{live: map[uintptr]allocation{}}
	t.Cleanup(func() { a.check(t) })
	return a
}

func key(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b[:1]))) }

func (a *Allocator) record(b []byte, size int) {
	if size == 0 {
		return
	}
	pcs := make([]uintptr, 24)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var sb strings.Builder
	known := false
	for {
		f, more := frames.Next()
		for _, k := range knownLeaks {
			if strings.Contains(f.Function, k) {
				known = true
			}
		}
		fmt.Fprintf(&sb, "\t%s\n\t\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	a.mu.Lock()
	a.live[key(b)] = allocation{size: size, stack: sb.String(), known: known}
	if !known { // known leaks are never freed; counting them would make the peak grow with the data
		a.cur += size
		a.peak = max(a.peak, a.cur)
	}
	a.mu.Unlock()
}

func (a *Allocator) forget(b []byte) {
	if len(b) == 0 {
		return
	}
	a.mu.Lock()
	if al, ok := a.live[key(b)]; ok {
		if !al.known {
			a.cur -= al.size
		}
		delete(a.live, key(b))
	}
	a.mu.Unlock()
}

// Peak returns the most bytes that were allocated at one time, known leaks
// excluded: the high-water mark of Arrow memory.
func (a *Allocator) Peak() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.peak
}

// Allocate implements memory.Allocator.
func (a *Allocator) Allocate(size int) []byte {
	b := a.base.Allocate(size)
	a.record(b, size)
	return b
}

// Reallocate implements memory.Allocator.
func (a *Allocator) Reallocate(size int, b []byte) []byte {
	a.forget(b)
	nb := a.base.Reallocate(size, b)
	if len(b) > 0 && len(nb) > 0 && unsafe.SliceData(nb) != unsafe.SliceData(b) {
		poison(b)
	}
	a.record(nb, size)
	return nb
}

// Free implements memory.Allocator. The freed bytes are overwritten, so
// that a test reading a buffer after its last Release sees garbage, as it
// would with an allocator that reuses memory.
func (a *Allocator) Free(b []byte) {
	a.forget(b)
	poison(b)
	a.base.Free(b)
}

// poison overwrites freed memory.
func poison(b []byte) {
	b = b[:cap(b)]
	for i := range b {
		b[i] = 0xdb
	}
}

// Live returns the bytes currently allocated, known leaks excluded.
func (a *Allocator) Live() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, al := range a.live {
		if !al.known {
			n += al.size
		}
	}
	return n
}

func (a *Allocator) check(t testing.TB) {
	a.mu.Lock()
	defer a.mu.Unlock()
	leaked, shown := 0, 0
	for _, al := range a.live {
		if al.known {
			continue
		}
		leaked += al.size
		if shown < 5 {
			t.Errorf("leak of %d bytes allocated at\n%s", al.size, al.stack)
			shown++
		}
	}
	if leaked > 0 {
		t.Errorf("%d bytes of Arrow memory still allocated at the end of the test", leaked)
	}
}

var _ memory.Allocator = (*Allocator)(nil)
