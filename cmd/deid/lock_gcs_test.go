package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
)

// TestGCSRunJobLock: deid run --job with its output on the emulator holds
// its lock in the bucket: a live lock object refuses the run, an expired
// one is taken over, and the run leaves no lock behind.
func TestGCSRunJobLock(t *testing.T) {
	g, _ := inProcessGCS(t, nil)
	dir := sampleWorkdir(t)
	g.upload(t, dir)
	policy := string(samplePolicy)
	policy = policy[:strings.Index(policy, "\njobs:")] + `
jobs:
  - {name: partners, what: deidentify, destinations: [partner_ads], schedule: '@daily'}
`
	os.WriteFile(filepath.Join(dir, "jobs.yaml"), []byte(onGCS(policy, g.bucket, g.bucket)), 0o644)
	env := []string{"STORAGE_EMULATOR_HOST=" + g.host}
	lock := "gs://lake/out/example/partner_ads/.deid-lock/job-partners.json"
	ctx := context.Background()
	put := func(expires time.Time) {
		t.Helper()
		g.store.Delete(ctx, lock)
		if _, err := storage.CreateExclusive(ctx, g.store, lock,
			[]byte(`{"job":"partners","owner":"other-host/42/x","expires":"`+expires.UTC().Format(time.RFC3339)+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	put(time.Now().Add(time.Hour))
	res := runDeid(t, dir, env, "run", "-c", "jobs.yaml", "--job", "partners", "--now", sampleNow)
	if res.code != 1 || !strings.Contains(res.stderr, "is locked by another run: held by other-host/42/x") || !strings.Contains(res.stderr, lock) {
		t.Fatalf("with the lock held: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := g.store.Stat(ctx, "gs://lake/out/example/partner_ads/_manifest.json"); err == nil {
		t.Fatal("ran although locked")
	}
	put(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	res = runDeid(t, dir, env, "run", "-c", "jobs.yaml", "--job", "partners", "--now", sampleNow)
	if res.code != 0 || !strings.Contains(res.stdout, "destination partner_ads") {
		t.Fatalf("over an expired lock: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if _, err := g.store.Stat(ctx, "gs://lake/out/example/partner_ads/_manifest.json"); err != nil {
		t.Errorf("no manifest after the run: %v", err)
	}
	for _, loc := range g.list(t, "gs://lake/out/") {
		if strings.Contains(loc, ".deid-lock") {
			t.Errorf("lock left: %s", loc)
		}
	}
}
