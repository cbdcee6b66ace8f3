package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// End-to-end tests of what the command line writes and how it names what
// it reads: a file named by retain --report or report render -o never
// lands on the lake, through a link, or over a Parquet file, and is written
// atomically; retain refuses a source matching no file as run does; a
// folder named as a source and a link to nothing in a source folder are
// data errors (exit 3); a file name with control characters is quoted in
// messages, so it cannot forge a line.

// outfilesCols classify the columns writeOutfilesLake writes.
var outfilesCols = [][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"phone", "phone"}}

// writeOutfilesLake writes lake/t/part-0.parquet and the policy in dir.
func writeOutfilesLake(t *testing.T, dir string) {
	t.Helper()
	writeInputFile(t, filepath.Join(dir, "lake", "t", "part-0.parquet"), 10, inputCol{"user_id", "int"}, inputCol{"at", "time"}, inputCol{"phone", "string"})
	os.WriteFile(filepath.Join(dir, "lake", "notes.txt"), []byte("the lake's own file\n"), 0o644)
	writeInputsPolicy(t, dir, "lake/t/*.parquet", outfilesCols, "")
}

// TestOutFilesRefused: retain --report (with --dry-run too) and report
// render -o refuse, before anything is written (exit 2), a target that is
// a symbolic link, not a regular file, a Parquet file, or, for retain, in a
// location the policy reads (a source folder, the policy file); the lake
// and the target stay as they were. A plain target is written, whole.
func TestOutFilesRefused(t *testing.T) {
	dir := t.TempDir()
	writeOutfilesLake(t, dir)
	if res := runDeid(t, dir, inputsEnv, "run", "-c", "policy.yaml", "--now", inputsNow); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "out", "_reports", "*", "report.json"))
	if len(reports) != 1 {
		t.Fatalf("reports %v, want one", reports)
	}
	report, _ := filepath.Rel(dir, reports[0])
	retain := func(target string) []string {
		return []string{"retain", "-c", "policy.yaml", "--now", inputsNow, "--dry-run", "--report", target}
	}
	render := func(target string) []string { return []string{"report", "render", report, "-o", target} }
	cases := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		args   []string
		target string
		want   string
	}{
		{name: "retain over a source file", args: retain("lake/t/part-0.parquet"), want: "the source folder"},
		{name: "retain into a source folder", args: retain("lake/t/report.json"), want: "the source folder"},
		{name: "retain over a source file, spelled another way", args: retain("./lake/../lake/t/part-0.parquet"), want: "the source folder"},
		{name: "retain into a folder linked to the source folder", setup: func(t *testing.T, dir string) {
			os.Symlink(filepath.Join(dir, "lake", "t"), filepath.Join(dir, "reports"))
		}, args: retain("reports/retain.json"), want: "the source folder"},
		{name: "retain over the policy", args: retain("policy.yaml"), want: "the policy file"},
		{name: "retain through a link to a source file", setup: func(t *testing.T, dir string) {
			os.Symlink(filepath.Join("lake", "t", "part-0.parquet"), filepath.Join(dir, "rep.json"))
		}, args: retain("rep.json"), target: "rep.json", want: "the source folder"},
		{name: "retain through a link to another file", setup: func(t *testing.T, dir string) {
			os.Symlink(filepath.Join("lake", "notes.txt"), filepath.Join(dir, "rep.json"))
		}, args: retain("rep.json"), target: "rep.json", want: "symbolic link"},
		{name: "retain over a folder", setup: func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "rep.json"), 0o755)
		}, args: retain("rep.json"), target: "rep.json", want: "not a regular file"},
		{name: "retain over a Parquet file outside the lake", setup: func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "lake", "t", "part-0.parquet"))
			os.WriteFile(filepath.Join(dir, "copy.parquet"), b, 0o644)
		}, args: retain("copy.parquet"), target: "copy.parquet", want: "Parquet file"},
		{name: "render over a source file", args: render("lake/t/part-0.parquet"), want: "Parquet file"},
		{name: "render through a link to a source file", setup: func(t *testing.T, dir string) {
			os.Symlink(filepath.Join("lake", "t", "part-0.parquet"), filepath.Join(dir, "page.html"))
		}, args: render("page.html"), target: "page.html", want: "symbolic link"},
		{name: "render through a link to nothing", setup: func(t *testing.T, dir string) {
			os.Symlink("nothing.html", filepath.Join(dir, "page.html"))
		}, args: render("page.html"), target: "page.html", want: "symbolic link"},
		{name: "render over a folder", setup: func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "page.html"), 0o755)
		}, args: render("page.html"), target: "page.html", want: "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "reports"))
			for _, n := range []string{"rep.json", "page.html", "copy.parquet"} {
				os.RemoveAll(filepath.Join(dir, n))
			}
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			lake := treeState(t, filepath.Join(dir, "lake"))
			policy, _ := os.ReadFile(filepath.Join(dir, "policy.yaml"))
			var target map[string]string
			if tc.target != "" {
				target = treeState(t, filepath.Join(dir, tc.target))
			}
			res := runDeid(t, dir, inputsEnv, tc.args...)
			if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, want 2 saying %q\nstdout: %s\nstderr: %s", res.code, tc.want, res.stdout, res.stderr)
			}
			if got := treeState(t, filepath.Join(dir, "lake")); fmt.Sprint(got) != fmt.Sprint(lake) {
				t.Errorf("the lake changed:\nbefore %v\nafter  %v", lake, got)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "policy.yaml")); string(got) != string(policy) {
				t.Errorf("the policy changed")
			}
			if tc.target != "" {
				if got := treeState(t, filepath.Join(dir, tc.target)); fmt.Sprint(got) != fmt.Sprint(target) {
					t.Errorf("the target changed:\nbefore %v\nafter  %v", target, got)
				}
			}
		})
	}
	t.Run("plain targets are written", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "rep.json"), []byte("an old report"), 0o644)
		if res := runDeid(t, dir, inputsEnv, retain("rep.json")...); res.code != 0 {
			t.Fatalf("retain: exit %d\n%s", res.code, res.stderr)
		}
		var v map[string]any
		if b, err := os.ReadFile(filepath.Join(dir, "rep.json")); err != nil || json.Unmarshal(b, &v) != nil {
			t.Errorf("rep.json is not the JSON report (%v): %.200s", err, b)
		}
		if res := runDeid(t, dir, inputsEnv, render(filepath.Join("pages", "page.html"))...); res.code != 0 {
			t.Fatalf("render: exit %d\n%s", res.code, res.stderr)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "pages", "page.html")); err != nil || !strings.Contains(string(b), "<html") {
			t.Errorf("page.html is not the page (%v): %.200s", err, b)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "*deid-tmp*")); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})
}

