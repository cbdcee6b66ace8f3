package rules

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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

// loadKey reads and decodes the key a reference points to. Errors say what
// is wrong without ever quoting key material.
func loadKey(name string, ref KeyRef, baseDir string, lookup LookupEnv) (*Key, error) {
	var text []byte
	switch ref.Source {
	case "env":
		v, ok := lookup(ref.Name)
		if !ok {
			return nil, fmt.Errorf("key %s: environment variable %s is not set", name, ref.Name)
		}
		text = []byte(v)
	case "file":
		p := ref.Name
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("key %s: read %s: %v", name, p, err)
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
		return nil, fmt.Errorf("key %s (%s): not valid %s (%d characters; check for spaces, quotes or a second newline)",
			name, ref, ref.Encoding, len(text))
	}
	if len(secret) < MinKeyBytes {
		return nil, fmt.Errorf("key %s (%s): %d bytes, at least %d are required (generate one with: openssl rand -hex 32)",
			name, ref, len(secret), MinKeyBytes)
	}
	if allZero(secret) {
		return nil, fmt.Errorf("key %s (%s): all bytes are zero; generate a random key (openssl rand -hex 32)", name, ref)
	}
	return &Key{name: name, ref: ref, secret: secret, fingerprint: Fingerprint(secret)}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
