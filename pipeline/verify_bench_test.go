package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/verify"
)

// BenchmarkVerify1M is deid verify's reference path: the checks of the
// reference policy's output of the bench's 1M-row browsing table (1461 days:
// nearly every row is written), with the sources read twice for the
// identifier check. Reports rows per second and the process's CPU time per
// verification.
//
//	go test ./pipeline -run XXX -bench Verify1M -benchtime 3x
func BenchmarkVerify1M(b *testing.B) {
	const rows = 1_000_000
	input, erasure := benchData(b, rows)
	dir := b.TempDir()
	text := strings.Replace(samplePolicy(input, erasure, filepath.Join(dir, "out")), "keep: 365d", "keep: 1461d", 1)
	plan := compile(b, dir, text)
	if _, err := Run(context.Background(), plan, Options{ScratchDir: dir}); err != nil {
		b.Fatal(err)
	}
	var checked int64
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := verify.Outputs(context.Background(), plan, verify.Options{ScratchDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if !res.OK() {
			b.Fatalf("findings on the run's own output: %v", res.Destinations[0].Findings)
		}
		checked = res.Destinations[0].Rows
	}
	b.StopTimer()
	// CPU time is steadier than the wall clock on a shared machine
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(checked), "rows_checked")
	b.ReportMetric(float64(checked)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
