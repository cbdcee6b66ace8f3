package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/storage/gcstest"
)

// TestFreezeInputsGCS: shards of a run whose output is on GCS freeze the
// input list with an exclusive create on the emulator. Shards arriving at
// once, each with its own reference instant, all get the list of the one
// that won, which is what the object holds; a later shard reads it.
func TestFreezeInputsGCS(t *testing.T) {
	dir := t.TempDir()
	src := copySample(t, dir)
	emu := gcstest.Start(t, []string{"lake"})
	g := gcstest.Store(t, emu.URL, storage.GCSOptions{})
	st := &storage.Router{NewGCS: func(context.Context) (storage.Store, error) { return g, nil }}
	text := withRoot(samplePolicy(filepath.Join(src, "dt=*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), "gs://lake/out/ref"), src)
	base := compile(t, dir, text)
	ctx := context.Background()
	const shards = 6
	got := make([]*FrozenInputs, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for i := 0; i < shards; i++ {
		plan := *base
		plan.Now = testNow.Add(time.Duration(i) * time.Second) // each shard's own clock
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = FreezeInputs(ctx, &plan, Options{Store: st}, "run1")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	stored, err := ReadFrozenInputs(ctx, st, base, "run1")
	if err != nil {
		t.Fatal(err)
	}
	if loc := FrozenInputsLocation(base, "run1"); loc != "gs://lake/out/ref/.deid-shards/run1/inputs.json" {
		t.Errorf("frozen list at %s", loc)
	}
	if len(stored.Files) == 0 || stored.RunID != "run1" {
		t.Fatalf("stored list: %+v", stored)
	}
	for i, fi := range got {
		if !fi.Now.Equal(stored.Now) || len(fi.Files) != len(stored.Files) {
			t.Errorf("shard %d got the list of %s (%d files), the stored one is of %s (%d files)", i, fi.Now, len(fi.Files), stored.Now, len(stored.Files))
		}
	}
	late := *base
	late.Now = testNow.Add(time.Hour)
	fi, err := FreezeInputs(ctx, &late, Options{Store: st}, "run1")
	if err != nil || !fi.Now.Equal(stored.Now) {
		t.Errorf("a late shard: %v %v", fi, err)
	}
	if _, err := ReadFrozenInputs(ctx, st, base, "other"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("a run never frozen: %v", err)
	}
}
