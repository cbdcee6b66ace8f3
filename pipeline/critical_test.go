package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
)

// commitWatch is an Options.Critical that records, as each commit opens
// and ends, whether the output had a manifest and a publish lock.
type commitWatch struct {
	t      *testing.T
	out    string
	events []string
}

func (w *commitWatch) state() string {
	_, merr := os.Stat(filepath.Join(w.out, output.ManifestName))
	_, lerr := os.Stat(lock.PublishPath(w.out))
	return fmt.Sprintf("manifest %t, lock %t", merr == nil, lerr == nil)
}

func (w *commitWatch) critical() func() {
	w.events = append(w.events, "open: "+w.state())
	ended := false
	return func() {
		if ended {
			w.t.Error("a commit ended twice")
		}
		ended = true
		w.events = append(w.events, "end: "+w.state())
	}
}

// TestCommitsAreCritical: a run's publish and a merge's commit run inside
// Options.Critical, from before the first file moves (no manifest yet, no
// lock taken) until the manifest is written and the publish lock released,
// so that deid's signal handling never exits in between.
func TestCommitsAreCritical(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		shards int
		want   []string
	}{
		{"a run", 0, []string{"open: manifest false, lock false", "end: manifest true, lock false"}},
		{"two shards, then their merge", 2, []string{
			"open: manifest false, lock false", "end: manifest false, lock false", // shard 0
			"open: manifest false, lock false", "end: manifest false, lock false", // shard 1
			"open: manifest false, lock false", "end: manifest true, lock false", // the merge
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), out))
			w := &commitWatch{t: t, out: out}
			opt := Options{Workers: 1, ScratchDir: t.TempDir(), Critical: w.critical}
			if c.shards == 0 {
				if _, err := Run(ctx, plan, opt); err != nil {
					t.Fatal(err)
				}
			} else {
				frozen, err := FreezeInputs(ctx, plan, Options{}, "crit")
				if err != nil {
					t.Fatal(err)
				}
				for i := range c.shards {
					o := opt
					o.RunID = fmt.Sprintf("crit-shard-%d-of-%d", i, c.shards)
					o.Shard = &Shard{Index: i, Count: c.shards, Inputs: frozen}
					if _, err := Run(ctx, plan, o); err != nil {
						t.Fatalf("shard %d: %v", i, err)
					}
				}
				if _, err := MergeShards(ctx, plan, Options{Critical: w.critical}, "crit", c.shards); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(w.events) != fmt.Sprint(c.want) {
				t.Errorf("commits:\n got %q\nwant %q", w.events, c.want)
			}
		})
	}
}

// cancelStore is local disk that, as object storage does, refuses to
// create an object under a cancelled context.
type cancelStore struct{ storage.Local }

func (s cancelStore) Create(ctx context.Context, location string) (storage.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Local.Create(ctx, location)
}

// TestMergeCommitIgnoresCancellation: once a merge has checked every
// shard, its commit is not cut by a cancelled context (a signal), as a
// run's publish is not: it writes every destination's manifest.
func TestMergeCommitIgnoresCancellation(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), out))
	ctx := context.Background()
	frozen, err := FreezeInputs(ctx, plan, Options{}, "cancel")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, plan, Options{Workers: 1, ScratchDir: t.TempDir(), RunID: "cancel-shard-0-of-1", Shard: &Shard{Index: 0, Count: 1, Inputs: frozen}}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	opened := false
	_, err = MergeShards(cctx, plan, Options{Store: cancelStore{}, Critical: func() func() { opened = true; cancel(); return func() {} }}, "cancel", 1)
	if err != nil || !opened {
		t.Fatalf("merge cancelled as its commit starts: %v (commit opened: %t)", err, opened)
	}
	if _, err := os.Stat(filepath.Join(out, output.ManifestName)); errors.Is(err, os.ErrNotExist) {
		t.Fatal("the merge cancelled as it commits wrote no manifest")
	}
}
