package rules

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// locPolicy is a policy whose locations a test sets.
type locPolicy struct {
	source, root            string
	erasure, consent, holds string
	key, auditKey           string   // key references: key training and the audit key
	outputs                 []string // destinations a, b, ...
	// filled by render: the text, and the line and column of each output
	text                    string
	outputLines, outputCols []int
}

func (l *locPolicy) render() string {
	var b strings.Builder
	b.WriteString("version: 1\nname: t\n")
	if l.key != "" {
		fmt.Fprintf(&b, "keys:\n  training: %s\n", l.key)
	}
	if l.auditKey != "" {
		fmt.Fprintf(&b, "audit_key: %s\n", l.auditKey)
	}
	fmt.Fprintf(&b, "datasets:\n  orders:\n    source: %s\n    subject: user_id\n", l.source)
	if l.root != "" {
		fmt.Fprintf(&b, "    root: %s\n", l.root)
	}
	b.WriteString("    columns:\n      user_id: account_id\n")
	if l.erasure != "" {
		fmt.Fprintf(&b, "    erasure: [{list: %s}]\n", l.erasure)
	}
	if l.consent != "" {
		fmt.Fprintf(&b, "    consent: [{list: %s}]\n", l.consent)
	}
	if l.holds != "" {
		fmt.Fprintf(&b, "    holds: [{list: %s}]\n", l.holds)
	}
	b.WriteString("destinations:\n")
	l.outputLines, l.outputCols = nil, nil
	for i, o := range l.outputs {
		fmt.Fprintf(&b, "  %c:\n    purpose: analytics\n", 'a'+i)
		l.outputLines = append(l.outputLines, strings.Count(b.String(), "\n")+1)
		l.outputCols = append(l.outputCols, len("    output: ")+1)
		fmt.Fprintf(&b, "    output: %s\n    datasets: {orders: {columns: {user_id: drop}}}\n", o)
	}
	l.text = b.String()
	return l.text
}

// locCase is one arrangement of locations and what the check must say.
type locCase struct {
	name string
	p    locPolicy
	// want is "" when the policy is accepted, else the destination whose
	// output is refused ("a", "b") and words the message must hold.
	dst  string
	want []string
}

// checkLocErr checks err against c: accepted, or one problem positioned on
// the refused destination's output value.
func checkLocErr(t *testing.T, c locCase, err error) {
	t.Helper()
	if c.dst == "" {
		if err != nil {
			t.Fatalf("refused:\n%s\n%v", c.p.text, err)
		}
		return
	}
	if !errors.Is(err, ErrPolicy) {
		t.Fatalf("accepted (or not a policy error: %v):\n%s", err, c.p.text)
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("%T: %v", err, err)
	}
	i := int(c.dst[0] - 'a')
	path := "destinations." + c.dst + ".output"
	var at []string
	for _, e := range list {
		if e.Path != path {
			continue
		}
		if e.Line != c.p.outputLines[i] || e.Column != c.p.outputCols[i] {
			t.Errorf("at %d:%d, want the output value at %d:%d: %v", e.Line, e.Column, c.p.outputLines[i], c.p.outputCols[i], e)
		}
		if containsAll(e.Msg, c.want) {
			return
		}
		at = append(at, e.Msg)
	}
	if len(at) > 0 {
		t.Fatalf("no problem at %s holds %q: %q", path, c.want, at)
	}
	t.Fatalf("no problem at %s: %v\n%s", path, err, c.p.text)
}

