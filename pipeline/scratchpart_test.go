package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/internal/pqtest"
	"github.com/deidproject/deid/pipeline/internal/testmem"
	"github.com/deidproject/deid/pipeline/parquetio"
)

// TestScratchPart: a part reads back what was written, byte for byte and at
// any offset, whether it stayed in memory, moved to disk before its first
// byte or midway; the budget is never passed and is given back, and a
// discarded part leaves no file.
func TestScratchPart(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		limit  int64
		size   int
		onDisk bool
	}{
		{"empty, in memory", 1 << 30, 0, false},
		{"in memory, one chunk", 1 << 30, 1000, false},
		{"in memory, chunks", 1 << 30, 3*partChunk + 17, false},
		{"no budget: on disk", -1, 5000, true},
		{"moved to disk midway", 2 * partChunk, 5*partChunk + 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			budget := &partBudget{limit: tc.limit}
			p := newScratchPart(dir, budget)
			want := make([]byte, tc.size)
			for i := range want {
				want[i] = byte(r.IntN(256))
			}
			for rest := want; len(rest) > 0; {
				k := min(len(rest), 1+r.IntN(300_000))
				if n, err := p.Write(rest[:k]); err != nil || n != k {
					t.Fatalf("write: %d, %v", n, err)
				}
				rest = rest[k:]
				if budget.used.Load() > max(tc.limit, 0) {
					t.Fatalf("%d bytes held, over the budget of %d", budget.used.Load(), tc.limit)
				}
			}
			if err := p.finish(); err != nil {
				t.Fatal(err)
			}
			if p.Size() != int64(tc.size) || (p.f != nil) != tc.onDisk {
				t.Fatalf("size %d, on disk %v", p.Size(), p.f != nil)
			}
			got, err := io.ReadAll(io.NewSectionReader(p, 0, p.Size()))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes (%v), wrote %d", len(got), err, len(want))
			}
			for range 20 {
				if tc.size == 0 {
					break
				}
				off := r.IntN(tc.size)
				buf := make([]byte, r.IntN(tc.size-off)+1)
				if n, err := p.ReadAt(buf, int64(off)); err != nil || !bytes.Equal(buf[:n], want[off:off+n]) || n != len(buf) {
					t.Fatalf("ReadAt(%d, %d): %d, %v", len(buf), off, n, err)
				}
			}
			if n, err := p.ReadAt(make([]byte, 10), int64(tc.size)); n != 0 || err != io.EOF {
				t.Errorf("read past the end: %d, %v", n, err)
			}
			p.discard()
			if budget.used.Load() != 0 {
				t.Errorf("%d bytes still held after discard", budget.used.Load())
			}
			if files, _ := os.ReadDir(dir); len(files) != 0 {
				t.Errorf("discard left %v", files)
			}
		})
	}
}

// TestPartMemoryChangesNothing: outputs are the same bytes whether every
// part waits on disk, some move there midway, or all stay in memory.
func TestPartMemoryChangesNothing(t *testing.T) {
	var first map[string]string
	for _, limit := range []int64{-1, 100 << 10, 0} {
		for _, noStream := range []bool{true, false} {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), out))
			scratch := t.TempDir()
			var streamed atomic.Int64
			if _, err := Run(context.Background(), plan, Options{Workers: 2, BatchSize: 700, ScratchDir: scratch, RunID: "r",
				partMemory: limit, noStream: noStream, streamed: &streamed}); err != nil {
				t.Fatal(err)
			}
			got := tree(t, filepath.Join(out, "browsing"))
			if len(got) == 0 {
				t.Fatal("no outputs")
			}
			if files := tree(t, scratch); len(files) != 0 {
				t.Errorf("limit %d: the scratch folder holds %v", limit, keys(files))
			}
			// the first row group's part of each of the two files is the
			// next to splice from its start
			if n := streamed.Load(); noStream && n != 0 || !noStream && n < 2 {
				t.Errorf("limit %d, no streaming %v: %d parts streamed", limit, noStream, n)
			}
			if first == nil {
				first = got
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(first) {
				t.Errorf("part memory limit %d, no streaming %v: outputs differ from every part on disk, none streamed", limit, noStream)
			}
		}
	}
}

