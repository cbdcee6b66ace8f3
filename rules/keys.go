package rules

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// MinKeyBytes is the shortest key deid accepts: 256 bits.
const MinKeyBytes = 32

// KeyRef says where a key's bytes are and how they are written. A policy
// never holds key material itself.
type KeyRef struct {
	// Source is "env" or "file".
	Source string
	// Name is the environment variable or the file path (relative paths are
	// relative to the policy file's directory).
	Name string
	// Encoding is "hex" or "base64": a 64-character hex string is also valid
	// base64, so the encoding is always stated, never guessed.
	Encoding string
}

// String returns the reference as policies write it: hex:env:NAME.
func (r KeyRef) String() string { return r.Encoding + ":" + r.Source + ":" + r.Name }

// parseKeyRef parses "ENCODING:SOURCE:NAME", e.g. hex:env:DEID_KEY or
// base64:file:keys/partner.key.
func parseKeyRef(s string) (KeyRef, error) {
	enc, rest, ok := strings.Cut(s, ":")
	src, name, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return KeyRef{}, fmt.Errorf("key reference %q must be ENCODING:SOURCE:NAME, e.g. hex:env:DEID_KEY or base64:file:keys/a.key", s)
	}
	r := KeyRef{Source: src, Name: name, Encoding: enc}
	return r, r.check()
}

func (r KeyRef) check() error {
	switch {
	case r.Encoding != "hex" && r.Encoding != "base64":
		return fmt.Errorf("key encoding %q: must be hex or base64 (stated, never guessed)", r.Encoding)
	case r.Source != "env" && r.Source != "file":
		return fmt.Errorf("key source %q: must be env or file (keys are referenced, never written in the policy)", r.Source)
	case r.Name == "":
		return fmt.Errorf("key reference names no %s", map[string]string{"env": "variable", "file": "file"}[r.Source])
	case r.Source == "env" && !validEnvName(r.Name):
		return fmt.Errorf("key variable %q is not a valid environment variable name", r.Name)
	}
	return nil
}

// Key is a loaded secret key. Its bytes never leave the process: String,
// GoString, Format, JSON and slog all show only the name and fingerprint.
type Key struct {
	name        string
	ref         KeyRef
	secret      []byte
	fingerprint string
	// allowed is the policy's reason for accepting the key's world-readable
	// file; empty when the file is not world-readable.
	allowed string
}

// fingerprintLabel is the message whose keyed hash identifies a key.
const fingerprintLabel = "deid key fingerprint v1"

// Fingerprint returns the first 8 bytes, in hex, of HMAC-SHA256(key,
// "deid key fingerprint v1"): the only form in which a key leaves the process.
func Fingerprint(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Name returns the key's name in the policy.
func (k *Key) Name() string { return k.name }

// Ref returns where the key was loaded from.
func (k *Key) Ref() KeyRef { return k.ref }

// Fingerprint returns the key's fingerprint.
func (k *Key) Fingerprint() string { return k.fingerprint }

// Allowed returns the policy's reason for accepting the key although its
// file is readable by every user; empty when it is not.
func (k *Key) Allowed() string { return k.allowed }

// Secret returns the key bytes, for binding keyed transforms only.
func (k *Key) Secret() []byte { return k.secret }

// String shows the key's name and fingerprint, never its bytes.
func (k *Key) String() string { return fmt.Sprintf("key %s (fingerprint %s)", k.name, k.fingerprint) }

// GoString is String, so that %#v cannot print the bytes either.
func (k *Key) GoString() string { return k.String() }

// Format prints String for every verb.
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue makes slog log the fingerprint only.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", k.name), slog.String("fingerprint", k.fingerprint))
}

