package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleWorkdir copies testdata/sample into a temporary working folder, so
// that the built-in sample policy's relative paths resolve there and its
// output (out/sample) does not land in the repository.
func sampleWorkdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(repoRoot(t), "testdata")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(repoRoot(t), p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	// the bench's reference policy on testdata/sample, paths relative to dir
	ref, err := os.ReadFile(filepath.Join(repoRoot(t), "cmd", "deid", "testdata", "reference-sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reference.yaml"), ref, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// referenceSample returns the reference sample policy's text.
func referenceSample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "cmd", "deid", "testdata", "reference-sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hashes returns the SHA-256 of every file under root, by relative path.
func hashes(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		s := sha256.Sum256(b)
		rel, _ := filepath.Rel(root, p)
		out[rel] = hex.EncodeToString(s[:])
		return nil
	})
	return out
}

const sampleNow = "2026-11-01T00:00:00Z"

// TestBuiltinSampleRun is the README's first command: deid run with no -c
// runs the example policy on the sample lake.
func TestBuiltinSampleRun(t *testing.T) {
	dir := sampleWorkdir(t)
	res := runDeid(t, dir, nil, "run", "--now", sampleNow)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"succeeded", "dataset device: 2 files, 600 rows in", "dataset orders: 1 file, 360 rows in",
		"destination partner_ads (partner_sharing): 3 files",
		"in out/example/partner_ads; removed for this destination: consent 15, child 92"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.stdout)
		}
	}
	if !strings.Contains(res.stderr, "built-in sample policy") {
		t.Errorf("no notice that the built-in policy was used:\n%s", res.stderr)
	}
	plan := runDeid(t, dir, nil, "plan", "--now", sampleNow)
	for _, want := range []string{
		"write service/dt=2026-10-30/part-0.parquet: 301 rows (columns dropped: user_id, user_agent) (values removed: url (redact), search_query (null))",
		"destination analytics (analytics) would receive 868 rows in out/example/analytics:",
	} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan.stdout)
		}
	}
	files := hashes(t, filepath.Join(dir, "out", "example"))
	for _, p := range []string{"training/device/dt=2026-10-30/part-0.parquet", "research/orders/orders.parquet", "analytics/_manifest.json"} {
		if files[p] == "" {
			t.Errorf("missing %s in %v", p, files)
		}
	}
}

