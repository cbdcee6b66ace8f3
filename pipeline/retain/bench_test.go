package retain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

// benchKinds is one file of the benchmark: ten row groups, one of them
// mixed (10 %), four expired, five inside retention.
var benchKinds = []string{"old", "old", "old", "old", "mixed", "new", "new", "new", "new", "new"}

// BenchmarkRetain runs retain on a lake of DEID_RETAIN_BENCH_ROWS rows
// (default 1M; the figure is 10M) in files of ten row groups, 10 %
// of them mixed. It reports the row groups decoded per run: only the mixed
// ones; the expired and the kept cost no decoding (they are dropped or
// copied byte for byte).
//
//	DEID_RETAIN_BENCH_ROWS=10000000 go test ./pipeline/retain -run XXX -bench Retain -benchtime 3x
func BenchmarkRetain(b *testing.B) {
	rows := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("DEID_RETAIN_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	const rgRows = 20_000
	perFile := rgRows * len(benchKinds)
	files := max(rows/perFile, 1)
	src := b.TempDir()
	for i := range files {
		writeOrders(b, filepath.Join(src, "orders", fmt.Sprintf("part-%04d.parquet", i)), genOrders(i, benchKinds, rgRows), rgRows, nil)
	}
	work := b.TempDir()
	plan := writePolicy(b, work, policyOpts{})
	b.ResetTimer()
	var decoded, copied, dropped int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.RemoveAll(filepath.Join(work, "orders"))
		copyDir(b, filepath.Join(src, "orders"), filepath.Join(work, "orders"))
		b.StartTimer()
		rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}})
		if err != nil {
			b.Fatal(err)
		}
		rg := rep.Datasets[0].RowGroups
		decoded, copied, dropped = rg.Rewritten+rg.RuleColumnsOnly, rg.Copied, rg.Dropped
		if decoded != files || copied != 5*files || dropped != 4*files {
			b.Fatalf("row groups %+v: want %d decoded (the mixed), %d copied, %d dropped", rg, files, 5*files, 4*files)
		}
	}
	b.ReportMetric(float64(files*perFile), "rows/op")
	b.ReportMetric(float64(decoded), "decoded-rowgroups/op")
	b.ReportMetric(float64(copied+dropped), "undecoded-rowgroups/op")
}

func copyDir(b *testing.B, from, to string) {
	if err := os.MkdirAll(to, 0o755); err != nil {
		b.Fatal(err)
	}
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
