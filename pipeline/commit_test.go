package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// stageAs plants a staging file of run id in out, as a run would have
// left it.
func stageAs(t *testing.T, out, id, rel string) string {
	t.Helper()
	p := filepath.Join(out, output.StagingDir, id, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKilledStagingRemovedAtOnce: a run removes, whatever their age, the
// staging folders of runs whose staging lease is free (killed: no lease,
// an expired one, or one of a process of this host that is gone), their
// writers' temporary files included; it keeps a folder whose lease is held
// and says what it removed in the report.
func TestKilledStagingRemovedAtOnce(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	noLease := stageAs(t, out, "20261101T000000Z-nolease", "browsing/part-0.parquet")
	tmp := stageAs(t, out, "20261101T000000Z-nolease", "browsing/.deid-tmp-part-1.parquet-0123")
	expired := stageAs(t, out, "20261101T000000Z-expired", "browsing/part-0.parquet")
	live := stageAs(t, out, "20261101T000000Z-live", "browsing/part-0.parquet")
	ctx := context.Background()
	old := time.Now().Add(-2 * output.StagingLeaseTTL)
	el, _ := lock.At(storage.Local{}, lock.StagingPath(out, "20261101T000000Z-expired"), "staging", lock.NewOwner(), output.StagingLeaseTTL, func() time.Time { return old })
	if err := el.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	ll, _ := lock.At(storage.Local{}, lock.StagingPath(out, "20261101T000000Z-live"), "staging", lock.NewOwner(), output.StagingLeaseTTL, nil)
	if err := ll.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	defer ll.Release(ctx)

	src := filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet")
	plan := compile(t, dir, samplePolicy(src, filepath.Join(sampleDir(t), "erasure.parquet"), out))
	rep, err := runPlan(t, plan, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{noLease, tmp, expired, filepath.Dir(filepath.Dir(noLease)), lock.StagingPath(out, "20261101T000000Z-expired")} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the staging folder of a live run was removed: %v", err)
	}
	for _, id := range []string{"20261101T000000Z-nolease", "20261101T000000Z-expired"} {
		found := false
		for _, w := range rep.Warnings {
			found = found || strings.Contains(w, "removed the staging folder of run "+id)
		}
		if !found {
			t.Errorf("no warning about the removed folder of %s: %q", id, rep.Warnings)
		}
	}
}

// stoppedAtCommitPoint runs the sample policy into a new output and stops
// the run right after it wrote its commit record, as a kill there would.
func stoppedAtCommitPoint(t *testing.T) (out string, plan *rules.Plan, first *report.Run) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, "out")
	src := filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet")
	plan = compile(t, dir, samplePolicy(src, filepath.Join(sampleDir(t), "erasure.parquet"), out))
	first, err := Run(context.Background(), plan, Options{Workers: 2, RunID: "20261101T000000Z-first", stopAtCommitPoint: true})
	if !errors.Is(err, errStoppedAtCommitPoint) {
		t.Fatalf("err %v, want the stop at the commit point", err)
	}
	return out, plan, first
}

// TestCommitRolledForward: a run stopped right after its commit point
// (the commit record written, nothing moved) has published nothing yet;
// the next run completes that commit first, then commits its own on top,
// and the chain checks clean with both reports in it.
func TestCommitRolledForward(t *testing.T) {
	out, plan, first := stoppedAtCommitPoint(t)
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join(out, output.ManifestName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a manifest before the commit was carried out: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, output.StagingDir, first.RunID, output.CommitRecordName)); err != nil {
		t.Fatalf("the commit record is gone: %v", err)
	}
	second, err := Run(ctx, plan, Options{Workers: 2, RunID: "20261101T000001Z-second"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range second.Warnings {
		found = found || strings.Contains(w, "completed the commit of run "+first.RunID)
	}
	if !found {
		t.Errorf("no warning about the completed commit: %q", second.Warnings)
	}
	res, err := output.CheckReports(ctx, storage.Local{}, out, output.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || strings.Join(res.Reports, " ") != first.RunID+" "+second.RunID {
		t.Errorf("check: reports %v, problems %v", res.Reports, res.Problems)
	}
	if got := keys(tree(t, out)); strings.Contains(strings.Join(got, " "), output.StagingDir) || strings.Contains(strings.Join(got, " "), lock.Dir) {
		t.Errorf("state left behind: %v", got)
	}
}

// TestCommitReplayChecksMovedFiles: a replay takes a staged file that is
// gone for moved only when its target holds the recorded bytes; a staged
// file removed before the commit completed (its staging deleted by
// another process) is a data error, not a file silently recorded.
func TestCommitReplayChecksMovedFiles(t *testing.T) {
	for _, moved := range []bool{true, false} {
		out, plan, first := stoppedAtCommitPoint(t)
		staged := filepath.Join(out, output.StagingDir, first.RunID, first.Destinations[0].Files[0].Path)
		final := filepath.Join(out, first.Destinations[0].Files[0].Path)
		if moved { // as the killed commit would have: moved into place
			os.MkdirAll(filepath.Dir(final), 0o755)
			if err := os.Rename(staged, final); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(staged); err != nil {
			t.Fatal(err)
		}
		_, err := Run(context.Background(), plan, Options{Workers: 2, RunID: "20261101T000001Z-second"})
		switch {
		case moved && err != nil:
			t.Errorf("a file moved before the kill: %v", err)
		case !moved && (!errors.Is(err, ErrData) || !strings.Contains(fmt.Sprint(err), "its staged file is gone but the target does not hold it")):
			t.Errorf("a staged file removed before the commit: err %v, want a data error saying so", err)
		}
	}
}

// TestCommitRefusedAfterLostLease: a run whose staging lease was taken
// from it (another run judged it killed, and may have removed its
// staging) commits nothing.
func TestCommitRefusedAfterLostLease(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	src := filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet")
	plan := compile(t, dir, samplePolicy(src, filepath.Join(sampleDir(t), "erasure.parquet"), out))
	const id = "20261101T000000Z-lost"
	_, err := Run(context.Background(), plan, Options{Workers: 2, RunID: id,
		BeforePublish: func(ctx context.Context, dst *report.Destination, staging string) error {
			return os.Remove(lock.StagingPath(out, id)) // as a settling run deletes a lease it judged free
		}})
	if err == nil || !strings.Contains(err.Error(), "staging lease was lost") {
		t.Fatalf("err %v, want the lost lease", err)
	}
	if _, err := os.Stat(filepath.Join(out, output.ManifestName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("committed after the lease was lost: %v", err)
	}
}
