package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/report"
)

var destinations = []string{"training", "analytics", "partner_ads", "research"}

// normalizedReport reads a destination's report and blanks what differs
// between any two runs (ids, timings, settings).
func normalizedReport(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Run
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	r.RunID, r.Seconds, r.Settings = "", 0, report.Settings{}
	if r.Signature == nil {
		t.Errorf("%s is not signed", path)
	} else {
		r.Signature.Value = "" // signs the run id and timings too; checked by deid report check
	}
	r.StartedAt, r.FinishedAt = r.Now, r.Now
	for _, d := range r.Datasets {
		for _, f := range d.Files {
			f.Seconds = 0
		}
	}
	out, _ := json.MarshalIndent(&r, "", " ")
	return string(out)
}

// fixTimes gives every file under dir/testdata one modification time, so
// that two copies of the lake record the same inputs.
func fixTimes(t *testing.T, dir string) {
	t.Helper()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	filepath.WalkDir(filepath.Join(dir, "testdata"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, at, at)
		}
		return err
	})
}

// firstDifference returns the first differing line of a and b.
func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d: %q vs %q", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d lines vs %d", len(la), len(lb))
}

func onlyReport(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "_reports", "*", "report.json"))
	if len(m) != 1 {
		t.Fatalf("%s: %d reports", dir, len(m))
	}
	return m[0]
}

// TestShardedRunEqualsSingleRun runs the example policy once, and as three
// shard processes of the real binary started together (one configured the
// Cloud Run way, from the environment) and merged: the outputs, manifests'
// files and reports are the same.
func TestShardedRunEqualsSingleRun(t *testing.T) {
	single := sampleWorkdir(t)
	fixTimes(t, single)
	if res := runDeid(t, single, nil, "run", "--now", sampleNow); res.code != 0 {
		t.Fatalf("single run: exit %d\n%s", res.code, res.stderr)
	}
	sharded := sampleWorkdir(t)
	fixTimes(t, sharded)
	var wg sync.WaitGroup
	results := make([]deidResult, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 2 {
				results[i] = runDeid(t, sharded, []string{"CLOUD_RUN_TASK_INDEX=2", "CLOUD_RUN_TASK_COUNT=3", "CLOUD_RUN_EXECUTION=sim"}, "run", "--now", sampleNow)
				return
			}
			results[i] = runDeid(t, sharded, nil, "run", "--now", sampleNow, "--shard", string(rune('0'+i))+"/3", "--run-id", "sim")
		}()
	}
	wg.Wait()
	for i, res := range results {
		if res.code != 0 || !strings.Contains(res.stdout, "published, not committed") {
			t.Fatalf("shard %d: exit %d\n%s\n%s", i, res.code, res.stdout, res.stderr)
		}
	}
	out := filepath.Join(sharded, "out", "example")
	for _, d := range destinations {
		if _, err := os.Stat(filepath.Join(out, d, "_manifest.json")); err == nil {
			t.Fatalf("%s committed before the merge", d)
		}
	}
	// a merge that misses a shard commits nothing
	res := runDeid(t, sharded, nil, "report", "merge", "--run-id", "sim", "--shards", "4")
	if res.code != 1 || !strings.Contains(res.stderr, `of 4, destination "training"`) || !strings.Contains(res.stderr, "has it run?") {
		t.Fatalf("merge with a missing shard: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "training", "_manifest.json")); err == nil {
		t.Fatal("a failed merge committed")
	}
	res = runDeid(t, sharded, nil, "report", "merge", "--run-id", "sim", "--shards", "3")
	if res.code != 0 {
		t.Fatalf("merge: exit %d\n%s", res.code, res.stderr)
	}
	for _, d := range destinations {
		a, b := filepath.Join(single, "out", "example", d), filepath.Join(out, d)
		ta, tb := hashes(t, a), hashes(t, b)
		for p, sum := range ta {
			if strings.HasPrefix(p, "_") {
				continue // manifest and reports: compared below
			}
			if tb[p] != sum {
				t.Errorf("%s/%s differs between the single and the sharded run", d, p)
			}
		}
		for p := range tb {
			if _, ok := ta[p]; !ok && !strings.HasPrefix(p, "_") {
				t.Errorf("%s/%s only in the sharded run", d, p)
			}
		}
		policy := filepath.Join(sharded, "example.yaml")
		os.WriteFile(policy, samplePolicy, 0o644)
		if res := runDeid(t, sharded, nil, "report", "check", b, "-c", policy); res.code != 0 {
			t.Errorf("deid report check on the sharded %s: exit %d\n%s%s", d, res.code, res.stdout, res.stderr)
		}
		if ra, rb := normalizedReport(t, onlyReport(t, a)), normalizedReport(t, onlyReport(t, b)); ra != rb {
			t.Errorf("%s: reports differ: %s", d, firstDifference(ra, rb))
		}
		var ma, mb struct{ Files []report.OutputFile }
		ba, _ := os.ReadFile(filepath.Join(a, "_manifest.json"))
		bb, _ := os.ReadFile(filepath.Join(b, "_manifest.json"))
		json.Unmarshal(ba, &ma)
		json.Unmarshal(bb, &mb)
		ja, _ := json.Marshal(ma.Files)
		jb, _ := json.Marshal(mb.Files)
		if len(ma.Files) == 0 || string(ja) != string(jb) {
			t.Errorf("%s: manifest files differ: %s", d, firstDifference(string(ja), string(jb)))
		}
	}
	if _, err := os.Stat(filepath.Join(out, "training", ".deid-shards")); !os.IsNotExist(err) {
		t.Errorf("shards folder left after the merge: %v", err)
	}
}

