package main

import (
	"encoding/json"
	"fmt"
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
	isolated := func(rep *report.Retain) (n int64) {
		for _, ds := range rep.Datasets {
			n += ds.Isolation.Isolated + ds.Isolation.Released
		}
		return n
	}
	if isolated(first) == 0 {
		t.Error("the example lake's erased orders inside the legal minimum were not isolated")
	}
	if isolated(first) != isolated(dry) {
		t.Errorf("run isolated or released %d rows, the dry run said %d", isolated(first), isolated(dry))
	}
	if second := decode(runDeid(t, dir, nil, args...)); total(second) != 0 || isolated(second) != 0 {
		t.Errorf("second run removed %d rows, isolated or released %d", total(second), isolated(second))
	}
	if res := runDeid(t, dir, nil, "run", "-c", "deploy/examples/policy.yaml", "--now", "2026-11-01T00:00:00Z"); res.code != 0 {
		t.Errorf("deid run on the retained lake: exit %d: %s", res.code, res.stderr)
	}
	if res := runDeid(t, dir, nil, "retain"); res.code != 2 || !strings.Contains(res.stderr, "name the policy with -c") {
		t.Errorf("retain without -c: exit %d %s", res.code, res.stderr)
	}
}

// TestValidateRefusesRetentionBelowLegalMinimum: deid validate names the
// line of the retention that undercuts the declared legal minimum.
func TestValidateRefusesRetentionBelowLegalMinimum(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	old := "      keep: 3y\n      on_null: {fallback"
	if strings.Count(src, old) != 1 {
		t.Fatal("the example policy's orders retention moved")
	}
	line := strings.Count(src[:strings.Index(src, old)], "\n") + 1
	dir := filepath.Join(root, "deploy", "examples") // relative paths of the policy resolve from here
	path := filepath.Join(t.TempDir(), "policy.yaml")
	src = strings.Replace(src, old, "      keep: 2y\n      on_null: {fallback", 1)
	src = strings.ReplaceAll(src, "../../", filepath.Join(root)+"/")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runDeid(t, dir, nil, "validate", "-c", path, "--no-sources")
	want := fmt.Sprintf("%s:%d:13: datasets.orders.retention.keep: 2y is shorter than the legal minimum of 3y (PRC E-Commerce Law art. 31", path, line)
	if res.code != 2 || !strings.Contains(res.stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant %q", res.code, res.stderr, want)
	}
}