// TestRetainEmptySource: retain, with --dry-run too, refuses a source glob
// matching no file as run does (exit 3, naming the dataset and its
// pattern), and warns instead with allow_empty: true. Before, it reported
// 0 files scanned and succeeded.
func TestRetainEmptySource(t *testing.T) {
	for _, args := range inputsCommands[3:] {
		t.Run(strings.Join(args[3:], " "), func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "lake", "t"), 0o755)
			writeInputsPolicy(t, dir, "lake/t/*.parquet", outfilesCols, "")
			res := runDeid(t, dir, inputsEnv, args...)
			if res.code != 3 {
				t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			for _, w := range []string{`dataset "t"`, "lake/t/*.parquet", "matches no file", "allow_empty: true"} {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not say %s:\n%s", w, res.stderr)
				}
			}
			writeInputsPolicy(t, dir, "lake/t/*.parquet", outfilesCols, "    allow_empty: true\n")
			res = runDeid(t, dir, inputsEnv, args...)
			if res.code != 0 || !strings.Contains(res.stdout, `warning: dataset "t": no input file matches`) {
				t.Errorf("allow_empty: true: exit %d, want 0 and a warning\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// TestSourceExitCodes: a source naming a folder without a glob, and a
// link to nothing in a source folder, are data errors (exit 3) in every
// command that reads the sources, with a message saying what to do. Before,
// both exited 1 as unexpected failures.
func TestSourceExitCodes(t *testing.T) {
	cases := []struct {
		name, source string
		setup        func(t *testing.T, dir string)
		want         []string
	}{
		{"a folder as the source", "lake/t", nil, []string{`dataset "t"`, "is a folder", "lake/t/*.parquet"}},
		{"a link to nothing in the source folder", "lake/t/*.parquet", func(t *testing.T, dir string) {
			if err := os.Symlink("gone.parquet", filepath.Join(dir, "lake", "t", "part-1.parquet")); err != nil {
				t.Fatal(err)
			}
		}, []string{`dataset "t"`, "part-1.parquet", "does not exist", "remove the link or restore its target"}},
	}
	for _, tc := range cases {
		for _, args := range inputsCommands[1:] {
			t.Run(tc.name+"/"+strings.Join(args[:1], " ")+map[bool]string{true: " --dry-run"}[len(args) > 5], func(t *testing.T) {
				dir := t.TempDir()
				writeOutfilesLake(t, dir)
				writeInputsPolicy(t, dir, tc.source, outfilesCols, "")
				if tc.setup != nil {
					tc.setup(t, dir)
				}
				lake := treeState(t, filepath.Join(dir, "lake"))
				res := runDeid(t, dir, inputsEnv, args...)
				if res.code != 3 {
					t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("stderr does not say %s:\n%s", w, res.stderr)
					}
				}
				if got := treeState(t, filepath.Join(dir, "lake")); fmt.Sprint(got) != fmt.Sprint(lake) {
					t.Errorf("the lake changed:\nbefore %v\nafter  %v", lake, got)
				}
			})
		}
	}
}

// TestControlCharactersInNames: a corrupt source file whose name holds
// newlines is named quoted in the error, so that its name cannot print a
// forged line (a fake "run ... succeeded") on stderr.
func TestControlCharactersInNames(t *testing.T) {
	forged := "b\nrun 2026-11-01 succeeded\n  x.parquet"
	for _, args := range inputsCommands[1:] {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			writeOutfilesLake(t, dir)
			if err := os.WriteFile(filepath.Join(dir, "lake", "t", forged), []byte("PAR1 not really"), 0o644); err != nil {
				t.Skipf("the file system refuses the name: %v", err)
			}
			res := runDeid(t, dir, inputsEnv, args...)
			if res.code != 3 {
				t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			for _, line := range strings.Split(res.stderr+res.stdout, "\n") {
				if strings.HasPrefix(line, "run 2026") || strings.HasPrefix(line, "  x.parquet") {
					t.Errorf("a forged line was printed: %q\nstderr: %s", line, res.stderr)
				}
			}
			if want := fmt.Sprintf("%q", filepath.Join("lake", "t", forged)); !strings.Contains(res.stderr, want[:len(want)-1]) {
				t.Errorf("stderr does not name the file quoted (%s):\n%s", want, res.stderr)
			}
		})
	}
}