func TestShardSpec(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		flag      string
		env       map[string]string
		i, n      int
		ok        bool
		wantError bool
	}{
		{"", nil, 0, 0, false, false},
		{"1/4", nil, 1, 4, true, false},
		{"0/1", nil, 0, 1, true, false},
		{"", map[string]string{"CLOUD_RUN_TASK_INDEX": "3", "CLOUD_RUN_TASK_COUNT": "5"}, 3, 5, true, false},
		{"", map[string]string{"CLOUD_RUN_TASK_INDEX": "0", "CLOUD_RUN_TASK_COUNT": "1"}, 0, 0, false, false},
		{"2/4", map[string]string{"CLOUD_RUN_TASK_INDEX": "3", "CLOUD_RUN_TASK_COUNT": "5"}, 2, 4, true, false},
		{"4/4", nil, 0, 0, false, true},
		{"-1/4", nil, 0, 0, false, true},
		{"1", nil, 0, 0, false, true},
		{"a/b", nil, 0, 0, false, true},
		{"$(JOB_COMPLETION_INDEX)/4", nil, 0, 0, false, true}, // not expanded: the manifest is wrong
	}
	for _, c := range cases {
		i, n, ok, err := shardSpec(c.flag, env(c.env))
		if (err != nil) != c.wantError || i != c.i || n != c.n || ok != c.ok {
			t.Errorf("shardSpec(%q, %v) = %d, %d, %v, %v", c.flag, c.env, i, n, ok, err)
		}
	}
}