// TestLocationsLexical: outputs that are, contain or lie inside a folder
// deid reads, a file it reads, or another output are refused on their
// output: value, compared as text (cleaned, absolute, by bucket and prefix).
func TestLocationsLexical(t *testing.T) {
	src := "lake/t/*.parquet"
	one := func(out string) []string { return []string{out} }
	cases := []locCase{
		{"equal", locPolicy{source: src, outputs: one("lake/t")}, "a", []string{`output "/w/lake/t" is the source folder "/w/lake/t" (datasets.orders.source)`}},
		{"parent (the reported case)", locPolicy{source: src, outputs: one("lake")}, "a", []string{`contains the source folder "/w/lake/t"`, "datasets.orders.source"}},
		{"child", locPolicy{source: src, outputs: one("lake/t/pub")}, "a", []string{"lies inside the source folder"}},
		{"grandchild", locPolicy{source: src, outputs: one("lake/t/a/b")}, "a", []string{"lies inside the source folder"}},
		{"sibling with a common prefix", locPolicy{source: src, outputs: one("lake/tt")}, "", nil},
		{"sibling t2", locPolicy{source: src, outputs: one("lake/t2/x")}, "", nil},
		{"apart", locPolicy{source: src, outputs: one("out")}, "", nil},
		{"dot dot", locPolicy{source: src, outputs: one("lake/x/../t")}, "a", []string{"is the source folder"}},
		{"dot dot above the policy", locPolicy{source: src, outputs: one("../w/lake")}, "a", []string{"contains the source folder"}},
		{"dot", locPolicy{source: src, outputs: one("./lake/./t")}, "a", []string{"is the source folder"}},
		{"trailing slash", locPolicy{source: src, outputs: one("lake/t/")}, "a", []string{"is the source folder"}},
		{"double slash", locPolicy{source: src, outputs: one("lake//t")}, "a", []string{"is the source folder"}},
		{"absolute output, relative source", locPolicy{source: src, outputs: one("/w/lake/t")}, "a", []string{"is the source folder"}},
		{"absolute with dot dot", locPolicy{source: src, outputs: one("/w/x/../lake/t/")}, "a", []string{"is the source folder"}},
		{"absolute source, relative output", locPolicy{source: "/w/lake//t/*.parquet", outputs: one("lake")}, "a", []string{"contains the source folder"}},
		{"the whole disk", locPolicy{source: src, outputs: one("/")}, "a", []string{"contains the source folder"}},
		{"globstar re-reads outputs", locPolicy{source: "lake/**/*.parquet", outputs: one("lake/pub")}, "a", []string{`lies inside the source folder "/w/lake"`}},
		{"glob in the first segment", locPolicy{source: "dt=*/*.parquet", outputs: one("out")}, "a", []string{`lies inside the source folder "/w"`}},
		{"glob folder", locPolicy{source: "lake/dt=*/*.parquet", outputs: one("lake/dt=x")}, "a", []string{"lies inside the source folder"}},
		{"root", locPolicy{source: src, root: "lake", outputs: one("lake/pub")}, "a", []string{`lies inside the root "/w/lake" (datasets.orders.root)`}},
		{"root equal", locPolicy{source: src, root: "lake/", outputs: one("lake")}, "a", []string{"datasets.orders.root"}},
		{"source file: its folder", locPolicy{source: "lake/t/part-0.parquet", outputs: one("lake/t")}, "a", []string{`contains the source file "/w/lake/t/part-0.parquet"`}},
		{"source file: itself", locPolicy{source: "lake/t/part-0.parquet", outputs: one("lake/t/part-0.parquet")}, "a", []string{"is the source file"}},
		{"source file: beside it", locPolicy{source: "lake/t/part-0.parquet", outputs: one("lake/t/out")}, "", nil},
		{"erasure list folder", locPolicy{source: src, erasure: "lists/erase.csv", outputs: one("lists")}, "a", []string{`contains the erasure list "/w/lists/erase.csv" (datasets.orders.erasure[0].list)`}},
		{"erasure list itself", locPolicy{source: src, erasure: "lists/erase.csv", outputs: one("lists/erase.csv/")}, "a", []string{"is the erasure list"}},
		{"consent list folder", locPolicy{source: src, consent: "/w/lists/c.parquet", outputs: one("lists/")}, "a", []string{"contains the consent list", "datasets.orders.consent[0].list"}},
		{"hold list above", locPolicy{source: src, holds: "lists/x/h.csv", outputs: one("lists")}, "a", []string{"contains the hold list", "datasets.orders.holds[0].list"}},
		{"list beside the output", locPolicy{source: src, erasure: "erase.csv", consent: "c.csv", holds: "h.csv", outputs: one("out")}, "", nil},
		{"two outputs equal", locPolicy{source: src, outputs: []string{"out/a", "out/a/"}}, "b", []string{`is the output "/w/out/a" (destinations.a.output)`, "each destination needs a folder of its own"}},
		{"output inside another", locPolicy{source: src, outputs: []string{"out/a", "out/a/x"}}, "b", []string{"lies inside the output", "destinations.a.output"}},
		{"output containing another", locPolicy{source: src, outputs: []string{"out/a", "out"}}, "b", []string{"contains the output"}},
		{"outputs with a common prefix", locPolicy{source: src, outputs: []string{"out/a", "out/ab"}}, "", nil},
		{"outputs through dot dot", locPolicy{source: src, outputs: []string{"out/a", "out/b/../a"}}, "b", []string{"is the output"}},
		{"gs equal", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake/t")}, "a", []string{`is the source folder "gs://lake/t"`}},
		{"gs bucket", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake")}, "a", []string{"contains the source folder"}},
		{"gs bucket slash", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake/")}, "a", []string{"contains the source folder"}},
		{"gs child", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake/t/pub")}, "a", []string{"lies inside"}},
		{"gs trailing slash", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake/t/")}, "a", []string{"is the source folder"}},
		{"gs double slash", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake//t")}, "a", []string{"is the source folder"}},
		{"gs dot dot", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake/x/../t")}, "a", []string{"is the source folder"}},
		{"gs common prefix", locPolicy{source: "gs://b/a/*.parquet", outputs: one("gs://b/ab")}, "", nil},
		{"gs other bucket", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://lake-out/t")}, "", nil},
		{"gs bucket case", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("gs://LAKE/t")}, "", nil},
		{"gs and local", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("/lake/t")}, "", nil},
		{"local and gs", locPolicy{source: "lake/t/*.parquet", outputs: one("gs://w/lake/t")}, "", nil},
		{"gs outputs", locPolicy{source: src, outputs: []string{"gs://b/a", "gs://b/a/"}}, "b", []string{"is the output"}},
		{"gs outputs nested", locPolicy{source: src, outputs: []string{"gs://b/a/x", "gs://b/a"}}, "b", []string{"contains the output"}},
		{"gs list", locPolicy{source: src, erasure: "gs://lists/e/erase.csv", outputs: one("gs://lists/e")}, "a", []string{"contains the erasure list"}},
		// key files and the policy file are protected as lists are
		{"key file in the output (reported)", locPolicy{source: src, key: "hex:file:lake/keys/training.key", outputs: one("lake/keys")}, "a",
			[]string{`output "/w/lake/keys" contains the key file "/w/lake/keys/training.key" (keys.training): an output is published`, "keep key files outside every output"}},
		{"key file deep in the output", locPolicy{source: src, key: "hex:file:out/a/keys/training.key", outputs: one("out")}, "a", []string{`contains the key file "/w/out/a/keys/training.key" (keys.training)`}},
		{"key file is the output", locPolicy{source: src, key: "base64:file:keys/training.key", outputs: one("keys/training.key/")}, "a", []string{"is the key file", "(keys.training)"}},
		{"output inside the key file's path", locPolicy{source: src, key: "hex:file:keys/training.key", outputs: one("keys/training.key/x")}, "a", []string{"lies inside the key file"}},
		{"absolute key file", locPolicy{source: src, key: "hex:file:/w/secrets/training.key", outputs: one("secrets")}, "a", []string{`contains the key file "/w/secrets/training.key"`}},
		{"key file through dot dot", locPolicy{source: src, key: "hex:file:x/../keys/training.key", outputs: one("keys")}, "a", []string{`contains the key file "/w/keys/training.key"`}},
		{"key map form", locPolicy{source: src, key: "{ref: hex:file:keys/training.key, allow: public sample}", outputs: one("keys")}, "a", []string{"contains the key file", "(keys.training)"}},
		{"audit key file in the output (reported)", locPolicy{source: src, key: "hex:env:DEID_KEY", auditKey: "hex:file:lake/keys/audit2.key", outputs: one("lake/keys")}, "a",
			[]string{`contains the audit key file "/w/lake/keys/audit2.key" (audit_key)`, "keep key files outside every output"}},
		{"audit key file is the output", locPolicy{source: src, auditKey: "hex:file:audit.key", outputs: one("audit.key")}, "a", []string{"is the audit key file", "(audit_key)"}},
		{"the policy file in the output", locPolicy{source: "gs://lake/t/*.parquet", outputs: one(".")}, "a",
			[]string{`output "/w" contains the policy file "/w/p.yaml": a run would publish the policy`}},
		{"the policy file is the output", locPolicy{source: src, outputs: one("/w/p.yaml")}, "a", []string{`is the policy file "/w/p.yaml"`}},
		{"the policy file above the output's parent", locPolicy{source: "gs://lake/t/*.parquet", outputs: one("/")}, "a", []string{"contains the policy file"}},
		{"key folder beside the output", locPolicy{source: src, key: "hex:file:keys/training.key", auditKey: "hex:file:keys/audit.key", outputs: one("out")}, "", nil},
		{"output in the key folder, beside the key", locPolicy{source: src, key: "hex:file:keys/training.key", outputs: one("keys/out")}, "", nil},
		{"key folder with a common prefix", locPolicy{source: src, key: "hex:file:keys/training.key", outputs: one("keys2")}, "", nil},
		{"env keys name no location", locPolicy{source: src, key: "hex:env:DEID_KEY", auditKey: "hex:env:DEID_AUDIT_KEY", outputs: one("DEID_KEY")}, "", nil},
		{"key file and a gs output", locPolicy{source: src, key: "hex:file:keys/training.key", outputs: one("gs://w/keys")}, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/w/p.yaml", []byte(c.p.render()), env(nil))
			checkLocErr(t, c, err)
		})
	}
}

// TestLocationsResolved: links on disk that make an output one with a
// folder or file deid reads, or with another output, are refused by Load.
func TestLocationsResolved(t *testing.T) {
	type link struct{ name, target string } // target "ABS/..." is made absolute in the test's folder
	src := "lake/t/*.parquet"
	one := func(out string) []string { return []string{out} }
	cases := []struct {
		locCase
		links []link
	}{
		{locCase{"output is a link to the source folder", locPolicy{source: src, outputs: one("pub")}, "a", []string{"is the source folder", "once links are resolved"}}, []link{{"pub", "lake/t"}}},
		{locCase{"output through a link to the lake", locPolicy{source: src, outputs: one("l/t/pub")}, "a", []string{"lies inside the source folder"}}, []link{{"l", "lake"}}},
		{locCase{"link chain", locPolicy{source: src, outputs: one("l1")}, "a", []string{"is the source folder"}}, []link{{"l1", "l2"}, {"l2", "l3"}, {"l3", "lake/t"}}},
		{locCase{"relative link with dot dot", locPolicy{source: src, outputs: one("x/up/t")}, "a", []string{"is the source folder"}}, []link{{"x/up", "../lake"}}},
		{locCase{"absolute link", locPolicy{source: src, outputs: one("abs/t")}, "a", []string{"is the source folder"}}, []link{{"abs", "ABS/lake"}}},
		// paths are cleaned as text before they reach the disk: deep/../t is t
		{locCase{"dot dot after a link", locPolicy{source: src, outputs: one("deep/../t")}, "", nil}, []link{{"deep", "lake/t"}}},
		{locCase{"link in the source", locPolicy{source: "l/t/*.parquet", outputs: one("lake")}, "a", []string{"contains the source folder"}}, []link{{"l", "lake"}}},
		{locCase{"dangling link into the lake", locPolicy{source: src, outputs: one("d")}, "a", []string{"lies inside the source folder"}}, []link{{"d", "lake/t/new"}}},
		{locCase{"two outputs, one folder", locPolicy{source: src, outputs: []string{"out/A", "out/B"}}, "b", []string{"is the output"}}, []link{{"out/B", "A"}}},
		{locCase{"output nested through a link", locPolicy{source: src, outputs: []string{"out/A", "out/B/x"}}, "b", []string{"lies inside the output"}}, []link{{"out/B", "A"}}},
		{locCase{"list folder through a link", locPolicy{source: src, erasure: "lists/e.csv", outputs: one("lk")}, "a", []string{"contains the erasure list"}}, []link{{"lk", "lists"}}},
		{locCase{"root through a link", locPolicy{source: src, root: "lake", outputs: one("r/pub")}, "a", []string{"lies inside the root"}}, []link{{"r", "lake"}}},
		{locCase{"link loop", locPolicy{source: src, outputs: one("loop1/x")}, "a", []string{"more than 255 links"}}, []link{{"loop1", "loop2"}, {"loop2", "loop1"}}},
		{locCase{"link elsewhere", locPolicy{source: src, outputs: one("o")}, "", nil}, []link{{"o", "elsewhere"}}},
		{locCase{"link to a sibling with a common prefix", locPolicy{source: src, outputs: one("o")}, "", nil}, []link{{"o", "lake/tt"}}},
		{locCase{"the lake is a link, the output apart", locPolicy{source: src, outputs: one("out")}, "", nil}, []link{{"lake", "elsewhere/lake"}}},
		{locCase{"key file is a link into the output", locPolicy{source: src, key: "hex:file:training.key", outputs: one("out/A")}, "a", []string{"contains the key file", "(keys.training)", "once links are resolved"}}, []link{{"training.key", "out/A/keys/training.key"}}},
		{locCase{"key folder is a link into the output", locPolicy{source: src, key: "hex:file:keys/training.key", outputs: one("out/A")}, "a", []string{"contains the key file", "once links are resolved"}}, []link{{"keys", "out/A/k"}}},
		{locCase{"output is a link to the key folder", locPolicy{source: src, key: "hex:file:lists/training.key", outputs: one("pub")}, "a", []string{"contains the key file", "once links are resolved"}}, []link{{"pub", "lists"}}},
		{locCase{"audit key is a link into the output", locPolicy{source: src, auditKey: "hex:file:audit.key", outputs: one("out/A")}, "a", []string{"contains the audit key file", "(audit_key)"}}, []link{{"audit.key", "ABS/out/A/audit.key"}}},
		{locCase{"policy file is a link into the output", locPolicy{source: src, outputs: one("out/A")}, "a", []string{"contains the policy file", "once links are resolved"}}, []link{{"p.yaml", "out/A/p.yaml"}}},
		{locCase{"key is a link elsewhere", locPolicy{source: src, key: "hex:file:training.key", auditKey: "hex:file:lists/audit.key", outputs: one("out/A")}, "", nil}, []link{{"training.key", "elsewhere/training.key"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"lake/t", "lake/tt", "lists", "elsewhere/lake/t", "out/A", "x"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, l := range c.links {
				name := filepath.Join(dir, l.name)
				if l.name == "lake" {
					if err := os.RemoveAll(name); err != nil {
						t.Fatal(err)
					}
				}
				target := strings.Replace(l.target, "ABS", dir, 1)
				if err := os.Symlink(target, name); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(dir, "p.yaml")
			if err := os.WriteFile(file, []byte(c.p.render()), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(file, []byte(c.p.text), env(nil)); err != nil {
				// links are invisible to the text: only Load sees them
				t.Fatalf("Parse refused it already: %v", err)
			}
			_, err := Load(file, env(nil))
			checkLocErr(t, c.locCase, err)
		})
	}
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// TestLocationsBindMount: one folder under two names that no link explains
// (a bind mount) is compared by identity. It mounts, so it runs only when
// DEID_TEST_BIND_MOUNT=1 (as root, with CAP_SYS_ADMIN).
func TestLocationsBindMount(t *testing.T) {
	if os.Getenv("DEID_TEST_BIND_MOUNT") != "1" {
		t.Skip("set DEID_TEST_BIND_MOUNT=1 to mount (root only)")
	}
	dir := t.TempDir()
	for _, d := range []string{"lake/t", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "--bind", filepath.Join(dir, "lake"), filepath.Join(dir, "mnt")).CombinedOutput(); err != nil {
		t.Skipf("mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", filepath.Join(dir, "mnt")).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	for _, c := range []locCase{
		{"output is the bound lake", locPolicy{source: "lake/t/*.parquet", outputs: []string{"mnt"}}, "a", []string{"contains the source folder", "on disk (one folder under two names"}},
		{"output inside the bound source folder", locPolicy{source: "lake/t/*.parquet", outputs: []string{"mnt/t/pub"}}, "a", []string{"lies inside the source folder"}},
		{"output is the bound source folder", locPolicy{source: "lake/t/*.parquet", outputs: []string{"mnt/t"}}, "a", []string{"is the source folder"}},
		{"output beside", locPolicy{source: "lake/t/*.parquet", outputs: []string{"mnt/tt"}}, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, "p.yaml")
			if err := os.WriteFile(file, []byte(c.p.render()), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(file, env(nil))
			checkLocErr(t, c, err)
		})
	}
}
