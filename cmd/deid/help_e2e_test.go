package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHelpOfEverySubcommand runs the real binary's --help, -h and deid
// help for every command and report subcommand: each prints its synopsis,
// description, the flags its flag set defines and its exit statuses, and
// exits 0; the three spellings print the same text.
func TestHelpOfEverySubcommand(t *testing.T) {
	dir := t.TempDir()
	for _, h := range helpTexts {
		t.Run(strings.ReplaceAll(h.name, " ", "_"), func(t *testing.T) {
			words := strings.Fields(h.name)
			long := runDeid(t, dir, nil, append(slices.Clone(words), "--help")...)
			short := runDeid(t, dir, nil, append(slices.Clone(words), "-h")...)
			viaHelp := runDeid(t, dir, nil, append([]string{"help"}, words...)...)
			for _, r := range []deidResult{long, short, viaHelp} {
				if r.code != 0 {
					t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
				}
			}
			text := long.stderr
			if short.stderr != text || viaHelp.stdout != text {
				t.Errorf("--help, -h and deid help differ:\n%s\n---\n%s\n---\n%s", text, short.stderr, viaHelp.stdout)
			}
			for _, s := range h.synopsis {
				if !strings.Contains(text, "deid "+s) {
					t.Errorf("help lacks the synopsis line %q:\n%s", s, text)
				}
			}
			firstLine, _, _ := strings.Cut(h.description, "\n")
			if !strings.Contains(text, firstLine) || !strings.Contains(text, "exit status:\n  0  success") {
				t.Errorf("help lacks the description or exit status:\n%s", text)
			}
			for _, c := range h.exits {
				if !strings.Contains(text, "\n  "+string(rune('0'+c))+"  ") {
					t.Errorf("help lacks exit status %d:\n%s", c, text)
				}
			}
			fs := commandFlags(h.name)
			if fs == nil {
				t.Fatalf("%s hands no flag set to parseFlags", h.name)
			}
			for _, f := range completedFlags(h.name) {
				if !strings.Contains(text, "  -"+f.name) {
					t.Errorf("help lacks flag -%s:\n%s", f.name, text)
				}
			}
		})
	}
}

// TestHelpListsEveryCommand: deid with no command and deid help list every
// command; report's subcommands are listed by deid help report; an unknown
// command is a usage error.
func TestHelpListsEveryCommand(t *testing.T) {
	dir := t.TempDir()
	list := runDeid(t, dir, nil, "help")
	rep := runDeid(t, dir, nil, "help", "report")
	if list.code != 0 || rep.code != 0 {
		t.Fatalf("exit %d, %d", list.code, rep.code)
	}
	for _, h := range helpTexts {
		name, sub, isSub := strings.Cut(h.name, " ")
		switch {
		case isSub && !strings.Contains(rep.stdout, "  "+sub+" "):
			t.Errorf("deid help report lacks %q:\n%s", sub, rep.stdout)
		case !isSub && !strings.Contains(list.stdout, "  "+name+" "):
			t.Errorf("deid help lacks %q:\n%s", name, list.stdout)
		}
	}
	if res := runDeid(t, dir, nil, "help", "frobnicate"); res.code != 2 || !strings.Contains(res.stderr, "frobnicate") {
		t.Errorf("deid help frobnicate: exit %d\n%s", res.code, res.stderr)
	}
	if res := runDeid(t, dir, nil, "serve", "--now", "2026-01-01T00:00:00Z"); res.code != 2 || strings.Contains(res.stderr, "usage:") {
		t.Errorf("a flag serve does not take: exit %d, want 2 and one line, not the help\n%s", res.code, res.stderr)
	}
}

// TestCLIReference: docs/reference/cli.md is generated from the help
// texts and flag sets (go test ./cmd/deid -run CLIReference -update).
func TestCLIReference(t *testing.T) {
	checkGenerated(t, filepath.Join(repoRoot(t), "docs", "reference", "cli.md"), cliReference())
}