// shardedMinKPolicy writes the example policy with min_k 3 enforced in the
// research destination on orders (one file: over province and age band)
// and on device (two files, of different shards: over device model and
// OS version, so classes span shards), and returns its path relative to
// dir, so that the reports of two copies of the lake name the same files.
func shardedMinKPolicy(t *testing.T, dir string) string {
	t.Helper()
	qiLine := "        quasi_identifiers: [receiver_address, birth_date, created_at]\n"
	deviceLine := "      device: {}\n"
	text := string(samplePolicy)
	if !strings.Contains(text, qiLine) || !strings.Contains(text, deviceLine) {
		t.Fatalf("the example policy no longer has %q and %q", qiLine, deviceLine)
	}
	text = strings.Replace(text, qiLine, "        quasi_identifiers: [receiver_address, birth_date]\n        min_k: 3\n", 1)
	text = strings.Replace(text, deviceLine, "      device:\n        quasi_identifiers: [device_model, os_version]\n        min_k: 3\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "mink.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return "mink.yaml"
}

// runShards runs shards of run id "sim" of policy in dir as processes of
// the real binary started together, with extra arguments, and returns their
// results.
func runShards(t *testing.T, dir, policy string, shards []int, count int, extra ...string) []deidResult {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]deidResult, len(shards))
	for i, s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"run", "-c", policy, "--now", sampleNow, "--shard", fmt.Sprintf("%d/%d", s, count), "--run-id", "sim"}, extra...)
			results[i] = runDeid(t, dir, nil, args...)
		}()
	}
	wg.Wait()
	return results
}

// TestShardedRunWithMinKEqualsSingleRun: with min_k enforced, three shard
// processes started together exchange their class counts and give exactly
// the single run's outputs, manifests and reports (removed small_class
// included), although a class's rows are spread over the shards' files.
func TestShardedRunWithMinKEqualsSingleRun(t *testing.T) {
	const minK = 3
	single := sampleWorkdir(t)
	fixTimes(t, single)
	policy := shardedMinKPolicy(t, single)
	if res := runDeid(t, single, nil, "run", "-c", policy, "--now", sampleNow); res.code != 0 {
		t.Fatalf("single run: exit %d\n%s", res.code, res.stderr)
	}
	sharded := sampleWorkdir(t)
	fixTimes(t, sharded)
	shardedPolicy := shardedMinKPolicy(t, sharded)
	for i, res := range runShards(t, sharded, shardedPolicy, []int{0, 1, 2}, 3) {
		if res.code != 0 || !strings.Contains(res.stdout, "published, not committed") {
			t.Fatalf("shard %d: exit %d\n%s\n%s", i, res.code, res.stdout, res.stderr)
		}
	}
	out := filepath.Join(sharded, "out", "example")
	// each shard left its counts beside the frozen list, in the first
	// destination's output
	if m, _ := filepath.Glob(filepath.Join(out, "training", ".deid-shards", "sim", "classes-*-of-3.bin")); len(m) != 3 {
		t.Errorf("class counts files: %v, want 3", m)
	}
	if res := runDeid(t, sharded, nil, "report", "merge", "-c", shardedPolicy, "--run-id", "sim", "--shards", "3"); res.code != 0 {
		t.Fatalf("merge: exit %d\n%s", res.code, res.stderr)
	}
	for _, d := range destinations {
		a, b := filepath.Join(single, "out", "example", d), filepath.Join(out, d)
		ta, tb := hashes(t, a), hashes(t, b)
		for p, sum := range ta {
			if !strings.HasPrefix(p, "_") && tb[p] != sum {
				t.Errorf("%s/%s differs between the single and the sharded run", d, p)
			}
		}
		for p := range tb {
			if _, ok := ta[p]; !ok && !strings.HasPrefix(p, "_") {
				t.Errorf("%s/%s only in the sharded run", d, p)
			}
		}
		ra, rb := normalizedReport(t, onlyReport(t, a)), normalizedReport(t, onlyReport(t, b))
		if ra != rb {
			t.Errorf("%s: reports differ: %s", d, firstDifference(ra, rb))
		}
		var ma, mb struct{ Files []report.OutputFile }
		ba, _ := os.ReadFile(filepath.Join(a, "_manifest.json"))
		bb, _ := os.ReadFile(filepath.Join(b, "_manifest.json"))
		json.Unmarshal(ba, &ma)
		json.Unmarshal(bb, &mb)
		ja, _ := json.Marshal(ma.Files)
		jb, _ := json.Marshal(mb.Files)
		if len(ma.Files) == 0 || string(ja) != string(jb) {
			t.Errorf("%s: manifest files differ: %s", d, firstDifference(string(ja), string(jb)))
		}
	}
	// the research report says what min_k removed, and it is not nothing
	var rep report.Run
	rb, _ := os.ReadFile(onlyReport(t, filepath.Join(out, "research")))
	if err := json.Unmarshal(rb, &rep); err != nil {
		t.Fatal(err)
	}
	var research *report.Destination
	for _, d := range rep.Destinations {
		if d.Name == "research" {
			research = d
		}
	}
	if research == nil || research.Removed["small_class"] == 0 {
		t.Fatalf("research removed no rows in small classes: %+v", research)
	}
	// the device classes span the shards' files: some class kept has fewer
	// than min_k rows in one file (kept only thanks to the other shard's
	// counts), and every class has at least min_k rows over both
	qis := []string{"device_model", "os_version"}
	files, _ := filepath.Glob(filepath.Join(out, "research", "device", "*", "*.parquet"))
	if len(files) != 2 {
		t.Fatalf("research device files: %v, want 2", files)
	}
	total := map[string]int64{}
	spanning := 0
	for _, f := range files {
		for k, n := range classSizes(t, f, qis) {
			total[k] += n
			if n < minK {
				spanning++
			}
		}
	}
	for k, n := range total {
		if n < minK {
			t.Errorf("class %s has %d rows, below min_k %d", k, n, minK)
		}
	}
	if spanning == 0 {
		t.Errorf("no device class is below min_k in one shard's file: the test does not exercise the exchange of counts")
	}
	t.Logf("research: %d rows removed in small classes, %d device classes, %d of them below min_k in one file", research.Removed["small_class"], len(total), spanning)
	for _, d := range destinations {
		if _, err := os.Stat(filepath.Join(out, d, ".deid-shards", "sim")); !os.IsNotExist(err) {
			t.Errorf("%s: shards folder left after the merge: %v", d, err)
		}
	}
}

