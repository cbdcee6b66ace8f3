package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests of issue 14's keys, signals, YAML positions and
// names: each runs the real binary.

// sampleKeyLine is the reference sample policy's key entry.
const sampleKeyLine = `sample: {ref: hex:file:testdata/sample/sample-only.key, allow: "sample key, public in the repository"}`

// withKey writes the reference sample policy with its key entry replaced.
func withKey(t *testing.T, dir, name, entry string) string {
	t.Helper()
	src := referenceSample(t)
	if !strings.Contains(src, sampleKeyLine) {
		t.Fatalf("the reference sample's key entry is not %q", sampleKeyLine)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Replace(src, sampleKeyLine, entry, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeyFilesE2E: deid validate refuses, at once and naming the path and
// what it is, a key reference to anything but a small regular file that
// only its owner (or group) can read, and accepts a Kubernetes secret's
// chain of links and a world-readable sample key whose policy says why.
func TestKeyFilesE2E(t *testing.T) {
	dir := sampleWorkdir(t)
	keyHex, err := os.ReadFile(filepath.Join(dir, "testdata", "sample", "sample-only.key"))
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "k")
	os.Mkdir(keys, 0o700)
	mk := func(name string, content []byte, mode os.FileMode) string {
		p := filepath.Join(keys, name)
		if err := os.WriteFile(p, content, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	link := func(name, target string) string {
		p := filepath.Join(keys, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := mk("private.key", keyHex, 0o600)
	group := mk("group.key", keyHex, 0o640)
	public := mk("public.key", keyHex, 0o644)
	huge := mk("huge.key", bytes.Repeat([]byte("ab"), 1<<19), 0o600)
	fifo := filepath.Join(keys, "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(keys, "folder.key")
	os.Mkdir(folder, 0o700)
	sock := filepath.Join(keys, "sock.key")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// a Kubernetes Secret volume: key -> ..data/key, ..data -> ..<timestamp>
	mount := filepath.Join(dir, "secret")
	os.MkdirAll(filepath.Join(mount, "..2026_12_07_00_29_30.0123456789"), 0o755)
	if err := os.WriteFile(filepath.Join(mount, "..2026_12_07_00_29_30.0123456789", "sample"), keyHex, 0o400); err != nil {
		t.Fatal(err)
	}
	os.Symlink("..2026_12_07_00_29_30.0123456789", filepath.Join(mount, "..data"))
	os.Symlink("..data/sample", filepath.Join(mount, "sample"))

	buildDeid(t) // not timed below
	cases := []struct {
		name  string
		entry string
		code  int
		want  []string
	}{
		{"private file", "sample: hex:file:" + private, 0, nil},
		{"group-readable file", "sample: hex:file:" + group, 0, nil},
		{"Kubernetes secret links", "sample: hex:file:secret/sample", 0, nil},
		{"link to a private file", "sample: hex:file:" + link("l-private.key", private), 0, nil},
		{"world-readable, allowed", `sample: {ref: hex:file:` + public + `, allow: "sample key"}`, 0, []string{`its file`, `is readable by every user; allowed at`, "sample key"}},
		{"world-readable", "sample: hex:file:" + public, 2, []string{"reference.yaml:15:3: keys.sample:", "readable by every user (mode 0644)", "chmod 600"}},
		{"link to a world-readable file", "sample: hex:file:" + link("l-public.key", public), 2, []string{"readable by every user"}},
		{"/dev/zero", "sample: hex:file:/dev/zero", 2, []string{`"/dev/zero"`, "a character device, not a regular file"}},
		{"/dev/urandom", "sample: hex:file:/dev/urandom", 2, []string{`"/dev/urandom"`, "a character device"}},
		{"link to /dev/zero", "sample: hex:file:" + link("l-zero.key", "/dev/zero"), 2, []string{`a link to "/dev/zero"`, "a character device"}},
		{"a FIFO", "sample: hex:file:" + fifo, 2, []string{"a FIFO (named pipe), not a regular file"}},
		{"link to a FIFO", "sample: hex:file:" + link("l-fifo.key", fifo), 2, []string{"a FIFO"}},
		{"a folder", "sample: hex:file:" + folder, 2, []string{"a folder, not a regular file"}},
		{"a socket", "sample: hex:file:" + sock, 2, []string{"a socket, not a regular file"}},
		{"a huge file", "sample: hex:file:" + huge, 2, []string{"1048576 bytes, more than a key file holds (at most 4096)"}},
		{"link to a huge file", "sample: hex:file:" + link("l-huge.key", huge), 2, []string{"1048576 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol := withKey(t, dir, "reference.yaml", c.entry)
			start := time.Now()
			res := runDeid(t, dir, nil, "validate", "--no-sources", "-c", pol)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
			if res.code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", res.code, c.code, res.stdout, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, res.stderr)
				}
			}
			if strings.Contains(res.stderr+res.stdout, strings.TrimSpace(string(keyHex))[:16]) {
				t.Error("key material printed")
			}
		})
	}
}

// TestOneKeyPerDestinationE2E: a policy whose destinations share a key, by
// name or by bytes, is refused (exit 2) at the second destination's key:,
// unless that destination says why.
func TestOneKeyPerDestinationE2E(t *testing.T) {
	dir := sampleWorkdir(t)
	base := referenceSample(t)
	second := "\n  partner:\n    purpose: analytics\n    output: out/partner\n    key: KEY\n    datasets:\n      browsing: {}\n"
	// the line of the second destination's key: after the whole file
	keyLine := strings.Count(base, "\n") + 5
	cases := []struct {
		name, keys, key string
		code            int
		want            []string
	}{
		{"own keys", "  other: {ref: hex:file:testdata/lake/keys/analytics.key, allow: sample}\n", "other", 0, nil},
		{"same key", "", "sample", 2, []string{
			"reference.yaml:" + strconv.Itoa(keyLine) + ":10: destinations.partner.key:",
			`destination "partner" uses key "sample", already used by destination "sample"`}},
		{"same key, allowed", "", `{name: sample, allow: "one recipient"}`, 0, []string{`share key`, "allowed: one recipient"}},
		{"same bytes under another name", "  copy: {ref: hex:file:testdata/sample/sample-only.key, allow: sample}\n", "copy", 2, []string{
			"reference.yaml:" + strconv.Itoa(keyLine+1) + ":10: destinations.partner.key:",
			`key "copy" of destination "partner" has the same bytes`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(base, "  "+sampleKeyLine+"\n", "  "+sampleKeyLine+"\n"+c.keys, 1) + strings.Replace(second, "KEY", c.key, 1)
			p := filepath.Join(dir, "reference.yaml")
			if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			res := runDeid(t, dir, nil, "validate", "--no-sources", "-c", p)
			if res.code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", res.code, c.code, res.stdout, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, res.stderr)
				}
			}
		})
	}
}

// TestNonRegularInputsE2E: a policy file, a source or an erasure list that
// is a FIFO is refused at once, never waited on.
func TestNonRegularInputsE2E(t *testing.T) {
	dir := sampleWorkdir(t)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := referenceSample(t)
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// a source partition that is a FIFO
	if err := syscall.Mkfifo(filepath.Join(dir, "testdata", "sample", "browsing", "dt=2026-10-31", "zz-fifo.parquet"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"policy file", []string{"validate", "--no-sources", "-c", fifo}, 2, "a FIFO (named pipe), not a regular file"},
		{"erasure list", []string{"plan", "--now", sampleNow, "-c",
			write("erasure-fifo.yaml", strings.Replace(ref, "list: testdata/sample/erasure.parquet", "list: fifo.parquet", 1))}, 3, "fifo.parquet: is not a regular file"},
		{"erasure list (CSV)", []string{"plan", "--now", sampleNow, "-c",
			write("erasure-fifo-csv.yaml", strings.Replace(ref, "list: testdata/sample/erasure.parquet", "list: fifo.csv", 1))}, 3, "fifo.csv: is not a regular file"},
		// a source glob lists regular files only: the FIFO is not read
		{"source file", []string{"validate", "-c", write("plain.yaml", ref)}, 0, "sources: 2 files checked"},
	}
	os.Symlink(fifo, filepath.Join(dir, "fifo.parquet"))
	os.Symlink(fifo, filepath.Join(dir, "fifo.csv"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runDeidWithin(t, dir, 20*time.Second, c.args...)
			if res.code != c.code || !strings.Contains(res.stderr+res.stdout, c.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", res.code, c.code, c.want, res.stderr)
			}
		})
	}
}

// runDeidWithin is runDeid that kills the binary (and fails the test) when
// it has not finished within d.
func runDeidWithin(t *testing.T, dir string, d time.Duration, args ...string) deidResult {
	t.Helper()
	cmd := exec.Command(buildDeid(t), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		res := deidResult{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			res.code = ee.ExitCode()
		}
		return res
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("deid %v still running after %s:\n%s", args, d, errb.String())
	}
	return deidResult{}
}

// TestSIGTERMEndsABlockedCommand: a command blocked in a system call, which
// no context reaches (here deid schema writing to a pipe nobody reads, as
// with a stuck log shipper), ends within a few seconds of SIGTERM with a
// clear message and a non-zero status; a second signal ends it at once.
func TestSIGTERMEndsABlockedCommand(t *testing.T) {
	cases := []struct {
		name    string
		signals []syscall.Signal
		want    string
		within  time.Duration
	}{
		{"SIGTERM, then the grace", []syscall.Signal{syscall.SIGTERM}, "exiting anyway; nothing staged is published", 15 * time.Second},
		{"a second signal", []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}, "second signal (SIGTERM): exiting at once", 3 * time.Second},
		{"SIGINT twice (Ctrl-C, Ctrl-C)", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, "deid: SIGINT: stopping", 3 * time.Second},
		{"SIGINT, then SIGTERM", []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}, "second signal (SIGTERM): exiting at once", 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// a small pipe, so that the schema (about 70 KB) cannot fit
			if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), 1031 /* F_SETPIPE_SZ */, 4096); errno != 0 {
				t.Skipf("F_SETPIPE_SZ: %v", errno)
			}
			cmd := exec.Command(buildDeid(t), "schema")
			var errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = w, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("deid schema ended before any signal (%v): it was meant to be blocked", err)
			case <-time.After(time.Second):
			}
			start := time.Now()
			for i, s := range c.signals {
				if i > 0 {
					time.Sleep(200 * time.Millisecond)
				}
				cmd.Process.Signal(s)
			}
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 1 {
					t.Errorf("exit %v, want status 1", err)
				}
				if !strings.Contains(errb.String(), c.want) {
					t.Errorf("stderr does not say %q:\n%s", c.want, errb.String())
				}
				t.Logf("ended %s after the first signal", time.Since(start).Round(time.Millisecond))
			case <-time.After(c.within):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running %s after %v:\n%s", c.within, c.signals, errb.String())
			}
		})
	}
}

