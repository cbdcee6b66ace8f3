package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/verify"
)

// minKPolicy is verifyPolicy with days and an age-free class: city and the
// event's day are the quasi-identifiers.
const minKPolicy = verifyPolicy + `          at: {transform: truncate_time, unit: day}
        quasi_identifiers: [city, at]
`

// outputClasses reads the quasi-identifier columns of an output file with
// parquet-go and returns the size of each class.
func outputClasses(t *testing.T, path string, qis []string) map[string]int64 {
	t.Helper()
	pf := openParquetGo(t, path)
	idx := make([]int, len(qis))
	for i, q := range qis {
		col, ok := pf.Schema().Lookup(q)
		if !ok {
			t.Fatalf("%s has no column %s", path, q)
		}
		idx[i] = col.ColumnIndex
	}
	sizes := map[string]int64{}
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 64)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				vals := make([]string, len(idx))
				for _, v := range row {
					for i, ci := range idx {
						if v.Column() == ci {
							if v.IsNull() {
								vals[i] = "\x00NULL"
							} else {
								vals[i] = v.String()
							}
						}
					}
				}
				sizes[strings.Join(vals, "|")]++
			}
			if err != nil {
				break
			}
		}
		rows.Close()
	}
	return sizes
}

// TestMinK: a run enforcing min_k drops the rows of the classes smaller than
// min_k, counted as small_class; every class left has at least min_k rows
// (read back with parquet-go), the count removed equals the rows of small
// classes in the output of the same run without min_k, the bytes do not
// depend on the number of workers, a dry run reports the same counts, and
// deid verify finds k >= min_k.
func TestMinK(t *testing.T) {
	qis := []string{"city", "at"}
	// the output without min_k: the reference
	_, refOut, _, _ := verifyJobPolicy(t, minKPolicy)
	ref := outputClasses(t, refOut, qis)
	var refRows int64
	for _, n := range ref {
		refRows += n
	}
	for _, minK := range []int{2, 5, 8, 1000} {
		t.Run(fmt.Sprint("min_k ", minK), func(t *testing.T) {
			var wantRemoved int64
			for _, n := range ref {
				if n < int64(minK) {
					wantRemoved += n
				}
			}
			if minK < 1000 && (wantRemoved == 0 || wantRemoved == refRows) {
				t.Fatalf("the sample should have classes on both sides of min_k %d: %d of %d rows below", minK, wantRemoved, refRows)
			}
			t.Logf("%d classes, %d rows; %d rows in classes below %d", len(ref), refRows, wantRemoved, minK)
			policy := minKPolicy + fmt.Sprintf("        min_k: %d\n", minK)
			plan, out, _, _ := verifyJobPolicy(t, policy)
			dir := filepath.Dir(filepath.Dir(filepath.Dir(out)))
			got := outputClasses(t, out, qis)
			var rows int64
			for class, n := range got {
				rows += n
				if n < int64(minK) {
					t.Errorf("class %q has %d rows, below min_k %d", class, n, minK)
				}
				if ref[class] != n {
					t.Errorf("class %q: %d rows, %d without min_k: a class was cut, not dropped whole", class, n, ref[class])
				}
			}
			if rows != refRows-wantRemoved {
				t.Errorf("%d rows out, want %d - %d", rows, refRows, wantRemoved)
			}
			// the report of the run
			m, err := output.ReadManifest(context.Background(), storage.NewRouter(), filepath.Join(dir, "out"))
			if err != nil {
				t.Fatal(err)
			}
			var rep report.Run
			b, err := os.ReadFile(filepath.Join(dir, "out", "_reports", m.RunID, "report.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			d := rep.Destinations[0]
			if d.Removed["small_class"] != wantRemoved || d.RowsOut != rows {
				t.Errorf("report: removed %v, rows out %d; want small_class %d, rows out %d", d.Removed, d.RowsOut, wantRemoved, rows)
			}
			// workers do not change the bytes
			before := tree(t, filepath.Join(dir, "out", "logs"))
			if _, err := runPlan(t, plan, 1); err != nil {
				t.Fatal(err)
			}
			if after := tree(t, filepath.Join(dir, "out", "logs")); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("outputs with 1 worker differ from 2 workers: %v, %v", after, before)
			}
			// a dry run reports the same counts
			pr, err := Plan(context.Background(), plan, Options{Workers: 3, BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			if pd := pr.Destinations[0]; pd.Removed["small_class"] != wantRemoved || pd.RowsOut != rows {
				t.Errorf("plan: removed %v, rows out %d; want small_class %d, rows out %d", pd.Removed, pd.RowsOut, wantRemoved, rows)
			}
			// verify measures k >= min_k, without findings
			res, err := verify.Outputs(context.Background(), plan, verify.Options{BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			vd := res.Destinations[0]
			if len(vd.Risk) != 1 || vd.Risk[0].Rows != rows || rows > 0 && vd.Risk[0].K < int64(minK) || vd.Risk[0].ClassesBelow != 0 {
				t.Errorf("verify risk: %+v", vd.Risk)
			}
			for _, f := range vd.Findings {
				t.Errorf("verify finding: %v", f)
			}
		})
	}
}

// TestMinKIncremental: an incremental run keeps no output of a dataset
// whose destination enforces min_k (a new file changes every class): it
// computes the output again and suppresses the same rows again. The result
// is byte-identical to the committed file, so it is not published again
// (the commit lists it as unchanged) and the chain gains no rewrite.
func TestMinKIncremental(t *testing.T) {
	for _, minK := range []string{"", "        min_k: 5\n"} {
		plan, _, _, _ := verifyJobPolicy(t, minKPolicy+minK)
		rep, err := Run(context.Background(), plan, Options{Incremental: true, ScratchDir: t.TempDir(), BatchSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		d := rep.Destinations[0]
		if minK == "" {
			if len(d.Unchanged) != 1 {
				t.Errorf("without min_k, the unchanged output is kept: %v", d.Unchanged)
			}
			continue
		}
		if len(d.Unchanged) != 1 || len(d.Files) != 0 || d.Removed["small_class"] == 0 {
			t.Errorf("with min_k: unchanged %v, files %d, removed %v; want the output computed again (small classes removed) and, identical, kept", d.Unchanged, len(d.Files), d.Removed)
		}
	}
}