// checkGenerated compares the file at path with want, or rewrites it with
// -update.
func checkGenerated(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		rel, _ := filepath.Rel(repoRoot(t), path)
		t.Errorf("%s is out of date: run go test ./cmd/deid -run 'Reference|Readme' -update and review the diff", rel)
	}
}

// completionShell returns the path of shell, or skips (fails when
// DEID_REQUIRE_SHELLS is set, as in CI).
func completionShell(t *testing.T, shell string) string {
	t.Helper()
	p, err := exec.LookPath(shell)
	if err != nil {
		if os.Getenv("DEID_REQUIRE_SHELLS") != "" {
			t.Fatalf("%s is not installed (DEID_REQUIRE_SHELLS is set)", shell)
		}
		t.Skipf("%s is not installed", shell)
	}
	return p
}

// TestCompletionBashAndZsh loads the generated script into real bash and
// zsh and asks it to complete partial command lines.
func TestCompletionBashAndZsh(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"policy.yaml", "x*", "xa", "xb"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "my out"), 0o755)
	cases := []struct {
		words []string // the command line, the last word being completed
		want  []string
	}{
		{[]string{"deid", "re"}, []string{"report", "retain"}},
		{[]string{"deid", "report", "c"}, []string{"check"}},
		{[]string{"deid", "run", "--wo"}, []string{"--workers"}},
		{[]string{"deid", "report", "check", "out", "--pu"}, []string{"--public-key"}},
		{[]string{"deid", "retain", "--de"}, nil}, // retain takes no --destination
		{[]string{"deid", "completion", "f"}, []string{"fish"}},
		{[]string{"deid", "help", "ver"}, []string{"verify", "version"}},
		{[]string{"deid", "run", "-c", "pol"}, []string{"policy.yaml"}},
		{[]string{"deid", "help", "report", "c"}, []string{"check"}},
		{[]string{"deid", "report", "render", "x"}, []string{"x*", "xa", "xb"}}, // names are not globbed
		{[]string{"deid", "report", "check", "my "}, []string{"my out"}},
	}
	for _, shell := range []string{"bash", "zsh"} {
		t.Run(shell, func(t *testing.T) {
			sh := completionShell(t, shell)
			res := runDeid(t, dir, nil, "completion", shell)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			script := filepath.Join(dir, "deid."+shell)
			os.WriteFile(script, []byte(res.stdout), 0o644)
			for _, c := range cases {
				var prog string // zsh: no compinit first, as in a fresh ~/.zshrc
				quoted := make([]string, len(c.words))
				for i, w := range c.words {
					quoted[i] = "'" + w + "'"
				}
				prog += "source " + script + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); " +
					"COMP_CWORD=" + string(rune('0'+len(c.words)-1)) + "; _deid; printf '%s\\n' \"${COMPREPLY[@]}\""
				if shell == "zsh" {
					prog = "setopt KSH_ARRAYS; " + prog // bash's 0-based arrays, as bashcompinit's callers set
				}
				cmd := exec.Command(sh, "-c", prog)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%v: %v\n%s", c.words, err, out)
				}
				got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
				if len(got) == 1 && got[0] == "" {
					got = nil
				}
				slices.Sort(got)
				if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
					t.Errorf("%v: completed %q, want %q", c.words, got, c.want)
				}
			}
		})
	}
}

// TestCompletionFish loads the generated script into real fish and asks
// it to complete partial command lines.
func TestCompletionFish(t *testing.T) {
	sh := completionShell(t, "fish")
	dir := t.TempDir()
	res := runDeid(t, dir, nil, "completion", "fish")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	script := filepath.Join(dir, "deid.fish")
	os.WriteFile(script, []byte(res.stdout), 0o644)
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	for line, want := range map[string][]string{
		"deid re":               {"report", "retain"},
		"deid report c":         {"check"},
		"deid run --wo":         {"--workers"},
		"deid report merge --s": {"--shards"},
		"deid completion z":     {"zsh"},
		"deid report check ou":  {"out/"},
	} {
		cmd := exec.Command(sh, "--no-config", "-c", "source "+script+"; complete -C '"+line+"'")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: completed %q, want %q", line, got, want)
		}
	}
}