// TestAnyColumnNameE2E: a column whose name YAML would read as something
// else unquoted (<<, null, true, 1) or that holds a dot or an invisible
// character is classified by quoting it, and deid run de-identifies it.
// Before, a quoted "<<" was refused as a merge key: such a column could not
// be classified at all.
func TestAnyColumnNameE2E(t *testing.T) {
	for _, name := range []string{"<<", "null", "true", "1", "a.b", "phone\u200b"} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			dir := t.TempDir()
			writeInputFile(t, filepath.Join(dir, "lake", "t", "part-0.parquet"), 5,
				inputCol{"user_id", "int"}, inputCol{"at", "time"}, inputCol{name, "string"})
			writeInputsPolicy(t, dir, "lake/t/*.parquet", [][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {name, "phone"}}, "")
			res := runDeid(t, dir, inputsEnv, "run", "-c", "policy.yaml", "--now", inputsNow)
			if res.code != 0 {
				t.Fatalf("exit %d:\n%s", res.code, res.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "out", "t", "part-0.parquet")); err != nil {
				t.Errorf("no output: %v", err)
			}
		})
	}
	// an unquoted << stays YAML's merge key: refused, saying how to name
	// such a column
	dir := t.TempDir()
	p := writeInputsPolicy(t, dir, "lake/t/*.parquet", [][2]string{{"user_id", "account_id"}, {"at", "timestamp"}}, "")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte(`      "at": timestamp`), []byte("      \"at\": timestamp\n      <<: phone"), 1), 0o600)
	res := runDeid(t, dir, inputsEnv, "validate", "--no-sources", "-c", "policy.yaml")
	if res.code != 2 || !strings.Contains(res.stderr, `policy.yaml:13:7: datasets.t.columns: merge keys (<<) are not supported`) ||
		!strings.Contains(res.stderr, `a column named << is written "<<"`) {
		t.Errorf("exit %d:\n%s", res.code, res.stderr)
	}
}

