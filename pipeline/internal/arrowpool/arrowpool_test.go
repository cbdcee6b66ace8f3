package arrowpool

import (
	"math/rand/v2"
	"sync"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestClass(t *testing.T) {
	prev := 0
	for size := minPooled; size <= maxPooled; size += 1 + size/97 {
		c, n, ok := class(size)
		if !ok || n < size || n > size+size/4 || classSize(c) != n {
			t.Fatalf("size %d: class %d of %d bytes (classSize %d), pooled %v", size, c, n, classSize(c), ok)
		}
		if c2, n2, _ := class(n); c2 != c || n2 != n {
			t.Fatalf("size %d: its class size %d is in class %d, not %d", size, n, c2, c)
		}
		if n < prev {
			t.Fatalf("size %d: class size %d below the previous size's %d", size, n, prev)
		}
		prev = n
	}
	for _, size := range []int{0, 1, minPooled - 1, maxPooled + 1} {
		if _, _, ok := class(size); ok {
			t.Errorf("size %d is pooled", size)
		}
	}
}

// TestReuse: a freed buffer comes back for a request of its class, zeroed,
// aligned and with capacity equal to length, as memory.GoAllocator's do;
// buffers it did not hand out, and buffers past the idle limit, are not
// kept.
func TestReuse(t *testing.T) {
	a := New(1 << 20)
	b := a.Allocate(100_000)
	if len(b) != 100_000 || cap(b) != 100_000 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%alignment != 0 {
		t.Fatalf("len %d cap %d at %p", len(b), cap(b), unsafe.SliceData(b))
	}
	for i := range b {
		b[i] = 0xff
	}
	a.Free(b)
	if a.Idle() == 0 {
		t.Fatal("a freed buffer is not kept")
	}
	c := a.Allocate(110_000) // the same class
	if unsafe.SliceData(c) != unsafe.SliceData(b) {
		t.Fatal("the freed buffer was not reused")
	}
	for i, v := range c {
		if v != 0 {
			t.Fatalf("byte %d of a reused buffer is %#x", i, v)
		}
	}
	if len(c) != 110_000 || cap(c) != 110_000 || a.Idle() != 0 {
		t.Fatalf("reused: len %d cap %d, %d bytes idle", len(c), cap(c), a.Idle())
	}
	a.Free(c)
	a.Free(c) // twice: ignored
	a.Free(make([]byte, 100_000))
	if a.Idle() != 112<<10 { // one buffer of the 100,000-byte class
		t.Fatalf("%d bytes idle", a.Idle())
	}
	big := a.Allocate(2 << 20)
	a.Free(big) // over the limit
	if a.Idle() != 112<<10 {
		t.Fatalf("%d bytes idle after freeing past the limit", a.Idle())
	}
	small := a.Allocate(100)
	a.Free(small)
	if a.Idle() != 112<<10 {
		t.Fatalf("%d bytes idle after freeing a small buffer", a.Idle())
	}
}

// TestReallocate: growing copies and zeroes the rest, shrinking keeps the
// buffer.
func TestReallocate(t *testing.T) {
	a := New(8 << 20)
	b := a.Allocate(70_000)
	for i := range b {
		b[i] = byte(i)
	}
	g := a.Reallocate(300_000, b)
	for i := range g {
		want := byte(0)
		if i < 70_000 {
			want = byte(i)
		}
		if g[i] != want {
			t.Fatalf("byte %d: %d, want %d", i, g[i], want)
		}
	}
	s := a.Reallocate(1000, g)
	if unsafe.SliceData(s) != unsafe.SliceData(g) || len(s) != 1000 {
		t.Fatal("shrinking moved the buffer")
	}
	a.Free(s)
	if a.Idle() == 0 {
		t.Fatal("a shrunk buffer is not kept")
	}
}

// TestConcurrentBuilders: Arrow builders on one allocator from several
// goroutines build what they were given, with buffers going back and forth.
func TestConcurrentBuilders(t *testing.T) {
	a := New(16 << 20)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 30 {
				n := 20_000 + r.IntN(100_000)
				b := array.NewInt64Builder(a)
				for i := 0; i < n; i++ {
					if i%7 == 0 {
						b.AppendNull()
					} else {
						b.Append(int64(i))
					}
				}
				arr := b.NewInt64Array()
				b.Release()
				for i := 0; i < n; i++ {
					if arr.IsNull(i) != (i%7 == 0) || !arr.IsNull(i) && arr.Value(i) != int64(i) {
						t.Errorf("row %d of %d: %v %d", i, n, arr.IsNull(i), arr.Value(i))
						break
					}
				}
				arr.Release()
			}
		}()
	}
	wg.Wait()
}

var (
	_ memory.Allocator = (*Allocator)(nil)
	_ arrow.Array      = (*array.Int64)(nil)
)