// MarshalJSON writes the name and fingerprint only.
func (k *Key) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"name":%q,"fingerprint":%q}`, k.name, k.fingerprint)), nil
}

// filePath returns the path of a file reference's key file: its name, a
// relative one joined to baseDir (the policy file's folder). The key loader
// reads it and the location check protects it (locations.go).
func (r KeyRef) filePath(baseDir string) string {
	if filepath.IsAbs(r.Name) {
		return r.Name
	}
	return filepath.Join(baseDir, r.Name)
}

// MaxKeyFileBytes is the largest key file deid reads: a key is 32 to a few
// hundred bytes of text, so anything larger is not a key file.
const MaxKeyFileBytes = 4096

// loadKey reads and decodes the key a reference points to. allow is the
// policy's reason for accepting a key file every user can read (empty when
// it states none). Errors say what is wrong without ever quoting key
// material.
func loadKey(name string, ref KeyRef, baseDir string, lookup LookupEnv, allow string) (*Key, error) {
	var text []byte
	worldReadable := false
	switch ref.Source {
	case "env":
		v, ok := lookup(ref.Name)
		if !ok {
			return nil, fmt.Errorf("key %q: environment variable %q is not set", name, ref.Name)
		}
		text = []byte(v)
	case "file":
		p := ref.filePath(baseDir)
		b, mode, err := readKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", name, err)
		}
		if mode&0o004 != 0 {
			if allow == "" {
				return nil, fmt.Errorf("key %q: file %q is readable by every user (mode %04o): "+
					"run chmod 600 on it (or 640 for a group), or state why in the policy: %s: {ref: %s, allow: \"reason\"}",
					name, p, mode.Perm(), name, ref)
			}
			worldReadable = true
		}
		// exactly one trailing newline, as editors and `echo` leave it
		text = bytes.TrimSuffix(b, []byte("\n"))
	}
	var secret []byte
	var err error
	switch ref.Encoding {
	case "hex":
		secret, err = hex.DecodeString(string(text))
	case "base64":
		secret, err = base64.StdEncoding.Strict().DecodeString(string(text))
	}
	if err != nil {
		return nil, fmt.Errorf("key %q (%s): not valid %s (%d characters; check for spaces, quotes or a second newline)",
			name, ref, ref.Encoding, len(text))
	}
	if len(secret) < MinKeyBytes {
		return nil, fmt.Errorf("key %q (%s): %d bytes, at least %d are required (generate one with: openssl rand -hex 32)",
			name, ref, len(secret), MinKeyBytes)
	}
	if allZero(secret) {
		return nil, fmt.Errorf("key %q (%s): all bytes are zero; generate a random key (openssl rand -hex 32)", name, ref)
	}
	k := &Key{name: name, ref: ref, secret: secret, fingerprint: Fingerprint(secret)}
	if worldReadable {
		k.allowed = allow
	}
	return k, nil
}

// readKeyFile reads a key file the way a secret is read: the path, once
// links are followed (Kubernetes mounts secrets as a chain of links), must be
// a regular file of at most MaxKeyFileBytes, opened without blocking and
// checked on the opened file (readRegular). It returns the bytes and the
// file's mode.
func readKeyFile(p string) ([]byte, fs.FileMode, error) {
	b, mode, err := readRegular(p, MaxKeyFileBytes)
	var nr *notRegularError
	var tl *tooLargeError
	switch {
	case errors.As(err, &nr):
		return nil, 0, notRegular(p, nr.mode)
	case errors.As(err, &tl) && tl.size >= 0:
		return nil, 0, fmt.Errorf("read %q: %d bytes, more than a key file holds (at most %d): is this the right file?",
			p, tl.size, MaxKeyFileBytes)
	case errors.As(err, &tl):
		return nil, 0, fmt.Errorf("read %q: more than %d bytes, more than a key file holds: is this the right file?", p, MaxKeyFileBytes)
	case err != nil:
		return nil, 0, fmt.Errorf("read %q: %w", p, err)
	}
	return b, mode, nil
}

// notRegular is the error for a key path that is not a regular file.
func notRegular(p string, m fs.FileMode) error {
	return fmt.Errorf("read %q%s: it is %s, not a regular file: a key file holds the key's text only",
		p, linkNote(p), fileKind(m))
}

// linkNote says where a link leads, for errors about what it leads to.
func linkNote(p string) string {
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return ""
	}
	if target, err := filepath.EvalSymlinks(p); err == nil {
		return fmt.Sprintf(" (a link to %q)", target)
	}
	return " (a link)"
}

// fileKind names the kind of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