// TestYAMLIndentationE2E: deid validate reports an indentation mistake at
// the line that is wrong, with the parser's message, in datasets, columns
// and destinations. Before, a column line indented one space too little was
// reported where its dataset started (35:1 for a mistake on line 53).
func TestYAMLIndentationE2E(t *testing.T) {
	dir := sampleWorkdir(t)
	lines := strings.Split(string(samplePolicy), "\n")
	find := func(s string) int {
		for i, l := range lines {
			if l == s {
				return i
			}
		}
		t.Fatalf("no line %q in the sample policy", s)
		return 0
	}
	cases := []struct {
		name, line, with string
		col              int
		want             string
	}{
		{"column one space too little", "      cell_id: cell_id", "     cell_id: cell_id", 6, "did not find expected key"},
		{"column one space too far", "      cell_id: cell_id", "       cell_id: cell_id", 8, "mapping values are not allowed"},
		{"a tab before a column", "      cell_id: cell_id", "\tcell_id: cell_id", 1, "a tab in the indentation"},
		{"retention key too little", "      keep: 180d", "     keep: 180d", 6, "did not find expected key"},
		{"destination key too little", "    output: out/example/training", "   output: out/example/training", 4, "did not find expected key"},
		{"treatment too little", "          latitude: {transform: round, digits: 3}", "         latitude: {transform: round, digits: 3}", 10, "did not find expected key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := find(c.line)
			edited := append([]string(nil), lines...)
			edited[i] = c.with
			if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(strings.Join(edited, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			res := runDeid(t, dir, nil, "validate", "--no-sources", "-c", "p.yaml")
			want := "p.yaml:" + strconv.Itoa(i+1) + ":" + strconv.Itoa(c.col) + ": invalid YAML: "
			if res.code != 2 || !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, c.want) {
				t.Errorf("exit %d, want 2 and %q ... %q:\n%s", res.code, want, c.want, res.stderr)
			}
		})
	}
}
