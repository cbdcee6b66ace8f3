package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/deidproject/deid/pipeline/internal/testmem"
)

// TestArrowMemoryFlatInDataSize is an untimed guard on memory: the
// high-water mark of Arrow memory depends on the batch size and the number of
// workers, not on how much data a run reads. Twelve copies of the sample's
// 6,000-row partition (four times the data) must peak below twice what three
// peak, and below a fixed bound for 2,048-row batches on 2 workers. Both runs
// have more files than workers, so both keep every worker busy: with one file,
// only one worker would hold buffers and the comparison would measure
// concurrency. How many batches are in flight at the peak still depends on
// scheduling (three files peaked between 950 and 1,250 KiB over 20 runs), so
// the margin is 2x: memory growing with the data would show as about 4x.
func TestArrowMemoryFlatInDataSize(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(sampleDir(t), "browsing", "dt=2026-10-30", "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	peak := func(copies int) int {
		dir := t.TempDir()
		for i := 0; i < copies; i++ {
			p := filepath.Join(dir, "in", fmt.Sprintf("part-%d.parquet", i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, src, 0o644)
		}
		plan := compile(t, dir, samplePolicy(filepath.Join(dir, "in", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"),
			filepath.Join(dir, "out")))
		mem := testmem.New(t)
		rep, err := Run(context.Background(), plan, Options{Workers: 2, BatchSize: 2048, Mem: mem, ScratchDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d files, %d rows: Arrow memory peaked at %d KiB", copies, rep.Datasets[0].RowsIn, mem.Peak()>>10)
		return mem.Peak()
	}
	few, many := peak(3), peak(12)
	if many > few*2 {
		t.Errorf("Arrow memory grows with the data: %d KiB for three files, %d KiB for twelve", few>>10, many>>10)
	}
	const bound = 16 << 20
	if many > bound {
		t.Errorf("Arrow memory peaked at %d KiB, more than %d KiB for 2,048-row batches on 2 workers", many>>10, bound>>10)
	}
}
