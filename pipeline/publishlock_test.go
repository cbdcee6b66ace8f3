package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
)

// TestPublishLock: a run commits to an output only under its publish lock:
// while another holder has it, the run waits (publishing nothing) and
// commits once it is released; past PublishWait it fails naming the
// output, with nothing published.
func TestPublishLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), out))
	other, err := lock.At(storage.Local{}, lock.PublishPath(out), "publish", "other", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// past the wait: an error naming the output, nothing published
	_, err = Run(ctx, plan, Options{Workers: 1, ScratchDir: t.TempDir(), PublishWait: 300 * time.Millisecond})
	if !errors.Is(err, lock.ErrLocked) || !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("run while the lock is held: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, output.ManifestName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a run that could not take the lock wrote a manifest: %v", err)
	}
	// within the wait: the run waits, then commits
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, plan, Options{Workers: 1, ScratchDir: t.TempDir(), PublishWait: time.Minute})
		done <- err
	}()
	time.Sleep(700 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(out, output.ManifestName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the run committed while the lock was held: %v", err)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the run after the release: %v", err)
	}
	m, err := output.ReadManifest(ctx, storage.Local{}, out)
	if err != nil || len(m.Files) != 2 {
		t.Fatalf("manifest after the wait: %v, %+v", err, m)
	}
	if _, err := os.Stat(lock.PublishPath(out)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the run left its publish lock: %v", err)
	}
}

// TestConcurrentRunsKeepEveryFile: runs of different inputs committing to
// one output at the same time each keep the others' files in the manifest
// (without the publish lock, one's read-merge-write can drop another's).
func TestConcurrentRunsKeepEveryFile(t *testing.T) {
	ctx := context.Background()
	parts, _ := filepath.Glob(filepath.Join(sampleDir(t), "browsing", "dt=*"))
	for round := 0; round < 4; round++ {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		var wg sync.WaitGroup
		errs := make([]error, len(parts))
		for i, p := range parts {
			// each input under its own name, so each has its own output file
			sub := filepath.Join(dir, filepath.Base(p))
			os.MkdirAll(sub, 0o755)
			b, err := os.ReadFile(filepath.Join(p, "part-0.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(sub, filepath.Base(p)+".parquet"), b, 0o644)
			plan := compile(t, sub, samplePolicy(filepath.Join(sub, "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), out))
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = Run(ctx, plan, Options{Workers: 1, ScratchDir: t.TempDir()})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		m, err := output.ReadManifest(ctx, storage.Local{}, out)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range m.Files {
			got = append(got, f.Path)
		}
		sort.Strings(got)
		if len(got) != len(parts) {
			t.Fatalf("round %d: the manifest lists %v, want one file per input (%d)", round, got, len(parts))
		}
	}
}
