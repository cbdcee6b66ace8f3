package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
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
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), out))
		scratch := t.TempDir()
		if _, err := Run(context.Background(), plan, Options{Workers: 2, BatchSize: 700, ScratchDir: scratch, RunID: "r", partMemory: limit}); err != nil {
			t.Fatal(err)
		}
		got := tree(t, filepath.Join(out, "browsing"))
		if len(got) == 0 {
			t.Fatal("no outputs")
		}
		if files := tree(t, scratch); len(files) != 0 {
			t.Errorf("limit %d: the scratch folder holds %v", limit, keys(files))
		}
		if first == nil {
			first = got
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Errorf("part memory limit %d: outputs differ from every part on disk", limit)
		}
	}
}
