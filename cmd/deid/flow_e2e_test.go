package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunRetainRunConverges runs the example policy on a copy of the sample
// lake as a user schedules it: run, retain (the erasure list rewrites
// service and orders files, so partner_ads is re-derived for both), run
// again; then every destination's report chain checks clean and verify
// finds nothing. Re-derivations of two datasets of one output under one run
// id once made partner_ads' chain loop (report check exit 4).
func TestRunRetainRunConverges(t *testing.T) {
	dir := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	steps := [][]string{
		{"run", "-c", policy, "--now", sampleNow, "--progress", "never"},
		{"retain", "-c", policy, "--now", sampleNow},
		{"run", "-c", policy, "--now", sampleNow, "--progress", "never"},
	}
	for _, args := range steps {
		if res := runDeid(t, dir, nil, args...); res.code != 0 {
			t.Fatalf("deid %v: exit %d\n%s", args, res.code, res.stderr)
		}
	}
	outs, err := filepath.Glob(filepath.Join(dir, "out", "example", "*"))
	if err != nil || len(outs) != 4 {
		t.Fatalf("outputs %v (%v), want the example's four", outs, err)
	}
	for _, out := range outs {
		if _, err := os.Stat(filepath.Join(out, "_manifest.json")); err != nil {
			t.Fatal(err)
		}
		if res := runDeid(t, dir, nil, "report", "check", out, "-c", policy); res.code != 0 {
			t.Errorf("report check %s: exit %d\n%s%s", filepath.Base(out), res.code, res.stdout, res.stderr)
		}
	}
	if res := runDeid(t, dir, nil, "verify", "-c", policy); res.code != 0 {
		t.Errorf("verify: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
