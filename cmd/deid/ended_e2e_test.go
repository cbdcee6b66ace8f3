package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Service shutdown (issue 15; promise 7 of the seeds' reading aid: when a
// product or service stops operating, its personal information is deleted
// or anonymized). A dataset declared ended (ended_at) loses every row in
// the lake, and every published file of it, and the retain report names
// the recipients that had received it; later runs publish none of it and
// nothing fails for its emptied source.

// endedReport is what the test reads of a retain report.
type endedReport struct {
	Datasets []endedDataset `json:"datasets"`
}

// endedDataset is what the test reads of a retain report's dataset.
type endedDataset struct {
	Name     string           `json:"name"`
	RowsIn   int64            `json:"rows_in"`
	RowsKept int64            `json:"rows_kept"`
	Removed  map[string]int64 `json:"removed"`
	Held     map[string]int64 `json:"held"`
	Ended    *struct {
		Stated     string `json:"stated"`
		Recipients []struct {
			Destination string `json:"destination"`
			Files       int64  `json:"files"`
			Rows        int64  `json:"rows"`
		} `json:"recipients"`
	} `json:"ended"`
}

// manifestDatasetFiles returns, per destination of the example, the
// published files of dataset ds and their rows.
func manifestDatasetFiles(t *testing.T, dir, ds string) (files map[string][]string, rows map[string]int64) {
	t.Helper()
	files, rows = map[string][]string{}, map[string]int64{}
	outs, _ := filepath.Glob(filepath.Join(dir, "out", "example", "*"))
	for _, out := range outs {
		b, err := os.ReadFile(filepath.Join(out, "_manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Files []struct {
				Path    string `json:"path"`
				Dataset string `json:"dataset"`
				Rows    int64  `json:"rows"`
			} `json:"files"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, f := range m.Files {
			if f.Dataset == ds {
				files[filepath.Base(out)] = append(files[filepath.Base(out)], filepath.Join(out, f.Path))
				rows[filepath.Base(out)] += f.Rows
			}
		}
	}
	return files, rows
}

func endPolicy(t *testing.T, dir, dataset, at string) {
	t.Helper()
	p := filepath.Join(dir, "deploy", "examples", "policy.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	head := "  " + dataset + ":"
	i := strings.Index(string(b), head)
	j := strings.Index(string(b)[i:], "\n    source:")
	if i < 0 || j < 0 {
		t.Fatalf("no dataset %s in the example policy", dataset)
	}
	k := i + j + 1
	s := string(b[:k]) + "    ended_at: " + at + "\n" + string(b[k:])
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestServiceEndedRemovesDataset(t *testing.T) {
	dir := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	if res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	published, publishedRows := manifestDatasetFiles(t, dir, "device")
	if len(published) < 2 {
		t.Fatalf("device reaches %d destinations: the test proves little", len(published))
	}
	endPolicy(t, dir, "device", "2026-10-15")
	// validate warns before any run
	if res := runDeid(t, dir, nil, "validate", "-c", policy, "--no-sources"); res.code != 0 ||
		!strings.Contains(res.stdout, `warning: dataset "device": its service ended`) {
		t.Errorf("validate of a policy with an ended dataset: exit %d, no warning:\n%s%s", res.code, res.stdout, res.stderr)
	}

	// a dry run (on a copy) predicts it; the run does it
	_, dryRaw := retainJSONRaw(t, copyDir(t, dir), "--dry-run")
	signed := filepath.Join(t.TempDir(), "retain.json")
	_, raw := retainJSONRaw(t, dir, "--report", signed)
	// the signed report checks, and its page names the recipients
	page := filepath.Join(t.TempDir(), "retain.html")
	if res := runDeid(t, dir, nil, "report", "check", signed, "-c", policy); res.code != 0 {
		t.Errorf("report check of the retain report: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := runDeid(t, dir, nil, "report", "render", signed, "-o", page); res.code != 0 {
		t.Fatalf("report render: exit %d\n%s", res.code, res.stderr)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for d := range published {
		if !strings.Contains(string(html), "<tr><td>"+d+"</td>") || !strings.Contains(string(html), "tell them to delete their copies") {
			t.Errorf("the retain page does not name recipient %s", d)
		}
	}
	for name, r := range map[string][]byte{"retain --dry-run": dryRaw, "retain": raw} {
		wantNoNegative(t, name, r)
		var rep endedReport
		if err := json.Unmarshal(r, &rep); err != nil {
			t.Fatal(err)
		}
		var dev *endedDataset
		for i := range rep.Datasets {
			if rep.Datasets[i].Name == "device" {
				dev = &rep.Datasets[i]
			}
		}
		if dev == nil || dev.Ended == nil || dev.Ended.Stated != "2026-10-15" {
			t.Fatalf("%s: no ended device dataset in the report:\n%s", name, r)
		}
		if dev.RowsKept != dev.Held["legal_hold"]+dev.Held["restricted: legal minimum"] || dev.Removed["service_ended"] == 0 {
			t.Errorf("%s: device rows %d in, %d kept (held %v), removed %v: want every row gone but the held", name, dev.RowsIn, dev.RowsKept, dev.Held, dev.Removed)
		}
		var got []string
		for _, r := range dev.Ended.Recipients {
			got = append(got, r.Destination)
			if r.Files != int64(len(published[r.Destination])) || r.Rows != publishedRows[r.Destination] {
				t.Errorf("%s: recipient %s: %d files, %d rows; it had %d files, %d rows", name, r.Destination, r.Files, r.Rows, len(published[r.Destination]), publishedRows[r.Destination])
			}
		}
		var want []string
		for d := range published {
			want = append(want, d)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: recipients %v, want the destinations that had received device: %v", name, got, want)
		}
	}
	// the lake holds no device row but the held ones, the outputs none
	if left, _ := manifestDatasetFiles(t, dir, "device"); len(left) > 0 {
		t.Errorf("manifests still list device files: %v", left)
	}
	for _, fs := range published {
		for _, f := range fs {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("%s is still there", f)
			}
		}
	}
	checkAll(t, dir, policy, "after retain")

	// later runs publish none of it and do not fail on its emptied source
	res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow, "--progress", "never")
	if res.code != 0 || !strings.Contains(res.stdout, `dataset "device": its service ended`) {
		t.Fatalf("run after the end: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if left, _ := manifestDatasetFiles(t, dir, "device"); len(left) > 0 {
		t.Errorf("a run after the end published device files: %v", left)
	}
	checkAll(t, dir, policy, "run after the end")
	res = runDeid(t, dir, nil, "retain", "-c", policy, "--now", sampleNow)
	if res.code != 0 || !strings.Contains(res.stdout, "recipients: no published file of it remained") {
		t.Errorf("retain again: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	checkAll(t, dir, policy, "retain again")

	// service takes its subjects' ages from orders: once orders ended no
	// age can be told, and doubt protects the child in every destination
	endPolicy(t, dir, "orders", "2026-10-20")
	res = runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow, "--progress", "never")
	if res.code != 0 || !strings.Contains(res.stdout, `takes ages from dataset "orders", whose service ended`) || strings.Contains(res.stdout, "kept with unknown age") {
		t.Errorf("run after orders ended: exit %d, want the warning and no row kept of unknown age\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}

// retainJSONRaw runs deid retain --json on the example policy and returns
// its stdout.
func retainJSONRaw(t *testing.T, dir string, extra ...string) (int, []byte) {
	t.Helper()
	args := append([]string{"retain", "-c", filepath.Join("deploy", "examples", "policy.yaml"), "--now", sampleNow, "--json"}, extra...)
	res := runDeid(t, dir, nil, args...)
	if res.code != 0 {
		t.Fatalf("deid %v: exit %d\n%s", args, res.code, res.stderr)
	}
	return res.code, []byte(res.stdout)
}