// TestScratchPartStreams: a part that becomes the next to splice while it
// is written (from its first byte, midway while in memory, midway after it
// moved to disk, or never) gives the same file as the same parts spliced
// whole, and holds no memory, budget or file once it streams.
func TestScratchPartStreams(t *testing.T) {
	mem := memory.NewGoAllocator()
	sch := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	r := rand.New(rand.NewPCG(5, 6))
	var recs []arrow.RecordBatch
	for range 9 {
		nb := array.NewInt64Builder(mem)
		sb := array.NewStringBuilder(mem)
		for range 20_000 {
			nb.Append(r.Int64())
			sb.Append(fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()))
		}
		recs = append(recs, array.NewRecordBatch(sch, []arrow.Array{nb.NewArray(), sb.NewArray()}, 20_000))
		nb.Release()
		sb.Release()
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	opt := parquetio.WriterOptions{MaxRowGroupRows: 16_384}
	// encode writes three parts (three batches each) through scratch parts;
	// part 1 streams from its streamAt-th write on (-1: never)
	encode := func(t *testing.T, limit int64, streamAt int, onDisk bool) []byte {
		var out bytes.Buffer
		sp := parquetio.NewSplicer(&out)
		budget := &partBudget{limit: limit}
		for part := 0; part < 3; part++ {
			p := newScratchPart(t.TempDir(), budget)
			writes := 0
			if part == 1 && streamAt >= 0 {
				p.head = func() *parquetio.Splicer {
					if writes++; writes > streamAt {
						if (p.f != nil) != onDisk {
							t.Errorf("on disk when it began to stream: %v", p.f != nil)
						}
						return sp
					}
					return nil
				}
			}
			w, err := parquetio.NewFastPartWriter(p, sch, map[string]bool{"s": true}, opt, mem)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs[3*part : 3*part+3] {
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.finish(); err != nil {
				t.Fatal(err)
			}
			if streamed := p.out != nil; streamed != (part == 1 && streamAt >= 0) {
				t.Fatalf("part %d streamed: %v", part, streamed)
			}
			if p.out != nil && (p.f != nil || p.chunks != nil || p.held != 0) {
				t.Fatalf("a streamed part holds a file (%v), %d chunks, %d bytes of budget", p.f != nil, len(p.chunks), p.held)
			}
			a := &assembly{sp: sp}
			if err := a.add(p); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		if budget.used.Load() != 0 {
			t.Errorf("%d bytes of budget still held", budget.used.Load())
		}
		return out.Bytes()
	}
	want := encode(t, 1<<30, -1, false)
	for _, tc := range []struct {
		name     string
		limit    int64
		streamAt int
		onDisk   bool
	}{
		{"from the first write", 1 << 30, 0, false},
		{"midway, in memory", 1 << 30, 5, false},
		{"midway, on disk", -1, 5, true},
		{"midway, moved to disk before", partChunk, 10, true},
		{"never, on disk", -1, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := encode(t, tc.limit, tc.streamAt, tc.onDisk); !bytes.Equal(got, want) {
				t.Errorf("%d bytes, want the %d of the parts spliced whole", len(got), len(want))
			}
		})
	}
	if n, err := pqtest.Rows(want); err != nil || n != 180_000 {
		t.Fatalf("parquet-go read %d rows of 180,000: %v", n, err)
	}
}

// TestLazyDictionariesChangeNothing: reading dictionaries larger than a
// batch as Arrow dictionaries and transforming their entries lazily writes
// the same bytes as reading those columns densely.
func TestLazyDictionariesChangeNothing(t *testing.T) {
	var first map[string]string
	for _, noLazy := range []bool{true, false} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), out))
		var lazy atomic.Int64
		if _, err := Run(context.Background(), plan, Options{Workers: 2, BatchSize: 100, ScratchDir: t.TempDir(), RunID: "r", noLazy: noLazy, lazyRead: &lazy, Mem: testmem.New(t)}); err != nil {
			t.Fatal(err)
		}
		if n := lazy.Load(); noLazy && n != 0 || !noLazy && n == 0 {
			t.Errorf("no lazy %v: %d chunks read as large dictionaries", noLazy, n)
		}
		got := tree(t, filepath.Join(out, "browsing"))
		if first == nil {
			first = got
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Errorf("outputs differ with lazily transformed dictionaries")
		}
	}
}
