package retain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
)

// TestRetainWorkersSameResult: deid retain runs its files' row groups on
// the engine's workers (decided, then staged, many files at once); with 1,
// 2 or 5 workers the lake it leaves (rewritten files, anonymized and
// isolated parts) is the same to the byte, and so is its report but for
// times, across files of many row groups that are copied, dropped and
// rewritten, with anonymization, a legal minimum and erasure, then a
// second run over the first one's isolated part.
func TestRetainWorkersSameResult(t *testing.T) {
	kinds := [][]string{{"old", "mixed", "new", "new", "mixed"}, {"new", "new", "new"}, {"old", "old"}, {"mixed", "null", "new", "old", "new", "mixed"}, {"new"}}
	opts := policyOpts{anonymize: true, legal: true, erasure: []int64{1003, 1011, 1017}, onNull: "remove"}
	var first map[string]string
	var firstReport string
	for _, workers := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(workers, " workers"), func(t *testing.T) {
			dir := t.TempDir()
			for i, k := range kinds {
				writeOrders(t, filepath.Join(dir, "orders", fmt.Sprintf("part-%d.parquet", i)), genOrders(i, k, 30), 30, nil)
			}
			plan := writePolicy(t, dir, opts)
			var reports []string
			for pass := range 2 {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				clock := func() time.Time { return now }
				rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Mem: mem, Workers: workers, BatchSize: 7,
					RunID: fmt.Sprint("run-", pass), Clock: clock})
				if err != nil {
					t.Fatal(err)
				}
				mem.AssertSize(t, 0)
				reports = append(reports, timeless(t, rep, dir))
			}
			files := lakeFiles(t, filepath.Join(dir, "orders"))
			if len(files) < 8 {
				t.Fatalf("the lake holds %d files: %v", len(files), files)
			}
			got := strings.Join(reports, "\n")
			if first == nil {
				first, firstReport = files, got
				return
			}
			for name, sum := range first {
				if files[name] != sum {
					t.Errorf("%s: %q, with 1 worker %q", name, files[name], sum)
				}
			}
			if len(files) != len(first) {
				t.Errorf("%d files, with 1 worker %d", len(files), len(first))
			}
			if got != firstReport {
				t.Errorf("the reports differ from those with 1 worker:\n%s\n%s", got, firstReport)
			}
		})
	}
}

// lakeFiles returns the SHA-256 of every file under root, by path.
func lakeFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(root, p)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// timeless is the report as JSON without its times, the lake's folder dir
// spelled DIR.
func timeless(t *testing.T, rep *report.Retain, dir string) string {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var strip func(any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if strings.HasSuffix(k, "_at") || k == "seconds" || k == "policy" { // the policy names dir
					delete(v, k)
					continue
				}
				v[k] = strip(x)
			}
		case []any:
			for i, x := range v {
				v[i] = strip(x)
			}
		}
		return v
	}
	b, _ = json.MarshalIndent(strip(v), "", " ")
	return strings.ReplaceAll(string(b), dir, "DIR")
}
