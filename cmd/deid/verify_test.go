package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyCommand: deid verify passes on the example's outputs, also with
// --strict, and exits 4 naming the file when a raw source file is put in
// place of an output.
func TestVerifyCommand(t *testing.T) {
	dir := sampleWorkdir(t)
	policy := filepath.Join(dir, "example.yaml")
	if err := os.WriteFile(policy, samplePolicy, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	for _, args := range [][]string{nil, {"--strict"}} {
		res := runDeid(t, dir, nil, append([]string{"verify", "-c", policy}, args...)...)
		if res.code != 0 || !strings.Contains(res.stdout, "destination partner_ads: 3 files, 761 rows checked") {
			t.Errorf("verify %v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
		}
	}
	out := filepath.Join("out", "example", "training", "device", "dt=2026-10-30", "part-0.parquet")
	raw, err := os.ReadFile(filepath.Join(dir, "testdata", "lake", "device", "dt=2026-10-30", "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, out), raw, 0o644)
	res := runDeid(t, dir, nil, "verify", "-c", policy)
	if res.code != 4 {
		t.Errorf("raw file in place of an output: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{out + `, column "wifi_bssid": the policy promises no column "wifi_bssid"`, out + `, row group 0, column "imei": 110 distinct raw values of source identifier column "device.imei"`} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out", "example", "training", "_manifest.json")); err != nil || !strings.Contains(string(b), "_reports/") {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "out", "example", "training", "_reports", "*", "verify.json")); len(m) != 1 {
		t.Errorf("verify.json: %v", m)
	}
}
