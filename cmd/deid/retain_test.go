package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/report"
)

// TestRetainCommand runs `deid retain` on a copy of the sample lake with the
// example policy: the dry run changes nothing, the run removes what the dry
// run said, a second run removes nothing, and `deid run` still works on the
// retained lake.
func TestRetainCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	root := repoRoot(t)
	for _, sub := range []string{"testdata/lake", "deploy/examples"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(sub)), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-r", filepath.Join(root, sub), filepath.Join(dir, sub)).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	args := []string{"retain", "-c", "deploy/examples/policy.yaml", "--now", "2026-11-01T00:00:00Z", "--json"}
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
	total := func(rep *report.Retain) (n int64) {
		for _, ds := range rep.Datasets {
			for _, v := range ds.Removed {
				n += v
			}
		}
		return n
	}
	dry := decode(runDeid(t, dir, nil, append(args, "--dry-run")...))
	if !dry.DryRun || total(dry) == 0 {
		t.Fatalf("dry run removed %d rows", total(dry))
	}
	first := decode(runDeid(t, dir, nil, args...))
	if total(first) != total(dry) {
		t.Errorf("run removed %d rows, the dry run said %d", total(first), total(dry))
	}
	if second := decode(runDeid(t, dir, nil, args...)); total(second) != 0 {
		t.Errorf("second run removed %d rows", total(second))
	}
	if res := runDeid(t, dir, nil, "run", "-c", "deploy/examples/policy.yaml", "--now", "2026-11-01T00:00:00Z"); res.code != 0 {
		t.Errorf("deid run on the retained lake: exit %d: %s", res.code, res.stderr)
	}
	if res := runDeid(t, dir, nil, "retain"); res.code != 2 || !strings.Contains(res.stderr, "name the policy with -c") {
		t.Errorf("retain without -c: exit %d %s", res.code, res.stderr)
	}
}