// TestShardedMinKMissingShard: when a shard of a run enforcing min_k never
// starts, the others give up after --shard-wait with an error naming the
// missing shard, publish nothing and leave the run uncommitted.
func TestShardedMinKMissingShard(t *testing.T) {
	dir := sampleWorkdir(t)
	policy := shardedMinKPolicy(t, dir)
	results := runShards(t, dir, policy, []int{0, 2}, 3, "--shard-wait", "2s")
	for i, res := range results {
		if res.code == 0 || !strings.Contains(res.stderr, "shard(s) 1 of 3 have not written their class counts") ||
			!strings.Contains(res.stderr, "must run at the same time") {
			t.Errorf("shard %d: exit %d, want an error naming shard 1:\n%s", []int{0, 2}[i], res.code, res.stderr)
		}
	}
	out := filepath.Join(dir, "out", "example")
	for _, d := range destinations {
		if m, _ := filepath.Glob(filepath.Join(out, d, "*", "*", "*.parquet")); len(m) > 0 {
			t.Errorf("%s: published %v", d, m)
		}
		if m, _ := filepath.Glob(filepath.Join(out, d, "*", "*.parquet")); len(m) > 0 {
			t.Errorf("%s: published %v", d, m)
		}
		if _, err := os.Stat(filepath.Join(out, d, "_manifest.json")); err == nil {
			t.Errorf("%s committed", d)
		}
		if m, _ := filepath.Glob(filepath.Join(out, d, ".deid-shards", "sim", "shard-*.json")); len(m) > 0 {
			t.Errorf("%s: shard reports %v of failed shards", d, m)
		}
	}
	if res := runDeid(t, dir, nil, "report", "merge", "-c", policy, "--run-id", "sim", "--shards", "3"); res.code == 0 {
		t.Errorf("the merge of a failed run committed:\n%s", res.stdout)
	}
}
