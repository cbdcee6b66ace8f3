package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Tamper evidence. A report is signed with Ed25519 by a key derived from the
// policy's audit key, so anyone holding the public key can check a report
// without being able to forge one. The signature is the last member of the
// report's JSON object and covers every byte before it: the file is the
// unsigned JSON with `,\n  "signature": {...}` inserted before its closing
// brace. Each report also records the SHA-256 of the previous report of the
// same job (Chain), so that removing, reordering or editing an older report
// breaks the chain even where the signatures still hold.

// SignatureAlgorithm names the only signature scheme of FormatV1.
const SignatureAlgorithm = "ed25519"

// signingLabel derives the Ed25519 seed from the audit key; signedPrefix
// separates report signatures from any other use of the signing key.
const (
	signingLabel = "deid report signing key v1"
	signedPrefix = "deid-report-signature/v1\n"
	sigMember    = ",\n  \"signature\": "
)

// Chain links a report to the previous report of the same job (the same
// destination output folder).
type Chain struct {
	// Previous is the run id of the previous report; empty for the first.
	Previous string `json:"previous,omitempty"`
	// PreviousSHA256 is the hex SHA-256 of the previous report.json's bytes.
	PreviousSHA256 string `json:"previous_sha256,omitempty"`
}

// Signature is a report's signature.
type Signature struct {
	// Algorithm is "ed25519".
	Algorithm string `json:"algorithm"`
	// KeyFingerprint is the audit key's fingerprint, as for other keys.
	KeyFingerprint string `json:"key_fingerprint"`
	// PublicKey is the hex Ed25519 public key the signature verifies with. A
	// checker compares it with the public key it trusts, never trusts it.
	PublicKey string `json:"public_key"`
	// Value is the hex Ed25519 signature.
	Value string `json:"value"`
}

// ErrTampered is matched by every error that says a report's bytes are not
// what the audit key signed.
var ErrTampered = errors.New("report does not match its signature")

// SigningKey derives the Ed25519 key that signs reports from the audit key's
// bytes: the seed is HMAC-SHA256(audit key, "deid report signing key v1").
func SigningKey(auditKey []byte) ed25519.PrivateKey {
	m := hmac.New(sha256.New, auditKey)
	m.Write([]byte(signingLabel))
	return ed25519.NewKeyFromSeed(m.Sum(nil))
}

// PublicKeyHex returns the hex public key that verifies reports signed with
// the given audit key: what an auditor is given instead of the key.
func PublicKeyHex(auditKey []byte) string {
	return hex.EncodeToString(SigningKey(auditKey).Public().(ed25519.PublicKey))
}

// Signed returns the report's JSON signed with the audit key, whose
// fingerprint is recorded beside the signature.
func (r *Run) Signed(auditKey []byte, fingerprint string) ([]byte, error) {
	r.mu.Lock()
	r.Signature = nil
	r.mu.Unlock()
	unsigned, err := r.JSON()
	if err != nil {
		return nil, err
	}
	return SignJSON(unsigned, auditKey, fingerprint)
}

// SignJSON signs a JSON object written by deid (indented, ending in "\n}\n")
// with the audit key: the signature member is added last, as in a report.
func SignJSON(unsigned []byte, auditKey []byte, fingerprint string) ([]byte, error) {
	priv := SigningKey(auditKey)
	sig := &Signature{
		Algorithm: SignatureAlgorithm, KeyFingerprint: fingerprint,
		PublicKey: hex.EncodeToString(priv.Public().(ed25519.PublicKey)),
		Value:     hex.EncodeToString(ed25519.Sign(priv, append([]byte(signedPrefix), unsigned...))),
	}
	return attach(unsigned, sig)
}

// VerifyJSON checks a document signed with SignJSON against the trusted
// public key and returns the bytes the signature covers; what names the
// document in errors ("the report"). Every failure matches ErrTampered.
func VerifyJSON(data []byte, pub ed25519.PublicKey, what string) ([]byte, *Signature, error) {
	unsigned, sig, err := split(data)
	if err != nil {
		return nil, nil, err
	}
	if sig == nil {
		return nil, nil, fmt.Errorf("%w: %s is not signed", ErrTampered, what)
	}
	if sig.Algorithm != SignatureAlgorithm {
		return nil, nil, fmt.Errorf("%w: signature algorithm %q, want %s", ErrTampered, sig.Algorithm, SignatureAlgorithm)
	}
	if sig.PublicKey != hex.EncodeToString(pub) {
		return nil, nil, fmt.Errorf("%w: signed by another key (public key %.16s…, audit key fingerprint %s), not the trusted audit key (public key %.16s…)",
			ErrTampered, sig.PublicKey, sig.KeyFingerprint, hex.EncodeToString(pub))
	}
	value, err := hex.DecodeString(sig.Value)
	if err != nil || !ed25519.Verify(pub, append([]byte(signedPrefix), unsigned...), value) {
		return nil, nil, fmt.Errorf("%w: %s was changed after it was signed", ErrTampered, what)
	}
	return unsigned, sig, nil
}

// attach inserts the signature member before the closing brace.
func attach(unsigned []byte, sig *Signature) ([]byte, error) {
	if !bytes.HasSuffix(unsigned, []byte("\n}\n")) {
		return nil, fmt.Errorf("report JSON does not end with a closing brace")
	}
	s, err := json.MarshalIndent(sig, "  ", "  ")
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, unsigned[:len(unsigned)-3]...)
	out = append(out, sigMember...)
	out = append(out, s...)
	return append(out, "\n}\n"...), nil
}

// Parse reads a report.json. It returns the report, decoded from the bytes
// the signature covers only (so nothing outside them is trusted), and its
// signature, or nil when the report is unsigned. It does not check the
// signature: Verify does.
func Parse(data []byte) (*Run, *Signature, error) {
	unsigned, sig, err := split(data)
	if err != nil {
		return nil, nil, err
	}
	var r Run
	dec := json.NewDecoder(bytes.NewReader(unsigned))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, nil, fmt.Errorf("not a deid report: %w", err)
	}
	if r.Format != FormatV1 {
		return nil, nil, fmt.Errorf("report format %q, this deid reads %q", r.Format, FormatV1)
	}
	if sig != nil && r.Signature != nil {
		return nil, nil, fmt.Errorf("%w: two signatures", ErrTampered)
	}
	r.Signature = sig
	return &r, sig, nil
}

// split separates a report file into the bytes the signature covers and the
// signature. The signature member must be exactly as Signed writes it, so
// nothing can be added after it unsigned.
func split(data []byte) ([]byte, *Signature, error) {
	i := bytes.LastIndex(data, []byte(sigMember))
	if i < 0 {
		return data, nil, nil
	}
	unsigned := append(append([]byte{}, data[:i]...), "\n}\n"...)
	var sig Signature
	dec := json.NewDecoder(bytes.NewReader(data[i+len(sigMember):]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sig); err != nil {
		return nil, nil, fmt.Errorf("%w: unreadable signature: %w", ErrTampered, err)
	}
	want, err := attach(unsigned, &sig)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(want, data) {
		return nil, nil, fmt.Errorf("%w: bytes after the signature, or a signature not written by deid", ErrTampered)
	}
	return unsigned, &sig, nil
}

// Verify checks that data is a report signed by the holder of the audit key
// whose public key is pub, and returns it. Every failure matches ErrTampered.
func Verify(data []byte, pub ed25519.PublicKey) (*Run, error) {
	if _, _, err := VerifyJSON(data, pub, "the report"); err != nil {
		return nil, err
	}
	r, _, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	return r, nil
}
