package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// overlapLayout is one policy whose locations overlap, on a copy of the
// sample lake: edits of the reference sample policy, links made before
// deid runs, and the destination whose output is refused.
type overlapLayout struct {
	name   string
	source string            // the browsing dataset's source
	list   string            // the erasure list (copied there from the sample's)
	key    string            // the sample key's file (copied there from the sample's)
	audit  string            // when set, an audit key's file (written there)
	output string            // destination sample's output
	second string            // when set, a second destination's output
	links  map[string]string // link name -> target, made in the work folder
	refuse string            // destination refused: "sample" or "second"
	want   []string          // in the message
}

// TestOverlappingLocationsRefused reproduces issue 14 item 1: validate,
// plan and run refuse a policy whose output holds, is or lies in a source,
// a list or another output, as a policy error (exit 2) positioned on the
// output's value, and leave every file as it was.
func TestOverlappingLocationsRefused(t *testing.T) {
	layouts := []overlapLayout{
		{name: "output holds the source folder (reported)", source: "lake/t/*.parquet", output: "lake",
			refuse: "sample", want: []string{"contains the source folder", "datasets.browsing.source"}},
		{name: "globstar source re-reads the outputs (reported)", source: "lake/**/*.parquet", output: "lake/pub",
			refuse: "sample", want: []string{"lies inside the source folder", "datasets.browsing.source"}},
		{name: "output is the source folder", source: "lake/t/*.parquet", output: "lake/./t/",
			refuse: "sample", want: []string{"is the source folder"}},
		{name: "output is the source folder through a link", source: "lake/t/*.parquet", output: "pub",
			links: map[string]string{"pub": "lake/t"}, refuse: "sample", want: []string{"is the source folder", "once links are resolved"}},
		{name: "output inside the lake through a relative link", source: "lake/t/*.parquet", output: "up/lake/t/pub",
			links: map[string]string{"up": "../" + "WORK"}, refuse: "sample", want: []string{"lies inside the source folder", "once links are resolved"}},
		{name: "output holds the erasure list", source: "lake/t/*.parquet", list: "lists/erasure.parquet", output: "lists",
			refuse: "sample", want: []string{"contains the erasure list", "datasets.browsing.erasure[0].list"}},
		{name: "two outputs, one folder through a link (reported)", source: "lake/t/*.parquet", output: "out/A", second: "out/B",
			links: map[string]string{"out/B": "A"}, refuse: "second", want: []string{`is the output`, "destinations.sample.output", "once links are resolved"}},
		{name: "output nested in another's (reported)", source: "lake/t/*.parquet", output: "out/A", second: "out/A/sub",
			refuse: "second", want: []string{"lies inside the output", "destinations.sample.output"}},
		{name: "output holding another's", source: "lake/t/*.parquet", output: "out/A/sub", second: "out//A/",
			refuse: "second", want: []string{"contains the output", "destinations.sample.output"}},
		// refused when the policy loads, before any bucket is reached
		{name: "gs: output holds the source folder", source: "gs://lake/t/*.parquet", output: "gs://lake/",
			refuse: "sample", want: []string{`output "gs://lake/" contains the source folder "gs://lake/t"`}},
		{name: "gs: output inside the source folder", source: "gs://lake/**/*.parquet", output: "gs://lake//pub",
			refuse: "sample", want: []string{"lies inside the source folder"}},
		{name: "gs: two outputs, one prefix", source: "lake/t/*.parquet", output: "gs://pub/a", second: "gs://pub/a/",
			refuse: "second", want: []string{"is the output"}},
		// key files and the policy file are protected too: an output holding
		// one would publish it with the data
		{name: "output holds the key file (reported)", source: "lake/t/*.parquet", key: "lake/keys/training.key", output: "lake/keys",
			refuse: "sample", want: []string{`contains the key file "` + "WORK" + `/lake/keys/training.key" (keys.sample)`, "keep key files outside every output"}},
		{name: "output holds the audit key file (reported)", source: "lake/t/*.parquet", key: "lake/keys/training.key", audit: "lake/keys/audit2.key", output: "lake/keys",
			refuse: "sample", want: []string{"contains the key file", `contains the audit key file "` + "WORK" + `/lake/keys/audit2.key" (audit_key)`}},
		{name: "key file is a link into the output", source: "lake/t/*.parquet", key: "training.key", output: "out/A",
			links: map[string]string{"training.key": "out/A/training.key"}, refuse: "sample", want: []string{"contains the key file", "(keys.sample)", "once links are resolved"}},
		{name: "output holds the policy file", source: "lake/t/*.parquet", output: ".",
			refuse: "sample", want: []string{`contains the policy file "` + "WORK" + `/overlap.yaml"`}},
	}
	commands := [][]string{
		{"validate"},
		{"validate", "--no-sources"},
		{"plan", "--now", sampleNow},
		{"run", "--now", sampleNow},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			dir, policy, line := overlapWorkdir(t, l)
			before := treeState(t, dir)
			for _, args := range commands {
				res := runDeid(t, dir, nil, append(args, "-c", policy)...)
				pos := fmt.Sprintf("%s:%d:13: destinations.%s.output: output ", policy, line, l.refuse)
				if res.code != 2 || !strings.Contains(res.stderr, pos) {
					t.Errorf("%v: exit %d, want 2 and %q\nstdout: %s\nstderr: %s", args, res.code, pos, res.stdout, res.stderr)
				}
				for _, w := range l.want {
					if w = strings.ReplaceAll(w, "WORK", dir); !strings.Contains(res.stderr, w) {
						t.Errorf("%v: stderr lacks %q:\n%s", args, w, res.stderr)
					}
				}
			}
			after := treeState(t, dir)
			for p, h := range before {
				if after[p] != h {
					t.Errorf("%s changed: %q -> %q", p, h, after[p])
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

// TestApartLocationsRun: the same lake with the output beside it runs, and
// its second run reads what the first read (the outputs are not sources).
func TestApartLocationsRun(t *testing.T) {
	l := overlapLayout{source: "lake/**/*.parquet", output: "published/sample"}
	dir, policy, _ := overlapWorkdir(t, l)
	lake := treeState(t, filepath.Join(dir, "lake"))
	for i := range 2 {
		res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow)
		if res.code != 0 {
			t.Fatalf("run %d: exit %d\n%s%s", i, res.code, res.stdout, res.stderr)
		}
	}
	if after := treeState(t, filepath.Join(dir, "lake")); fmt.Sprint(after) != fmt.Sprint(lake) {
		t.Errorf("the lake changed:\n%v\n%v", lake, after)
	}
	var outputs []string
	filepath.WalkDir(filepath.Join(dir, "published"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			outputs = append(outputs, p)
		}
		return err
	})
	if len(outputs) != 1 {
		t.Errorf("outputs %q, want the one input's", outputs)
	}
}

// overlapWorkdir lays out the sample lake for l and writes its policy;
// it returns the work folder, the policy's path and the line of the
// refused destination's output.
func overlapWorkdir(t *testing.T, l overlapLayout) (dir, policy string, line int) {
	t.Helper()
	dir = sampleWorkdir(t)
	part := filepath.Join(dir, "testdata", "sample", "browsing", "dt=2026-10-30")
	entries, err := os.ReadDir(part)
	if err != nil || len(entries) == 0 {
		t.Fatalf("sample partition: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(part, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "lake", "t"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "lake", "t", "part-0.parquet"), b, 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "out", "A"), 0o755))
	for name, target := range l.links {
		if strings.HasPrefix(target, "../WORK") {
			target = "../" + filepath.Base(dir)
		}
		must(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	text := referenceSample(t)
	text = strings.Replace(text, "testdata/sample/browsing/dt=*/*.parquet", l.source, 1)
	if l.list != "" {
		list, err := os.ReadFile(filepath.Join(dir, "testdata", "sample", "erasure.parquet"))
		must(t, err)
		must(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(l.list)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, l.list), list, 0o644))
		text = strings.Replace(text, "list: testdata/sample/erasure.parquet", "list: "+l.list, 1)
	}
	if l.key != "" {
		key, err := os.ReadFile(filepath.Join(dir, "testdata", "sample", "sample-only.key"))
		must(t, err)
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, l.key)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, l.key), key, 0o600))
		text = strings.Replace(text, "ref: hex:file:testdata/sample/sample-only.key", "ref: hex:file:"+l.key, 1)
	}
	if l.audit != "" {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, l.audit)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, l.audit), []byte(strings.Repeat("6b", 32)+"\n"), 0o600))
		text = strings.Replace(text, "\ndatasets:\n", "\naudit_key: hex:file:"+l.audit+"\n\ndatasets:\n", 1)
	}
	i := strings.Index(text, "  sample:\n    purpose:")
	if i < 0 {
		t.Fatal("the reference sample policy has no destination sample")
	}
	dst := text[i:]
	text = strings.Replace(text, "output: out/sample", "output: "+l.output, 1)
	if l.second != "" {
		second := strings.Replace(strings.Replace(dst, "  sample:", "  second:", 1), "output: out/sample", "output: "+l.second, 1)
		second = strings.Replace(second, "key: sample", "key: second", 1)
		text = strings.Replace(strings.TrimRight(text, "\n")+"\n"+second, "\nkeys:\n", "\nkeys:\n  second: hex:file:second.key\n", 1)
		must(t, os.WriteFile(filepath.Join(dir, "second.key"), []byte(strings.Repeat("5a", 32)+"\n"), 0o600))
	}
	refused := "  " + l.refuse + ":\n"
	if j := strings.Index(text, refused); j >= 0 {
		k := j + strings.Index(text[j:], "    output: ")
		line = strings.Count(text[:k], "\n") + 1
	}
	policy = filepath.Join(dir, "overlap.yaml")
	must(t, os.WriteFile(policy, []byte(text), 0o644))
	return dir, policy, line
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestOverlapRefusedByEveryCommand: every command that loads a policy
// refuses one whose output overlaps a source, lexically or through a link,
// before it touches anything.
func TestOverlapRefusedByEveryCommand(t *testing.T) {
	layouts := []overlapLayout{
		{name: "lexical", source: "lake/t/*.parquet", output: "lake", refuse: "sample"},
		{name: "through a link", source: "lake/t/*.parquet", output: "pub", links: map[string]string{"pub": "lake/t"}, refuse: "sample"},
		// verify must not report 0 findings on an output that holds the key
		{name: "key file in the output", source: "lake/t/*.parquet", key: "out/A/keys/training.key", output: "out/A", refuse: "sample"},
	}
	commands := [][]string{
		{"retain", "--now", sampleNow},
		{"retain", "--dry-run", "--now", sampleNow},
		{"verify"},
		{"serve", "--addr", "127.0.0.1:0"},
		{"report", "check", "out/A"},
		{"report", "public-key"},
		{"report", "merge", "--run-id", "r1", "--shards", "2"},
		{"run", "--shard", "0/2", "--run-id", "r1", "--now", sampleNow},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			dir, policy, line := overlapWorkdir(t, l)
			before := treeState(t, dir)
			for _, args := range commands {
				res := runDeid(t, dir, nil, append(args, "-c", policy)...)
				pos := fmt.Sprintf("%s:%d:13: destinations.sample.output: output ", policy, line)
				if res.code != 2 || !strings.Contains(res.stderr, pos) {
					t.Errorf("%v: exit %d, want 2 and %q\nstdout: %s\nstderr: %s", args, res.code, pos, res.stdout, res.stderr)
				}
			}
			if after := treeState(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("files changed:\n%v\n%v", before, after)
			}
		})
	}
}
