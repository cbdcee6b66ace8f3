package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/internal/testmem"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

func runIncremental(t *testing.T, plan *rules.Plan) *report.Run {
	t.Helper()
	rep, err := Run(context.Background(), plan, Options{Workers: 2, Mem: testmem.New(t), ScratchDir: t.TempDir(), Incremental: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestIncremental: a scheduled (incremental) run reads only the inputs whose
// outputs are not committed from them as they are now; a changed input, a
// new one, a changed erasure list, a changed policy or key reprocess; and
// the outputs equal a full run's.
func TestIncremental(t *testing.T) {
	dir := t.TempDir()
	src := copySample(t, dir)
	erasure := filepath.Join(dir, "erasure.parquet")
	b, err := os.ReadFile(filepath.Join(sampleDir(t), "erasure.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(erasure, b, 0o644)
	out := filepath.Join(dir, "out")
	policy := withRoot(samplePolicy(filepath.Join(src, "dt=*", "*.parquet"), erasure, out), src)
	// the first day only: the second is a late file
	late := filepath.Join(src, "dt=2026-10-31")
	hidden := filepath.Join(dir, "late")
	os.Rename(late, hidden)

	read := func(rep *report.Run) int { return len(rep.Datasets[0].Files) }
	rep := runIncremental(t, compile(t, dir, policy))
	if read(rep) != 1 || len(rep.Destinations[0].Unchanged) != 0 {
		t.Fatalf("first run read %d files", read(rep))
	}
	rep = runIncremental(t, compile(t, dir, policy))
	if read(rep) != 0 || len(rep.Datasets[0].Unchanged) != 1 || strings.Join(rep.Destinations[0].Unchanged, ",") != "browsing/dt=2026-10-30/part-0.parquet" {
		t.Fatalf("rerun with nothing new read %d files; unchanged %v", read(rep), rep.Destinations[0].Unchanged)
	}
	os.Rename(hidden, late)
	rep = runIncremental(t, compile(t, dir, policy))
	if read(rep) != 1 || rep.Datasets[0].Files[0].Location != filepath.Join(late, "part-0.parquet") {
		t.Fatalf("the late file: read %d files", read(rep))
	}
	// a rewritten input is read again
	first := filepath.Join(src, "dt=2026-10-30", "part-0.parquet")
	later := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	os.Chtimes(first, later, later)
	if rep = runIncremental(t, compile(t, dir, policy)); read(rep) != 1 || rep.Datasets[0].Files[0].Location != first {
		t.Fatalf("a touched input: read %d files", read(rep))
	}
	if rep = runIncremental(t, compile(t, dir, policy)); read(rep) != 0 {
		t.Fatalf("read %d files after catching up", read(rep))
	}
	// a new erasure request must reach every committed output: all reprocessed
	changed := erasure + ".csv"
	os.WriteFile(changed, []byte("user_id\n999999991\n"), 0o644)
	withCSV := withRoot(samplePolicy(filepath.Join(src, "dt=*", "*.parquet"), changed, out), src)
	if rep = runIncremental(t, compile(t, dir, withCSV)); read(rep) != 2 {
		t.Fatalf("another erasure list: read %d files, want 2", read(rep))
	}
	os.WriteFile(changed, []byte("user_id\n999999991\n999999992\n"), 0o644)
	if rep = runIncremental(t, compile(t, dir, withCSV)); read(rep) != 2 {
		t.Fatalf("a new erasure request: read %d files, want 2", read(rep))
	}
	// a policy change reprocesses
	edited := strings.Replace(withCSV, "city: keep", "city: drop", 1)
	if rep = runIncremental(t, compile(t, dir, edited)); read(rep) != 2 {
		t.Fatalf("a policy change: read %d files, want 2", read(rep))
	}
	// the committed outputs equal a full, non-incremental run's
	full := filepath.Join(dir, "full")
	fullPolicy := strings.Replace(edited, "output: "+out, "output: "+full, 1)
	if _, err := runPlan(t, compile(t, dir, fullPolicy), 2); err != nil {
		t.Fatal(err)
	}
	mi, _ := output.ReadManifest(context.Background(), storage.Local{}, out)
	mf, _ := output.ReadManifest(context.Background(), storage.Local{}, full)
	if len(mi.Files) != 2 || len(mf.Files) != 2 {
		t.Fatalf("manifests: %d and %d files", len(mi.Files), len(mf.Files))
	}
	for i := range mi.Files {
		if mi.Files[i].Path != mf.Files[i].Path || mi.Files[i].SHA256 != mf.Files[i].SHA256 {
			t.Errorf("%s: incremental %s, full %s", mi.Files[i].Path, mi.Files[i].SHA256, mf.Files[i].SHA256)
		}
	}
}

// TestMergeListsRefusesDifferentLists: shards that read different erasure
// or consent lists (one changed while they ran) cannot be merged.
func TestMergeListsRefusesDifferentLists(t *testing.T) {
	a := []report.ErasureList{{Location: "e.csv", SHA256: "aa"}}
	b := []report.ErasureList{{Location: "e.csv", SHA256: "bb"}}
	c := []report.ConsentList{{Location: "c.csv", SHA256: "cc"}}
	cases := []struct {
		name      string
		into, sh  *report.Dataset
		wantError string
	}{
		{"first shard with lists", &report.Dataset{Name: "d"}, &report.Dataset{Erasure: a, Consent: c}, ""},
		{"same lists", &report.Dataset{Name: "d", Erasure: a, Consent: c}, &report.Dataset{Erasure: a, Consent: c}, ""},
		{"shard without files of the dataset", &report.Dataset{Name: "d", Erasure: a}, &report.Dataset{}, ""},
		{"erasure changed", &report.Dataset{Name: "d", Erasure: a}, &report.Dataset{Erasure: b}, `dataset "d": the shards read different erasure lists`},
		{"consent changed", &report.Dataset{Name: "d", Consent: c}, &report.Dataset{Consent: []report.ConsentList{{Location: "c.csv", SHA256: "dd"}}}, "different consent lists"},
	}
	for _, tc := range cases {
		err := mergeLists(tc.into, tc.sh)
		if tc.wantError == "" && err != nil || tc.wantError != "" && (err == nil || !strings.Contains(err.Error(), tc.wantError)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
