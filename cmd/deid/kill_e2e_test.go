package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kill tests: the real binary is killed with SIGKILL at a random moment of
// a run or a retain, then run once more to success; after that no staged,
// temporary or orphaned file may remain and every destination's report
// chain must check clean. CI runs a few trials of each (killTrials); the
// long version, .ci/kill-trials, runs 200 of each.

// killTrials is the number of trials per command: DEID_KILL_TRIALS, or 20.
func killTrials(t *testing.T) int {
	if s := os.Getenv("DEID_KILL_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("DEID_KILL_TRIALS=%q: want a positive number", s)
		}
		return n
	}
	return 20
}

// killedAfter starts deid with args in dir and kills it with SIGKILL after
// d (or lets it finish first); it reports whether the kill landed.
func killedAfter(t *testing.T, dir string, d time.Duration, args ...string) bool {
	t.Helper()
	cmd := exec.Command(buildDeid(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), scratchEnv(t, dir)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return false
	case <-time.After(d):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return true
	}
}

// timed returns how long deid takes with args in dir (which it changes).
func timed(t *testing.T, dir string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	if res := runDeid(t, dir, nil, args...); res.code != 0 {
		t.Fatalf("deid %v: exit %d\n%s", args, res.code, res.stderr)
	}
	return time.Since(start)
}

// leftovers lists what deid's own state a finished command left under
// root: staging, work and lock folders, temporary files, commit records.
func leftovers(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.Contains("/"+rel, "/.deid-") && (!d.IsDir() || isEmptyDir(p)) {
			found = append(found, rel) // the files, to tell what was left
		}
		return nil
	})
	return found
}

func isEmptyDir(p string) bool {
	es, err := os.ReadDir(p)
	return err == nil && len(es) == 0
}

// scratchEnv is the environment of a killed command and its rerun: their
// own temporary folder, dir/tmp, where their scratch folders go.
func scratchEnv(t *testing.T, dir string) []string {
	t.Helper()
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	return []string{"TMPDIR=" + tmp}
}

// checkConverged asserts the state after a killed command and one rerun:
// nothing of deid's own state left in the lake, the outputs or the
// temporary folder (the killed command's scratch folder, raw rows for a
// retain, is removed by the rerun), and every destination's report chain
// and the outputs check clean.
func checkConverged(t *testing.T, dir, policy, what string) {
	t.Helper()
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("%s: left behind: %v", what, l)
	}
	if l, _ := filepath.Glob(filepath.Join(dir, "tmp", "deid-*")); len(l) > 0 {
		t.Errorf("%s: scratch folders left behind: %v", what, l)
	}
	outs, _ := filepath.Glob(filepath.Join(dir, "out", "example", "*"))
	if len(outs) != 4 {
		t.Fatalf("%s: outputs %v", what, outs)
	}
	for _, out := range outs {
		if res := runDeid(t, dir, nil, "report", "check", out, "-c", policy); res.code != 0 {
			t.Errorf("%s: report check %s: exit %d\n%s%s", what, filepath.Base(out), res.code, res.stdout, res.stderr)
		}
	}
	if res := runDeid(t, dir, nil, "verify", "-c", policy); res.code != 0 {
		t.Errorf("%s: verify: exit %d\n%s%s", what, res.code, res.stdout, res.stderr)
	}
}

// copyTree copies folder src to dst (which must not exist).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// TestKillRunConverges kills deid run at random moments over a lake
// already published once (so a kill can land in a commit over an earlier
// one), reruns it, and checks that it converged.
func TestKillRunConverges(t *testing.T) {
	base := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	run := []string{"run", "-c", policy, "--now", sampleNow, "--progress", "never"}
	timed(t, base, run...)
	d := timed(t, base, run...) // a run over a published output
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	landed := 0
	for i := range killTrials(t) {
		dir := filepath.Join(t.TempDir(), "w")
		copyTree(t, base, dir)
		lake := treeState(t, filepath.Join(dir, "testdata", "lake"))
		at := time.Duration(rng.Int64N(int64(d) * 6 / 5))
		if killedAfter(t, dir, at, run...) {
			landed++
		}
		if got := treeState(t, filepath.Join(dir, "testdata", "lake")); fmt.Sprint(got) != fmt.Sprint(lake) {
			t.Errorf("trial %d (kill after %v): the lake changed", i, at)
		}
		if res := runDeid(t, dir, scratchEnv(t, dir), run...); res.code != 0 {
			t.Fatalf("trial %d (kill after %v): rerun: exit %d\n%s", i, at, res.code, res.stderr)
		}
		checkConverged(t, dir, policy, fmt.Sprintf("trial %d (kill after %v)", i, at))
		if t.Failed() {
			return
		}
	}
	t.Logf("%d trials, %d killed before they finished (a run takes %v)", killTrials(t), landed, d)
}