// TestBuiltinPolicyIsTheExample: the built-in policy is
// deploy/examples/policy.yaml with its paths made relative to the
// repository root. -update rewrites it.
func TestBuiltinPolicyIsTheExample(t *testing.T) {
	ex, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const header = "# GENERATED from deploy/examples/policy.yaml with its paths made relative to\n" +
		"# the repository root (a test keeps the two in step: go test ./cmd/deid -run\n" +
		"# BuiltinPolicy -update). This is the built-in default of `deid run`.\n"
	want := header + strings.ReplaceAll(string(ex), "../../", "")
	if *update {
		if err := os.WriteFile(filepath.Join(repoRoot(t), "cmd", "deid", "sample-policy.yaml"), []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(samplePolicy) != want {
		t.Error("cmd/deid/sample-policy.yaml differs from deploy/examples/policy.yaml: run go test ./cmd/deid -run BuiltinPolicy -update")
	}
}

// TestOutputsIndependentOfParallelism: --workers and GOMAXPROCS do not
// change a single output byte.
func TestOutputsIndependentOfParallelism(t *testing.T) {
	var first map[string]string
	for _, c := range []struct {
		workers, procs string
	}{{"1", "1"}, {"2", "2"}, {"1", "2"}, {"2", "1"}, {"4", "2"}} {
		dir := sampleWorkdir(t)
		res := runDeid(t, dir, []string{"GOMAXPROCS=" + c.procs}, "run", "-c", "reference.yaml", "--now", sampleNow, "--workers", c.workers, "--batch-size", "777")
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		got := hashes(t, filepath.Join(dir, "out", "sample", "browsing"))
		if first == nil {
			first = got
			continue
		}
		if len(got) != len(first) {
			t.Fatalf("workers=%s GOMAXPROCS=%s: %d files, first run %d", c.workers, c.procs, len(got), len(first))
		}
		for p, sum := range first {
			if got[p] != sum {
				t.Errorf("workers=%s GOMAXPROCS=%s: %s differs", c.workers, c.procs, p)
			}
		}
	}
}

// TestExitCodes: each class of failure has its exit status and a message
// that says where the problem is.
func TestExitCodes(t *testing.T) {
	dir := sampleWorkdir(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	badYAML := write("bad.yaml", "version: 1\nname: x\ndatasets: {d: {source: a, columns: {x: nope}}}\ndestinations: {}\n")
	needsKey := write("needs-key.yaml", strings.Replace(referenceSample(t), "hex:file:testdata/sample/sample-only.key", "hex:env:DEID_TEST_UNSET_KEY", 1))
	os.MkdirAll(filepath.Join(dir, "broken"), 0o755)
	write("broken/x.parquet", "PAR1 this is not parquet PAR1")
	corrupt := write("corrupt.yaml", strings.Replace(referenceSample(t), "testdata/sample/browsing/dt=*/*.parquet", "broken/*.parquet", 1))
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no command", nil, 2, []string{"usage: deid"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"help", []string{"run", "-h"}, 0, []string{"-workers"}},
		{"unknown flag", []string{"run", "--wrokers", "2"}, 2, []string{"wrokers"}},
		{"bad --now", []string{"run", "--now", "yesterday"}, 2, []string{"--now", "RFC 3339"}},
		{"policy error with position", []string{"validate", "-c", badYAML}, 2, []string{badYAML + ":3:", `unknown semantic type "nope"`}},
		{"missing policy", []string{"run", "-c", filepath.Join(dir, "none.yaml")}, 2, []string{"none.yaml", "cannot read the policy"}},
		{"missing key", []string{"run", "-c", needsKey, "--now", sampleNow}, 2, []string{`"DEID_TEST_UNSET_KEY" is not set`}},
		{"corrupt input", []string{"run", "-c", corrupt, "--now", sampleNow}, 3, []string{"broken/x.parquet", "corrupt"}},
		{"corrupt input in validate", []string{"validate", "-c", corrupt}, 3, []string{"broken/x.parquet"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runDeid(t, dir, nil, c.args...)
			if res.code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, c.code, res.stdout, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.stderr+res.stdout, w) {
					t.Errorf("output lacks %q:\n%s%s", w, res.stdout, res.stderr)
				}
			}
			if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
				t.Errorf("panic:\n%s", res.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Errorf("a failed run published something: %v", hashes(t, filepath.Join(dir, "out")))
	}
}

// TestPlanAndValidate: the dry run prints what a run would do and writes
// nothing; validate prints the key fingerprint, never the key.
func TestPlanAndValidate(t *testing.T) {
	dir := sampleWorkdir(t)
	res := runDeid(t, dir, nil, "plan", "-c", "reference.yaml", "--now", sampleNow, "--json")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	var rep struct {
		Command  string
		Datasets []struct {
			RowsIn   int64            `json:"rows_in"`
			RowsKept int64            `json:"rows_kept"`
			Removed  map[string]int64 `json:"removed"`
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || rep.Command != "plan" || rep.Datasets[0].RowsIn != 10000 {
		t.Fatalf("plan report: %v\n%s", err, res.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("plan wrote output")
	}
	run := runDeid(t, dir, nil, "run", "-c", "reference.yaml", "--now", sampleNow, "--json")
	var ran struct {
		Datasets []struct {
			RowsKept int64            `json:"rows_kept"`
			Removed  map[string]int64 `json:"removed"`
		}
	}
	json.Unmarshal([]byte(run.stdout), &ran)
	if ran.Datasets[0].RowsKept != rep.Datasets[0].RowsKept || ran.Datasets[0].Removed["erasure"] != rep.Datasets[0].Removed["erasure"] {
		t.Errorf("plan counts %+v, run counts %+v", rep.Datasets[0], ran.Datasets[0])
	}
	val := runDeid(t, dir, nil, "validate", "-c", "reference.yaml")
	if val.code != 0 || !strings.Contains(val.stdout, "fingerprint") || !strings.Contains(val.stdout, "2 files checked") {
		t.Errorf("validate: exit %d\n%s%s", val.code, val.stdout, val.stderr)
	}
}

// TestNoKeyInAnyStream runs with debug JSON logs and checks that the key
// appears in no stream and no file, and that every log line is JSON.
func TestNoKeyInAnyStream(t *testing.T) {
	dir := sampleWorkdir(t)
	key, _ := os.ReadFile(filepath.Join(dir, "testdata", "sample", "sample-only.key"))
	keyHex := strings.TrimSpace(string(key))
	res := runDeid(t, dir, nil, "run", "-c", "reference.yaml", "--now", sampleNow, "--log-format", "json", "--log-level", "debug", "--progress", "always")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	streams := res.stdout + res.stderr
	for p := range hashes(t, filepath.Join(dir, "out")) {
		b, _ := os.ReadFile(filepath.Join(dir, "out", p))
		streams += string(b)
	}
	raw, _ := hex.DecodeString(keyHex)
	if strings.Contains(streams, keyHex) || strings.Contains(strings.ToLower(streams), keyHex[:24]) || bytes.Contains([]byte(streams), raw) {
		t.Error("key material leaked")
	}
	for _, line := range strings.Split(strings.TrimSpace(res.stderr), "\n") {
		line = strings.TrimSpace(line[strings.LastIndex(line, "\r")+1:]) // the progress bar shares stderr
		if line == "" || strings.HasPrefix(line, "[") {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
}
