package report

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

var auditKey = bytes.Repeat([]byte{0xa5, 0x17}, 16)

func sampleRun() *Run {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return &Run{Format: FormatV1, RunID: "20261101T000000Z-00000000", Command: "run", Outcome: "succeeded",
		Policy: Policy{File: "p.yaml", Name: "p", SHA256: "00"}, Now: t0, StartedAt: t0, FinishedAt: t0,
		Keys: []Key{}, Datasets: []*Dataset{}, Warnings: []string{"<script>x</script>"},
		Destinations: []*Destination{{Name: "d", Output: "out", Removed: map[string]int64{}, Datasets: []*Treatment{{Dataset: "x",
			Columns: []Column{{Name: "c", Transform: "bucket", Params: map[string]any{"bounds": []any{0, 12345678901234567}}}}}}}},
		Chain: &Chain{Previous: "a", PreviousSHA256: "b"},
	}
}

// TestSignedRoundTrip: a signed report verifies with its public key, reads
// back equal, and fails with any other key or any edit.
func TestSignedRoundTrip(t *testing.T) {
	b, err := sampleRun().Signed(auditKey, "fp")
	if err != nil {
		t.Fatal(err)
	}
	pub := SigningKey(auditKey).Public().(ed25519.PublicKey)
	r, err := Verify(b, pub)
	if err != nil {
		t.Fatal(err)
	}
	if r.Signature == nil || r.Signature.KeyFingerprint != "fp" || r.Chain.Previous != "a" || r.Warnings[0] != "<script>x</script>" {
		t.Errorf("read back: %+v", r)
	}
	if PublicKeyHex(auditKey) != r.Signature.PublicKey {
		t.Error("public key differs")
	}
	if bytes.Contains(b, auditKey) {
		t.Error("the audit key is in the report")
	}
	other := SigningKey(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	if _, err := Verify(b, other); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "signed by another key") {
		t.Errorf("other key: %v", err)
	}
	edited := bytes.Replace(b, []byte(`"outcome": "succeeded"`), []byte(`"outcome": "succeedeD"`), 1)
	if _, err := Verify(edited, pub); !errors.Is(err, ErrTampered) {
		t.Errorf("edited: %v", err)
	}
	unsigned, _ := sampleRun().JSON()
	if _, err := Verify(unsigned, pub); !errors.Is(err, ErrTampered) {
		t.Errorf("unsigned: %v", err)
	}
	if _, sig, err := Parse(unsigned); err != nil || sig != nil {
		t.Errorf("parse unsigned: %v %v", sig, err)
	}
}

// FuzzVerify: no input panics, and only the signed bytes themselves verify.
func FuzzVerify(f *testing.F) {
	b, err := sampleRun().Signed(auditKey, "fp")
	if err != nil {
		f.Fatal(err)
	}
	pub := SigningKey(auditKey).Public().(ed25519.PublicKey)
	f.Add(b)
	f.Add([]byte(`{"format":"deid-report/v1"}`))
	f.Add([]byte(",\n  \"signature\": {}\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Parse(data)
		if _, err := Verify(data, pub); err == nil && !bytes.Equal(data, b) {
			t.Errorf("verified bytes that differ from the signed report:\n%s", data)
		}
	})
}
