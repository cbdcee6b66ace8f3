package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// deid's own state files are read, never trusted (G1): a retain journal
// planted in an output or a dataset root, or a manifest or shard report
// naming a path outside its output, is refused as a data error (exit 3)
// before anything is moved or deleted.

var (
	stateRun    = []string{"run", "-c", "deploy/examples/policy.yaml", "--now", sampleNow}
	stateRetain = []string{"retain", "-c", "deploy/examples/policy.yaml", "--now", sampleNow}
)

// stateWorkdir is linksWorkdir after one run and one retain (so that a
// further retain at the same instant changes no lake file), with a victim
// file outside lake and outputs.
func stateWorkdir(t *testing.T) (dir, victim string) {
	t.Helper()
	dir = linksWorkdir(t)
	for _, args := range [][]string{stateRun, stateRetain} {
		if res := runDeid(t, dir, nil, args...); res.code != 0 {
			t.Fatalf("deid %s: exit %d\n%s", args[0], res.code, res.stderr)
		}
	}
	victim = filepath.Join(dir, "victim", "data.parquet")
	if err := os.MkdirAll(filepath.Dir(victim), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, []byte("the victim's bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, victim
}

// wantRefused checks exit 3 with stderr naming each of names, and that the
// lake and the victim's folder are as they were.
func wantRefused(t *testing.T, res deidResult, dir string, before map[string]string, names ...string) {
	t.Helper()
	if res.code != exitData {
		t.Fatalf("exit %d, want %d (a data error); stderr:\n%s", res.code, exitData, res.stderr)
	}
	for _, n := range names {
		if !strings.Contains(res.stderr, n) {
			t.Errorf("stderr does not name %s:\n%s", n, res.stderr)
		}
	}
	if after := lakeAndVictim(t, dir); !reflect.DeepEqual(before, after) {
		t.Errorf("the lake or the victim changed:\nbefore %v\nafter  %v", before, after)
	}
}

func lakeAndVictim(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sub := range []string{"testdata/lake", "victim"} {
		for k, v := range treeState(t, filepath.Join(dir, sub)) {
			if !strings.Contains(k, ".deid-retain") { // the planted journal's folder
				out[sub+"/"+k] = v
			}
		}
	}
	return out
}

// TestRetainRefusesPlantedJournal: the red team's journal, planted in an
// output or a dataset root, would move attacker bytes over a lake file and
// delete a file anywhere; retain refuses it whole, naming the journal and
// the path, and neither the lake nor the victim changes.
func TestRetainRefusesPlantedJournal(t *testing.T) {
	cases := []struct {
		name    string
		root    string // where the journal is planted, relative to the work folder
		dataset string
		actions func(dir, victim string) []map[string]any
		names   []string // what stderr must name, besides the journal (VICTIM: the victim file)
	}{
		{"output: lake overwritten, victim deleted", "out/example/partner_ads", "", func(dir, victim string) []map[string]any {
			return []map[string]any{
				{"file": filepath.Join(dir, "testdata/lake/orders/orders.parquet"), "staged": filepath.Join(dir, "out/example/partner_ads/evil.parquet")},
				{"file": victim, "delete": true}}
		}, []string{"orders.parquet"}},
		{"output: only the victim, right dataset", "out/example/partner_ads", "destination partner_ads", func(dir, victim string) []map[string]any {
			return []map[string]any{{"file": "out/example/partner_ads/../../../victim/data.parquet", "delete": true}}
		}, []string{"victim/data.parquet"}},
		{"output: one good action, then one bad", "out/example/partner_ads", "destination partner_ads", func(dir, victim string) []map[string]any {
			return []map[string]any{
				{"file": "out/example/partner_ads/orders/orders.parquet", "delete": true},
				{"file": victim, "delete": true}}
		}, []string{"VICTIM"}},
		{"dataset root: victim deleted", "testdata/lake/orders", "orders", func(dir, victim string) []map[string]any {
			return []map[string]any{{"file": victim, "delete": true}}
		}, []string{"VICTIM"}},
		{"dataset root: consent list deleted", "testdata/lake/orders", "orders", func(dir, victim string) []map[string]any {
			return []map[string]any{{"file": "testdata/lake/orders/../consent.csv", "delete": true}}
		}, []string{"consent.csv"}},
		{"dataset root: staged from outside", "testdata/lake/orders", "orders", func(dir, victim string) []map[string]any {
			return []map[string]any{{"file": "testdata/lake/orders/orders.parquet", "staged": victim}}
		}, []string{"VICTIM"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, victim := stateWorkdir(t)
			if err := os.WriteFile(filepath.Join(dir, "out/example/partner_ads/evil.parquet"), []byte("attacker bytes"), 0o644); err != nil {
				t.Fatal(err)
			}
			journal := filepath.Join(dir, c.root, ".deid-retain", "journal.json")
			b, _ := json.Marshal(map[string]any{"format": "deid-retain-journal/v2", "run_id": "x", "dataset": c.dataset, "actions": c.actions(dir, victim)})
			if err := os.MkdirAll(filepath.Dir(journal), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(journal, b, 0o644); err != nil {
				t.Fatal(err)
			}
			before := lakeAndVictim(t, dir)
			outBefore := treeState(t, filepath.Join(dir, "out"))
			res := runDeid(t, dir, nil, stateRetain...)
			names := []string{filepath.Join(c.root, ".deid-retain", "journal.json"), "not replayed"}
			for _, n := range c.names {
				names = append(names, strings.ReplaceAll(n, "VICTIM", victim))
			}
			wantRefused(t, res, dir, before, names...)
			if after := treeState(t, filepath.Join(dir, "out")); !reflect.DeepEqual(outBefore, after) {
				t.Errorf("the outputs changed")
			}
			if _, err := os.Stat(journal); err != nil {
				t.Errorf("the refused journal was removed: %v", err)
			}
		})
	}
}

// editJSON rewrites the JSON file at path with edit.
func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRetainRefusesManifestPathOutsideOutput: a manifest entry whose path
// leaves the output made retain delete that file; now retain refuses the
// manifest (exit 3, naming it) and report check flags it (exit 4).
func TestRetainRefusesManifestPathOutsideOutput(t *testing.T) {
	for _, p := range []string{"../../../victim/data.parquet", "../../../testdata/lake/consent.csv", "ABS", "orders/../../../../victim/data.parquet", "./orders/orders.parquet"} {
		t.Run(p, func(t *testing.T) {
			dir, victim := stateWorkdir(t)
			if p == "ABS" {
				p = victim
			}
			manifest := filepath.Join("out/example/partner_ads", "_manifest.json")
			editJSON(t, filepath.Join(dir, manifest), func(m map[string]any) {
				m["files"].([]any)[0].(map[string]any)["path"] = p
			})
			before := lakeAndVictim(t, dir)
			wantRefused(t, runDeid(t, dir, nil, stateRetain...), dir, before, manifest, "files[0]")
			res := runDeid(t, dir, nil, "report", "check", "out/example/partner_ads", "-c", "deploy/examples/policy.yaml")
			if res.code != exitCheck || !strings.Contains(res.stdout, "MISMATCH "+manifest) {
				t.Errorf("report check: exit %d, want %d naming the manifest\n%s%s", res.code, exitCheck, res.stdout, res.stderr)
			}
		})
	}
}

// TestReportMergeRefusesForgedShardPath: a shard report naming a path
// outside its output is not merged into any manifest or signed report; a
// --run-id that is not one folder name is a usage error.
func TestReportMergeRefusesForgedShardPath(t *testing.T) {
	dir := linksWorkdir(t)
	for i := range 2 {
		args := append(append([]string(nil), stateRun...), "--shard", []string{"0/2", "1/2"}[i], "--run-id", "r1")
		if res := runDeid(t, dir, nil, args...); res.code != 0 {
			t.Fatalf("shard %d: exit %d\n%s", i, res.code, res.stderr)
		}
	}
	merge := []string{"report", "merge", "-c", "deploy/examples/policy.yaml", "--shards", "2", "--run-id"}
	for _, id := range []string{"../r1", "r1/..", "..", "a b"} {
		if res := runDeid(t, dir, nil, append(merge, id)...); res.code != exitPolicy || !strings.Contains(res.stderr, "--run-id") {
			t.Errorf("--run-id %q: exit %d, want %d\n%s", id, res.code, exitPolicy, res.stderr)
		}
	}
	shard := filepath.Join("out/example/partner_ads/.deid-shards/r1/shard-1-of-2.json")
	editJSON(t, filepath.Join(dir, shard), func(m map[string]any) {
		f := m["destinations"].([]any)[0].(map[string]any)["files"].([]any)[0].(map[string]any)
		f["path"] = "../../../victim/data.parquet"
	})
	before := treeState(t, filepath.Join(dir, "out"))
	res := runDeid(t, dir, nil, append(merge, "r1")...)
	if res.code != exitData || !strings.Contains(res.stderr, shard) || !strings.Contains(res.stderr, "victim/data.parquet") {
		t.Fatalf("merge: exit %d, want %d naming the shard report and the path\n%s", res.code, exitData, res.stderr)
	}
	if after := treeState(t, filepath.Join(dir, "out")); !reflect.DeepEqual(before, after) {
		t.Errorf("the merge wrote to the outputs")
	}
}
