package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestGCSShardedRunMatchesLocal: the example policy with sources and
// outputs on the emulator, run as three shard processes of the binary
// started together (the input list frozen on GCS by the first) and merged,
// commits the single local run's outputs, and leaves no shard folder.
func TestGCSShardedRunMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := gcsPolicies[0]
	localOut := localRun(t, p.file, p.out)
	g, _ := inProcessGCS(t, nil)
	dir := sampleWorkdir(t)
	g.upload(t, dir)
	policy, err := os.ReadFile(filepath.Join(repoRoot(t), p.file))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(policy), g.bucket, g.bucket)), 0o644)
	env := []string{"STORAGE_EMULATOR_HOST=" + g.host}
	var wg sync.WaitGroup
	results := make([]deidResult, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runDeid(t, dir, env, "run", "-c", "gcs.yaml", "--now", sampleNow, "--progress", "never",
				"--shard", string(rune('0'+i))+"/3", "--run-id", "sim")
		}()
	}
	wg.Wait()
	for i, res := range results {
		if res.code != 0 || !strings.Contains(res.stdout, "published, not committed") {
			t.Fatalf("shard %d: exit %d\n%s\n%s", i, res.code, res.stdout, res.stderr)
		}
	}
	frozen := "gs://" + g.bucket + "/" + p.out + "/training/.deid-shards/sim/inputs.json"
	if len(g.read(t, frozen)) == 0 {
		t.Fatalf("no frozen input list at %s", frozen)
	}
	if res := runDeid(t, dir, env, "report", "merge", "-c", "gcs.yaml", "--run-id", "sim", "--shards", "3"); res.code != 0 {
		t.Fatalf("merge: exit %d\n%s", res.code, res.stderr)
	}
	compareWithLocal(t, g, localOut, p.out)
	for _, loc := range g.list(t, "gs://"+g.bucket+"/"+p.out+"/") {
		if strings.Contains(loc, ".deid-shards") {
			t.Errorf("shard folder left after the merge: %s", loc)
		}
	}
}
