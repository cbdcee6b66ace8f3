package pipeline

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

// benchData returns the bench generator's browsing table of rows rows and its
// erasure list, generating them once into $TMPDIR/deid-bench-data with the
// shared generator (../shared/bench/gen). DEID_BENCH_INPUT and
// DEID_BENCH_ERASURE, when set, name existing files instead.
func benchData(b *testing.B, rows int) (input, erasure string) {
	if in, er := os.Getenv("DEID_BENCH_INPUT"), os.Getenv("DEID_BENCH_ERASURE"); in != "" && er != "" {
		return in, er
	}
	benchDataOnce.Do(func() { benchDataDir, benchDataErr = generate(rows) })
	if benchDataErr != nil {
		b.Skipf("no benchmark data: %v", benchDataErr)
	}
	n := strconv.Itoa(rows)
	return filepath.Join(benchDataDir, "browsing_"+n+".parquet"), filepath.Join(benchDataDir, "erasure_"+n+".parquet")
}

var (
	benchDataOnce sync.Once
	benchDataDir  string
	benchDataErr  error
)

func generate(rows int) (string, error) {
	gen, err := filepath.Abs("../../shared/bench/gen")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(gen); err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "deid-bench-data")
	n := strconv.Itoa(rows)
	in, er := filepath.Join(dir, "browsing_"+n+".parquet"), filepath.Join(dir, "erasure_"+n+".parquet")
	if _, err := os.Stat(er); err == nil {
		return dir, nil
	}
	bin := filepath.Join(dir, "gen")
	for _, args := range [][]string{
		{"go", "build", "-o", bin, "."},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = gen
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", &exec.Error{Name: string(out), Err: err}
		}
	}
	for _, args := range [][]string{
		{"-q", "-table", "browsing", "-rows", n, "-seed", "42", "-out", in},
		{"-q", "-erasure", er, "-fraction", "0.01", "-rows", n, "-seed", "42"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			return "", &exec.Error{Name: string(out), Err: err}
		}
	}
	return dir, nil
}

// BenchmarkRun1M runs the reference policy on the bench's 1M-row browsing
// table (1461 days: nearly every row is transformed and written; with
// -min_k, also enforcing min_k 3 over city and hour, which needs a counting
// pass first) and reports rows per second, heap allocations per input row,
// and the rows written and suppressed.
//
//	go test ./pipeline -run XXX -bench Run1M -benchtime 3x
func BenchmarkRun1M(b *testing.B) {
	const rows = 1_000_000
	input, erasure := benchData(b, rows)
	for _, days := range []string{"365", "1461", "1461-min_k"} {
		b.Run("days="+days, func(b *testing.B) {
			dir := b.TempDir()
			text := samplePolicy(input, erasure, filepath.Join(dir, "out"))
			keep, minK := strings.CutSuffix(days, "-min_k")
			if minK {
				text += "        quasi_identifiers: [city, event_time]\n        min_k: 3\n"
			}
			text = strings.Replace(text, "keep: 365d", "keep: "+keep+"d", 1)
			plan := compile(b, dir, text)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			var rowsOut, small int64
			for i := 0; i < b.N; i++ {
				os.RemoveAll(filepath.Join(dir, "out"))
				rep, err := Run(context.Background(), plan, Options{ScratchDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				rowsOut, small = rep.Destinations[0].RowsOut, rep.Destinations[0].Removed["small_class"]
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(rowsOut), "rows_out")
			b.ReportMetric(float64(small), "small_class")
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(rows)/float64(b.N), "allocs/row")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(rows)/float64(b.N), "B/row")
		})
	}
}

// BenchmarkInputSHA256 measures what recording a local input's SHA-256 in
// the report costs a run: one more sequential read and hash of the 1M-row
// bench file (compare BenchmarkRun1M's time per run).
//
//	go test ./pipeline -run XXX -bench InputSHA256
func BenchmarkInputSHA256(b *testing.B) {
	input, _ := benchData(b, 1_000_000)
	fi, err := os.Stat(input)
	if err != nil {
		b.Fatal(err)
	}
	r := &runner{}
	r.opt.defaults()
	in := &inputFile{match: storage.Match{Attrs: storage.Attrs{Location: input, Size: fi.Size()}}}
	b.SetBytes(fi.Size())
	for b.Loop() {
		if res := <-r.hash(context.Background(), in); res.err != nil || len(res.sum) != 64 {
			b.Fatalf("hash: %+v", res)
		}
	}
}
