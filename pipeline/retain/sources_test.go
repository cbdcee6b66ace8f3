package retain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/storage"
)

// TestRunSources: retain lists every source before it changes anything,
// and applies run's rules to it: a source matching no file is a data error
// (pipeline.ErrNoInput) naming the dataset and its pattern, with --dry-run
// too, unless the dataset says allow_empty: true (then a warning); files
// in the isolated part alone are work to do; a folder named without a
// glob and a link to nothing in the source folder are data errors.
func TestRunSources(t *testing.T) {
	cases := []struct {
		name       string
		dry        bool
		allowEmpty bool
		setup      func(t *testing.T, dir string) (source string) // "" keeps the policy's
		want       []error                                        // nil: success
		wantWarn   string
		wantMsg    []string
	}{
		{name: "empty source", want: []error{pipeline.ErrNoInput, dataerr.ErrData},
			wantMsg: []string{`dataset "orders"`, "/orders/*.parquet", "matches no file", "allow_empty: true"}},
		{name: "empty source, dry run", dry: true, want: []error{pipeline.ErrNoInput, dataerr.ErrData},
			wantMsg: []string{`dataset "orders"`, "matches no file"}},
		{name: "empty source, allow_empty", allowEmpty: true, wantWarn: "no input file matches"},
		{name: "empty source, allow_empty, dry run", dry: true, allowEmpty: true, wantWarn: "no input file matches"},
		{name: "only the isolated part holds files", setup: func(t *testing.T, dir string) string {
			writeOrders(t, filepath.Join(dir, "orders", isoFolder, "part-0.parquet"), genOrders(0, []string{"new"}, 4), 4, nil)
			return ""
		}},
		{name: "a folder without a glob", setup: func(t *testing.T, dir string) string {
			writeOrders(t, filepath.Join(dir, "orders", "part-0.parquet"), genOrders(0, []string{"new"}, 4), 4, nil)
			return filepath.Join(dir, "orders")
		}, want: []error{storage.ErrFolder, dataerr.ErrData}, wantMsg: []string{"is a folder", "/orders/*.parquet"}},
		{name: "a link to nothing in the source folder", setup: func(t *testing.T, dir string) string {
			writeOrders(t, filepath.Join(dir, "orders", "part-0.parquet"), genOrders(0, []string{"new"}, 4), 4, nil)
			if err := os.Symlink(filepath.Join(dir, "gone.parquet"), filepath.Join(dir, "orders", "part-1.parquet")); err != nil {
				t.Fatal(err)
			}
			return ""
		}, want: []error{storage.ErrDanglingLink, dataerr.ErrData}, wantMsg: []string{"part-1.parquet", "does not exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "orders"), 0o755); err != nil {
				t.Fatal(err)
			}
			plan := writePolicy(t, dir, policyOpts{})
			if tc.setup != nil {
				if src := tc.setup(t, dir); src != "" {
					plan.Datasets[0].Source = src
				}
			}
			plan.Datasets[0].AllowEmpty = tc.allowEmpty
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Mem: mem, DryRun: tc.dry, RunID: "run-sources"})
			mem.AssertSize(t, 0)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			} else {
				if err == nil {
					t.Fatalf("Run succeeded, want %v", tc.want)
				}
				for _, w := range tc.want {
					if !errors.Is(err, w) {
						t.Errorf("error does not match %v: %v", w, err)
					}
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error does not say %q: %v", m, err)
					}
				}
			}
			warns := strings.Join(rep.Warnings, "\n")
			if tc.wantWarn != "" && !strings.Contains(warns, tc.wantWarn) {
				t.Errorf("warnings do not say %q: %q", tc.wantWarn, rep.Warnings)
			}
			if tc.wantWarn == "" && strings.Contains(warns, "no input file matches") {
				t.Errorf("unexpected warning: %q", rep.Warnings)
			}
		})
	}
}