// TestKillRetainConverges kills deid retain at random moments while it
// applies a new erasure request (rewriting sources and published outputs,
// re-deriving partner_ads), reruns it, and checks that it converged: to
// the lake an uninterrupted retain makes, byte for byte outside the
// isolated part (whose files are named by run id), with clean report
// chains.
func TestKillRetainConverges(t *testing.T) {
	base := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	if res := runDeid(t, base, nil, "run", "-c", policy, "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	f, err := os.OpenFile(filepath.Join(base, "testdata", "lake", "erasure.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for id := 10001; id <= 10005; id++ {
		fmt.Fprintf(f, "%d,2026-10-31T09:00:00+08:00\n", id)
	}
	f.Close()
	retain := []string{"retain", "-c", policy, "--now", sampleNow}
	ref := filepath.Join(t.TempDir(), "ref")
	copyTree(t, base, ref)
	d := timed(t, ref, retain...)
	want, wantOut := lakeState(t, ref), outState(t, ref)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	landed := 0
	for i := range killTrials(t) {
		dir := filepath.Join(t.TempDir(), "w")
		copyTree(t, base, dir)
		at := time.Duration(rng.Int64N(int64(d) * 6 / 5))
		if killedAfter(t, dir, at, retain...) {
			landed++
		}
		if res := runDeid(t, dir, scratchEnv(t, dir), retain...); res.code != 0 {
			t.Fatalf("trial %d (kill after %v): rerun: exit %d\n%s", i, at, res.code, res.stderr)
		}
		what := fmt.Sprintf("trial %d (kill after %v)", i, at)
		if got := lakeState(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: the lake differs from an uninterrupted retain's:\n got %v\nwant %v", what, got, want)
		}
		if got := outState(t, dir); fmt.Sprint(got) != fmt.Sprint(wantOut) {
			t.Errorf("%s: the published files differ from an uninterrupted retain's:\n got %v\nwant %v", what, got, wantOut)
		}
		checkConverged(t, dir, policy, what)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d trials, %d killed before they finished (a retain takes %v)", killTrials(t), landed, d)
}

// lakeState is the lake's tree; the files of its isolated and anonymized
// parts, named by the run id, are known by their folder and content.
func lakeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	s := map[string]string{}
	for p, h := range treeState(t, filepath.Join(dir, "testdata", "lake")) {
		if (strings.Contains(p, "_restricted") || strings.Contains(p, "_anonymized")) && h != "dir" {
			p, h = filepath.Dir(p)+"/<run id>:"+h, "file"
		}
		s[p] = h
	}
	return s
}

// outState is the published data files of every output: their reports and
// manifests name run ids.
func outState(t *testing.T, dir string) map[string]string {
	t.Helper()
	s := treeState(t, filepath.Join(dir, "out"))
	for p := range s {
		if strings.Contains(p, "_reports") || strings.HasSuffix(p, "_manifest.json") {
			delete(s, p)
		}
	}
	return s
}

// TestKillMergeConverges kills deid report merge at random moments while it
// commits a sharded run (three shards of the example policy, over outputs
// published once), reruns the merge, and checks that it converged: no
// shard, staging or lock state left, clean report chains and verify.
func TestKillMergeConverges(t *testing.T) {
	base := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	timed(t, base, "run", "-c", policy, "--now", sampleNow, "--progress", "never")
	for i := range 3 {
		timed(t, base, "run", "-c", policy, "--now", sampleNow, "--progress", "never", "--shard", fmt.Sprintf("%d/3", i), "--run-id", "sharded")
	}
	merge := []string{"report", "merge", "-c", policy, "--run-id", "sharded", "--shards", "3"}
	probe := filepath.Join(t.TempDir(), "w")
	copyTree(t, base, probe)
	d := timed(t, probe, merge...)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	trials, landed := killTrials(t), 0
	for i := range trials {
		dir := filepath.Join(t.TempDir(), "w")
		copyTree(t, base, dir)
		at := time.Duration(rng.Int64N(int64(d) * 6 / 5))
		if killedAfter(t, dir, at, merge...) {
			landed++
		}
		if res := runDeid(t, dir, scratchEnv(t, dir), merge...); res.code != 0 {
			t.Fatalf("trial %d (kill after %v): merge again: exit %d\n%s", i, at, res.code, res.stderr)
		}
		checkConverged(t, dir, policy, fmt.Sprintf("merge trial %d (kill after %v)", i, at))
		if t.Failed() {
			return
		}
	}
	t.Logf("%d trials, %d killed before they finished (a merge takes %v)", trials, landed, d)
}
