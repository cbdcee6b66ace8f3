package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reportIDs lists the run ids of an output's reports.
func reportIDs(t *testing.T, out string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(out, "_reports"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(out, "_reports", e.Name(), "report.json")); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// checkAll runs report check on every output of the example and verify,
// failing the test on any finding.
func checkAll(t *testing.T, dir, policy, step string) {
	t.Helper()
	outs, _ := filepath.Glob(filepath.Join(dir, "out", "example", "*"))
	if len(outs) == 0 {
		t.Fatalf("%s: no outputs", step)
	}
	for _, out := range outs {
		if res := runDeid(t, dir, nil, "report", "check", out, "-c", policy); res.code != 0 {
			t.Errorf("%s: report check %s: exit %d\n%s%s", step, filepath.Base(out), res.code, res.stdout, res.stderr)
		}
	}
	if res := runDeid(t, dir, nil, "verify", "-c", policy); res.code != 0 {
		t.Errorf("%s: verify: exit %d\n%s%s", step, res.code, res.stdout, res.stderr)
	}
}

// TestRetainRewritesAreInTheChain: a retain that erases a new request's
// subjects from published outputs (pseudonymized: rewritten in place;
// partner outputs: re-derived) records each rewrite in the output's report
// chain, so report check passes on every destination right after it, with
// no run in between, and agrees with verify.
func TestRetainRewritesAreInTheChain(t *testing.T) {
	dir := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	if res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	appendErasure(t, dir, 10001, 10002, 10003, 10004, 10005)
	before := reportIDs(t, filepath.Join(dir, "out", "example", "training"))
	res := runDeid(t, dir, nil, "retain", "-c", policy, "--now", sampleNow)
	if res.code != 0 {
		t.Fatalf("retain: exit %d\n%s", res.code, res.stderr)
	}
	after := reportIDs(t, filepath.Join(dir, "out", "example", "training"))
	if len(after) != len(before)+1 || !strings.Contains(strings.Join(after, " "), "-erase") {
		t.Errorf("training's reports %v after retain, %v before: want one more, the erasure's", after, before)
	}
	checkAll(t, dir, policy, "after retain")
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// appendErasure adds erasure requests for ids to the sample lake's list.
func appendErasure(t *testing.T, dir string, ids ...int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "testdata", "lake", "erasure.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, id := range ids {
		if _, err := f.WriteString(itoa(id) + ",2026-10-31T09:00:00+08:00\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(n int) string {
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestIdleJobRunsDoNotGrowTheChain: a scheduled job's run that finds no
// new input commits nothing (no report, the manifest untouched), however
// often it runs; a run with new input commits again.
func TestIdleJobRunsDoNotGrowTheChain(t *testing.T) {
	dir := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	job := []string{"run", "-c", policy, "--job", "nightly", "--progress", "never"}
	if res := runDeid(t, dir, nil, job...); res.code != 0 {
		t.Fatalf("first job run: exit %d\n%s", res.code, res.stderr)
	}
	out := filepath.Join(dir, "out", "example", "training")
	ids := reportIDs(t, out)
	manifest, _ := os.ReadFile(filepath.Join(out, "_manifest.json"))
	for i := 0; i < 3; i++ {
		res := runDeid(t, dir, nil, job...)
		if res.code != 0 {
			t.Fatalf("idle job run %d: exit %d\n%s", i, res.code, res.stderr)
		}
	}
	if got := reportIDs(t, out); strings.Join(got, " ") != strings.Join(ids, " ") {
		t.Errorf("idle runs grew the chain: %v, was %v", got, ids)
	}
	if m, _ := os.ReadFile(filepath.Join(out, "_manifest.json")); string(m) != string(manifest) {
		t.Error("an idle run rewrote the manifest")
	}
	checkAll(t, dir, policy, "after idle runs")
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestOddFileNamesCheckClean: source files whose names hold spaces,
// Unicode, a backslash, quotes and a percent sign publish, check clean and
// verify, and a retain over them too.
func TestOddFileNamesCheckClean(t *testing.T) {
	dir := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	names := []string{`part 0 copy.parquet`, `分区-零.parquet`, `back\slash.parquet`, `it's "100%".parquet`}
	src := filepath.Join(dir, "testdata", "lake", "service", "dt=2026-10-31", "part-0.parquet")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(filepath.Dir(src), n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, "out", "example", "training", "service", "dt=2026-10-31", n)); err != nil {
			t.Errorf("%q not published: %v", n, err)
		}
	}
	checkAll(t, dir, policy, "after run")
	appendErasure(t, dir, 10001, 10002)
	if res := runDeid(t, dir, nil, "retain", "-c", policy, "--now", sampleNow); res.code != 0 {
		t.Fatalf("retain: exit %d\n%s", res.code, res.stderr)
	}
	checkAll(t, dir, policy, "after retain")
}
