package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/report"
)

// TestGCSRetainMatchesLocal: deid retain on the example policy with the
// lake on the emulator (reached through STORAGE_EMULATOR_HOST) removes what
// the local run removes, leaves the same bytes in every source file, no
// journal or lock in the bucket, and changes nothing the second time.
func TestGCSRetainMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	file := "cmd/deid/sample-policy.yaml"
	policy, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"retain", "--now", sampleNow, "--json"}
	decode := func(res deidResult) *report.Retain {
		t.Helper()
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		var rep report.Retain
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("report: %v\n%s", err, res.stdout)
		}
		return &rep
	}
	local := sampleWorkdir(t)
	os.WriteFile(filepath.Join(local, "local.yaml"), policy, 0o644)
	want := decode(runDeid(t, local, nil, append(args, "-c", "local.yaml")...))

	g, _ := inProcessGCS(t, nil)
	dir := sampleWorkdir(t)
	g.upload(t, dir)
	os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(policy), g.bucket, g.bucket)), 0o644)
	env := []string{"STORAGE_EMULATOR_HOST=" + g.host}
	got := decode(runDeid(t, dir, env, append(args, "-c", "gcs.yaml")...))
	changed := 0
	for i, ds := range got.Datasets {
		w := want.Datasets[i]
		if ds.Files != w.Files || ds.RowsIn != w.RowsIn || ds.RowsKept != w.RowsKept || !mapsEqual(ds.Removed, w.Removed) ||
			ds.Anonymized != w.Anonymized || ds.Isolation.Isolated != w.Isolation.Isolated || !strings.HasPrefix(ds.Root, "gs://lake/") {
			t.Errorf("dataset %s on GCS: files %+v rows %d/%d removed %v anonymized %d (root %s); locally %+v %d/%d %v %d",
				ds.Name, ds.Files, ds.RowsKept, ds.RowsIn, ds.Removed, ds.Anonymized, ds.Root, w.Files, w.RowsKept, w.RowsIn, w.Removed, w.Anonymized)
		}
		changed += ds.Files.Rewritten + ds.Files.Deleted
	}
	if changed == 0 {
		t.Fatal("the example retains nothing: the test would prove nothing")
	}
	// every source file left has the local run's bytes, and the local run
	// left no other
	compared := 0
	for _, loc := range g.list(t, "gs://lake/") {
		rel := strings.TrimPrefix(loc, "gs://lake/")
		if strings.Contains(rel, ".deid") {
			t.Errorf("left in the bucket: %s", loc)
			continue
		}
		if strings.Contains(rel, "/_anonymized/") || strings.Contains(rel, "/_restricted/") || !strings.HasSuffix(rel, ".parquet") {
			continue // named by run id; their rows are counted in the reports
		}
		b, err := os.ReadFile(filepath.Join(local, filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("%s: on GCS, not left by the local run: %v", loc, err)
			continue
		}
		if sum(b) != sum(g.read(t, loc)) {
			t.Errorf("%s differs from the local run's file", loc)
		}
		compared++
	}
	localFiles := 0
	filepath.WalkDir(filepath.Join(local, "testdata"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, "_anonymized") && !strings.Contains(p, "_restricted") {
			localFiles++
		}
		return nil
	})
	if compared == 0 || compared != localFiles {
		t.Errorf("%d source files on GCS, %d locally", compared, localFiles)
	}
	again := decode(runDeid(t, dir, env, append(args, "-c", "gcs.yaml")...))
	for _, ds := range again.Datasets {
		if ds.Files.Rewritten+ds.Files.Deleted != 0 {
			t.Errorf("second run on GCS changed dataset %s: %+v", ds.Name, ds.Files)
		}
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
