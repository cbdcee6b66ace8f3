package rules

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKeyFilesReadLikeSecrets: a file: key must be a regular file once links
// are followed, of at most MaxKeyFileBytes, not readable by every user unless
// the policy says why; anything else fails at once, naming the path and what
// it is.
func TestKeyFilesReadLikeSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		return p
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.key", benchKeyHex+"\n", 0o600)
	fifo := filepath.Join(dir, "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder.key")
	os.Mkdir(folder, 0o700)
	sock := filepath.Join(dir, "s.key")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	huge := write("huge.key", strings.Repeat("a", 1<<20), 0o600)
	justOver := write("over.key", strings.Repeat("a", MaxKeyFileBytes+1), 0o600)
	public := write("public.key", benchKeyHex+"\n", 0o644)

	// Kubernetes: key -> ..data/key, ..data -> ..2026_12_07_00_00_00.1234
	stamp := filepath.Join(dir, "mount", "..2026_12_07_00_00_00.1234")
	os.MkdirAll(stamp, 0o755)
	if err := os.WriteFile(filepath.Join(stamp, "key"), []byte(benchKeyHex+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	os.Symlink("..2026_12_07_00_00_00.1234", filepath.Join(dir, "mount", "..data"))
	k8s := filepath.Join(dir, "mount", "key")
	os.Symlink("..data/key", k8s)

	cases := []struct {
		name  string
		path  string
		allow string
		err   []string // all must occur; none means the key loads
	}{
		{"regular file", good, "", nil},
		{"Kubernetes secret: a chain of links", k8s, "", nil},
		{"link to a good key", link("l-good.key", good), "", nil},
		{"/dev/zero", "/dev/zero", "", []string{`"/dev/zero"`, "a character device", "not a regular file"}},
		{"/dev/urandom", "/dev/urandom", "", []string{`"/dev/urandom"`, "a character device"}},
		{"/dev/null", "/dev/null", "", []string{`"/dev/null"`, "a character device"}},
		{"a FIFO", fifo, "", []string{`"` + fifo + `"`, "a FIFO (named pipe)"}},
		{"a folder", folder, "", []string{"a folder", "not a regular file"}},
		{"a socket", sock, "", []string{"a socket"}},
		{"link to /dev/zero", link("l-zero.key", "/dev/zero"), "", []string{`(a link to "/dev/zero")`, "a character device"}},
		{"link to a FIFO", link("l-fifo.key", fifo), "", []string{"a link to", "a FIFO"}},
		{"link to a folder", link("l-folder.key", folder), "", []string{"a link to", "a folder"}},
		{"huge regular file", huge, "", []string{"1048576 bytes", "at most 4096"}},
		{"one byte over the cap", justOver, "", []string{"4097 bytes"}},
		{"link to a huge file", link("l-huge.key", huge), "", []string{"1048576 bytes"}},
		{"dangling link", link("l-none.key", filepath.Join(dir, "none")), "", []string{"no such file"}},
		{"world-readable", public, "", []string{"readable by every user", "mode 0644", "chmod 600", `allow: "reason"`}},
		{"link to a world-readable file", link("l-public.key", public), "", []string{"readable by every user"}},
		{"world-readable, allowed", public, "sample key, public in the repository", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			k, err := loadKey("k", KeyRef{"file", c.path, "hex"}, dir, env(nil), c.allow)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s", d) // a blocked open or an unbounded read
			}
			if c.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if string(k.Secret()) != string(mustHex(t, benchKeyHex)) {
					t.Error("secret differs")
				}
				if k.Allowed() != c.allow {
					t.Errorf("Allowed() = %q, want %q", k.Allowed(), c.allow)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded")
			}
			for _, want := range c.err {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if !strings.Contains(err.Error(), `key "k"`) {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

// twoDestinations is minimal with a second destination, "ads", whose key is
// KEY2 (replaced by each case).
var twoDestinations = strings.Replace(minimal, "keys:\n  k: hex:env:K\n", "keys:\n  k: hex:env:K\n  k2: hex:env:K2\n", 1) + `  ads:
    purpose: analytics
    output: ads
    key: KEY2
    datasets:
      logs:
        columns:
          user_id: pseudonymize
          at: {transform: truncate_time, unit: day}
`

// TestKeyForms: a key entry (and the audit key) is a reference or a mapping
// {ref, allow} / {from, encoding, allow}; a destination's key is a name or
// {name, allow}; mistakes in either are positioned policy errors.
func TestKeyForms(t *testing.T) {
	cases := []struct {
		name      string
		src       string
		line, col int
		path, msg string // empty msg: parses
		allow     string // keys.k's Allow, when it parses
	}{
		{"scalar", minimal, 0, 0, "", "", ""},
		{"ref mapping", strings.Replace(minimal, "k: hex:env:K", `k: {ref: hex:env:K, allow: "public sample"}`, 1), 0, 0, "", "", "public sample"},
		{"from mapping with allow", strings.Replace(minimal, "k: hex:env:K", `k: {from: env:K, encoding: hex, allow: "public sample"}`, 1), 0, 0, "", "", "public sample"},
		{"ref and from", strings.Replace(minimal, "k: hex:env:K", "k: {ref: hex:env:K, from: env:K}", 1), 4, 6, "keys.k", "write either ref: ENCODING:SOURCE:NAME or from: and encoding:, not both", ""},
		{"neither ref nor from", strings.Replace(minimal, "k: hex:env:K", `k: {allow: "x"}`, 1), 4, 6, "keys.k", `missing required key "ref" (or from: and encoding:)`, ""},
		{"from without encoding", strings.Replace(minimal, "k: hex:env:K", "k: {from: env:K}", 1), 4, 6, "keys.k", `missing required key "encoding"`, ""},
		{"bad ref", strings.Replace(minimal, "k: hex:env:K", "k: {ref: hex:K}", 1), 4, 12, "keys.k.ref", "ENCODING:SOURCE:NAME", ""},
		{"empty allow", strings.Replace(minimal, "k: hex:env:K", "k: {ref: hex:env:K, allow: ''}", 1), 4, 30, "keys.k.allow", "must not be empty", ""},
		{"unknown key in the mapping", strings.Replace(minimal, "k: hex:env:K", "k: {ref: hex:env:K, reason: x}", 1), 4, 23, "keys.k.reason", `unknown key "reason" (known keys: allow, encoding, from, ref)`, ""},
		{"audit key ref mapping", strings.Replace(minimal, "keys:\n", "audit_key: {ref: hex:env:A, allow: \"sample\"}\nkeys:\n", 1), 0, 0, "", "", ""},
		{"destination key mapping", strings.Replace(minimal, "    key: k\n", "    key: {name: k}\n", 1), 0, 0, "", "", ""},
		{"destination key mapping, unknown key", strings.Replace(minimal, "    key: k\n", "    key: {name: q}\n", 1), 20, 17, "destinations.out.key.name", `no key named "q"`, ""},
		{"destination key mapping without name", strings.Replace(minimal, "    key: k\n", "    key: {allow: x}\n", 1), 20, 10, "destinations.out.key", `missing required key "name"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(c.src), env(nil))
			if c.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k := p.key("k"); k.Ref != (KeyRef{"env", "K", "hex"}) || k.Allow != c.allow {
					t.Errorf("key %+v", k)
				}
				return
			}
			wantPolicyError(t, err, c.line, c.col, c.path, c.msg)
		})
	}
}

// wantPolicyError fails unless err is an ErrorList holding the error.
func wantPolicyError(t *testing.T, err error, line, col int, path, msg string) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) || !errors.Is(err, ErrPolicy) {
		t.Fatalf("error %v is not a policy ErrorList", err)
	}
	for _, e := range list {
		if e.File == "policy.yaml" && e.Line == line && e.Column == col && e.Path == path && strings.Contains(e.Msg, msg) {
			return
		}
	}
	t.Errorf("want policy.yaml:%d:%d: %s: ...%s...\ngot:\n%v", line, col, path, msg, err)
}

// TestOneKeyPerDestination: two destinations sharing a key, by name or by
// bytes, are refused at the second destination's key unless it says why;
// the audit key may not equal a pseudonym key.
func TestOneKeyPerDestination(t *testing.T) {
	const other = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		key2      string
		env       map[string]string
		compile   bool // the error is found by Compile (bytes), not Parse
		line, col int
		path, msg string // empty: accepted
		warning   string
	}{
		{"own keys", "k2", map[string]string{"K": benchKeyHex, "K2": other}, false, 0, 0, "", "", ""},
		{"same key name", "k", nil, false, 30, 10, "destinations.ads.key",
			`destination "ads" uses key "k", already used by destination "out" (at policy.yaml:21:10): their pseudonyms could be joined with each other`, ""},
		{"same key name, mapping form", "{name: k}", nil, false, 30, 10, "destinations.ads.key", `already used by destination "out"`, ""},
		{"same key name, allowed", `{name: k, allow: "one recipient, two folders"}`, map[string]string{"K": benchKeyHex}, false, 0, 0, "", "",
			`destinations ["out" "ads"] share key "k": their pseudonyms can be joined with each other; allowed: one recipient, two folders (destination "ads" at policy.yaml:30:10)`},
		{"same bytes under two names", "k2", map[string]string{"K": benchKeyHex, "K2": benchKeyHex}, true, 30, 10, "destinations.ads.key",
			`key "k2" of destination "ads" has the same bytes (fingerprint ` + benchKeyFingerprint + `) as key "k" of destination "out"`, ""},
		{"same bytes in another encoding", "k2", map[string]string{"K": benchKeyHex, "K2": strings.ToUpper(benchKeyHex)}, true, 30, 10, "destinations.ads.key", "has the same bytes", ""},
		{"same bytes, allowed", `{name: k2, allow: "test"}`, map[string]string{"K": benchKeyHex, "K2": benchKeyHex}, true, 0, 0, "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(twoDestinations, "KEY2", c.key2, 1)
			p, err := Parse("policy.yaml", []byte(src), env(nil))
			if c.msg != "" && !c.compile {
				wantPolicyError(t, err, c.line, c.col, c.path, c.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Compile(p, CompileOptions{Now: now, Lookup: env(c.env)})
			if c.msg != "" {
				wantPolicyError(t, err, c.line, c.col, c.path, c.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.warning != "" && !strings.Contains(strings.Join(plan.Warnings, "\n"), c.warning) {
				t.Errorf("warnings %q, want %q", plan.Warnings, c.warning)
			}
		})
	}
}

// TestWorldReadableKeyInPolicy: a world-readable key file is refused at the
// key's position; with allow it compiles, and the plan warns with the reason.
func TestWorldReadableKeyInPolicy(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "k.key")
	os.WriteFile(kf, []byte(benchKeyHex+"\n"), 0o644)
	os.Chmod(kf, 0o644)
	af := filepath.Join(dir, "a.key")
	os.WriteFile(af, []byte("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100\n"), 0o644)
	os.Chmod(af, 0o644)
	file := filepath.Join(dir, "policy.yaml")
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name, keys string
		err        string
		warning    string
	}{
		{"pseudonym key refused", "keys:\n  k: hex:file:k.key\n", `policy.yaml:4:3: keys.k: key "k": file "` + kf + `" is readable by every user (mode 0644)`, ""},
		{"audit key refused", "audit_key: hex:file:a.key\nkeys:\n  k: {ref: hex:file:k.key, allow: sample}\n", `policy.yaml:3:12: audit_key: key "audit_key": file "` + filepath.Join(dir, "a.key") + `" is readable by every user`, ""},
		{"allowed", "keys:\n  k: {ref: hex:file:k.key, allow: \"sample key, public in the repository\"}\n", "",
			`key "k": its file "k.key" is readable by every user; allowed at ` + file + `:4:3: sample key, public in the repository`},
		{"audit key allowed", "audit_key: {ref: hex:file:a.key, allow: sample}\nkeys:\n  k: {ref: hex:file:k.key, allow: sample}\n", "", `audit_key: its file "a.key" is readable by every user; allowed at`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(minimal, "keys:\n  k: hex:env:K\n", c.keys, 1)
			p, err := Parse(file, []byte(src), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Compile(p, CompileOptions{Now: now, Lookup: env(nil)})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrPolicy) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(plan.Warnings, "\n"), c.warning) {
				t.Errorf("warnings %q, want %q", plan.Warnings, c.warning)
			}
		})
	}
}
