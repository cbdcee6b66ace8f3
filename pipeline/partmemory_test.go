package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/deidproject/deid/pipeline/internal/testmem"
)

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
