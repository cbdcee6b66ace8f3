package retain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/storage/gcstest"
	"github.com/deidproject/deid/rules"
)

// gcsLake is a dataset on the in-process fake-gcs-server, reached through
// a proxy that enforces the preconditions the emulator ignores on deletes
// and copy destinations (the swap of a rewritten file is a conditional
// copy), as GCS does.
type gcsLake struct {
	proxy  *gcstest.Proxy
	store  *storage.Router
	direct *storage.GCS // straight to the emulator: the test's own access
	bucket string
}

func newGCSLake(t *testing.T, versioned bool) *gcsLake {
	t.Helper()
	var emu *gcstest.Emulator
	if versioned {
		emu = gcstest.Start(t, nil, "lake")
	} else {
		emu = gcstest.Start(t, []string{"lake"})
	}
	return lakeOn(t, emu.URL, "lake")
}

// lakeOn is the dataset in bucket of the emulator at url.
func lakeOn(t testing.TB, url, bucket string) *gcsLake {
	p := gcstest.NewProxy(t, url, 0, 1)
	p.EnforcePreconditions = true
	g := gcstest.Store(t, p.URL, storage.GCSOptions{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	r := &storage.Router{NewGCS: func(context.Context) (storage.Store, error) { return g, nil }}
	return &gcsLake{proxy: p, store: r, direct: gcstest.Store(t, url, storage.GCSOptions{}), bucket: bucket}
}

// upload copies a local file to a gs:// location.
func (l *gcsLake) upload(t testing.TB, local, loc string) storage.Attrs {
	t.Helper()
	b, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.direct.Create(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	w.Write(b)
	a, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// download copies every object of the bucket into dir (orders/...),
// so that the parquet-go helpers read them; it returns the object names
// that are neither data nor anonymized data (journals, locks, staged files).
func (l *gcsLake) download(t testing.TB, dir string) (leftover []string) {
	t.Helper()
	ctx := context.Background()
	os.RemoveAll(filepath.Join(dir, "orders"))
	err := l.direct.List(ctx, "gs://"+l.bucket+"/", func(a storage.Attrs) error {
		rel := strings.TrimPrefix(a.Location, "gs://"+l.bucket+"/")
		if strings.Contains(rel, ".deid") {
			leftover = append(leftover, rel)
			return nil
		}
		r, err := l.direct.Open(ctx, a.Location)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return leftover
}

// onGCS moves the compiled plan's dataset to gs://lake/orders (the lists
// stay local files: a policy may mix the two).
func onGCS(plan *rules.RetainPlan) { onBucket(plan, "lake") }

func onBucket(plan *rules.RetainPlan, bucket string) {
	plan.Datasets[0].Source = "gs://" + bucket + "/orders/*.parquet"
	plan.Datasets[0].Root = "gs://" + bucket + "/orders"
}

func (l *gcsLake) run(t testing.TB, plan *rules.RetainPlan, fail func(string)) (*report.Retain, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	return Run(context.Background(), plan, Options{Store: l.store, Mem: mem, RunID: fmt.Sprintf("run-%d", time.Now().UnixNano()), failAt: fail})
}

// TestRetainGCS runs a representative subset of TestRetain's scenarios with
// the dataset on the emulator: the final rows (read with parquet-go) are
// the policy's, nothing is left behind, and a second run changes nothing.
func TestRetainGCS(t *testing.T) {
	cases := []struct {
		name   string
		files  [][]string
		opts   policyOpts
		files3 report.FileCounts
	}{
		{name: "mixed row groups, all expired, untouched", files: [][]string{{"old", "mixed", "new"}, {"old", "old"}, {"new"}},
			files3: report.FileCounts{Scanned: 3, Untouched: 1, Rewritten: 1, Deleted: 1}},
		{name: "erasure of subjects in many files", opts: policyOpts{erasure: []int64{1003, 1011}}, files: [][]string{{"new"}, {"new"}, {"new", "new"}},
			files3: report.FileCounts{Scanned: 3, Rewritten: 3}},
		{name: "anonymize instead of delete", opts: policyOpts{anonymize: true, erasure: []int64{1006}}, files: [][]string{{"old", "mixed", "new"}, {"old"}},
			files3: report.FileCounts{Scanned: 2, Rewritten: 1, Deleted: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lake := newGCSLake(t, false)
			dir := t.TempDir()
			want, wantAnon, removed := map[string][]string{}, []string(nil), map[string]int64{report.RemovedRetention: 0, report.RemovedNullTime: 0, report.RemovedErasure: 0}
			for i, kinds := range c.files {
				rows := genOrders(i, kinds, 40)
				name := fmt.Sprintf("part-%d.parquet", i)
				writeOrders(t, filepath.Join(dir, "src", name), rows, 40, nil)
				lake.upload(t, filepath.Join(dir, "src", name), "gs://lake/orders/"+name)
				var keys []string
				for _, o := range rows {
					reason, _ := oracle(o, c.opts, cutoff)
					if reason == "" {
						keys = append(keys, o.key())
						continue
					}
					removed[reason]++
					if c.opts.anonymize {
						wantAnon = append(wantAnon, fmt.Sprintf("%g|%s|%s", o.Amount, o.Province, o.Completed.UTC().Truncate(24*time.Hour).Format(time.RFC3339)))
					}
				}
				if len(keys) > 0 {
					sort.Strings(keys)
					want[name] = keys
				}
			}
			sort.Strings(wantAnon)
			plan := writePolicy(t, dir, c.opts)
			onGCS(plan)
			rep, err := lake.run(t, plan, nil)
			if err != nil {
				t.Fatal(err)
			}
			ds := rep.Datasets[0]
			if left := lake.download(t, dir); len(left) > 0 {
				t.Errorf("left in the bucket: %v", left)
			}
			if got := lakeRows(t, dir, nil); !equalRows(got, want) {
				t.Errorf("rows after retain differ from the policy's:\n%s", diffRows(got, want))
			}
			if ds.Files != c.files3 || !mapsEqual(ds.Removed, removed) || ds.Root != "gs://lake/orders" {
				t.Errorf("files %+v removed %v root %s, want %+v %v", ds.Files, ds.Removed, ds.Root, c.files3, removed)
			}
			if c.opts.anonymize {
				if got := anonRows(t, dir); !slices.Equal(got, wantAnon) {
					t.Errorf("anonymized rows:\n got %v\nwant %v", got, wantAnon)
				}
			}
			for _, w := range rep.Warnings {
				if strings.Contains(w, "bucket gs://lake") {
					t.Errorf("a bucket without versioning was reported as keeping data: %s", w)
				}
			}
			again, err := lake.run(t, plan, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a := again.Datasets[0]; a.Files.Rewritten+a.Files.Deleted != 0 || a.Anonymized != 0 {
				t.Errorf("second run: files %+v anonymized %d", a.Files, a.Anonymized)
			}
			lake.download(t, dir)
			if got := lakeRows(t, dir, nil); !equalRows(got, want) {
				t.Error("the second run changed the data")
			}
		})
	}
}

// TestRetainGCSVersionedWarning: retain deleting in a bucket with object
// versioning warns, naming the bucket, that the deleted data survives there.
func TestRetainGCSVersionedWarning(t *testing.T) {
	lake := newGCSLake(t, true)
	dir := t.TempDir()
	writeOrders(t, filepath.Join(dir, "src", "part-0.parquet"), genOrders(0, []string{"old", "new"}, 10), 10, nil)
	lake.upload(t, filepath.Join(dir, "src", "part-0.parquet"), "gs://lake/orders/part-0.parquet")
	plan := writePolicy(t, dir, policyOpts{})
	onGCS(plan)
	rep, err := lake.run(t, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range rep.Warnings {
		found = found || strings.Contains(w, `dataset "orders": bucket gs://lake: object versioning`)
	}
	if !found {
		t.Errorf("no versioning warning: %q", rep.Warnings)
	}
}

// TestRetainGCSConcurrentWriter: another writer replaces a source object
// after retain read it and staged its rewrite, before the swap. The swap is
// a copy conditional on the generation retain read, so it is refused: the
// run fails with an error naming the object, the writer's version stays
// (nothing lost), the other files are done, no journal or staged file is
// left, and a second run applies the policy to the new version.
func TestRetainGCSConcurrentWriter(t *testing.T) {
	for _, anonymize := range []bool{false, true} {
		t.Run(fmt.Sprintf("anonymize=%v", anonymize), func(t *testing.T) {
			lake := newGCSLake(t, false)
			dir := t.TempDir()
			opts := policyOpts{anonymize: anonymize}
			first := genOrders(0, []string{"old", "mixed", "new"}, 20)
			writeOrders(t, filepath.Join(dir, "src", "part-0.parquet"), first, 20, nil)
			writeOrders(t, filepath.Join(dir, "src", "part-1.parquet"), genOrders(1, []string{"old", "new"}, 20), 20, nil)
			read := lake.upload(t, filepath.Join(dir, "src", "part-0.parquet"), "gs://lake/orders/part-0.parquet")
			lake.upload(t, filepath.Join(dir, "src", "part-1.parquet"), "gs://lake/orders/part-1.parquet")
			// the other writer's version: the same rows and five more
			theirs := append(slices.Clone(first), genOrders(9, []string{"old"}, 5)...)
			writeOrders(t, filepath.Join(dir, "src", "theirs.parquet"), theirs, 20, nil)

			plan := writePolicy(t, dir, opts)
			onGCS(plan)
			var written storage.Attrs
			_, err := lake.run(t, plan, func(name string) {
				if name == "staged" && written.Generation == 0 {
					written = lake.upload(t, filepath.Join(dir, "src", "theirs.parquet"), "gs://lake/orders/part-0.parquet")
				}
			})
			if !errors.Is(err, ErrConcurrentChange) || !strings.Contains(err.Error(), "gs://lake/orders/part-0.parquet") ||
				!strings.Contains(err.Error(), fmt.Sprint(read.Generation)) {
				t.Fatalf("run over a concurrent change: %v", err)
			}
			if a, err := lake.direct.Stat(context.Background(), "gs://lake/orders/part-0.parquet"); err != nil || a.Generation != written.Generation {
				t.Fatalf("the writer's version was replaced: %+v %v (theirs: %d)", a, err, written.Generation)
			}
			if left := lake.download(t, dir); len(left) > 0 {
				t.Errorf("left in the bucket: %v", left)
			}
			wantRows := func(rows []order) []string {
				var keys []string
				for _, o := range rows {
					if r, _ := oracle(o, opts, cutoff); r == "" {
						keys = append(keys, o.key())
					}
				}
				sort.Strings(keys)
				return keys
			}
			var theirKeys []string
			for _, o := range theirs {
				theirKeys = append(theirKeys, o.key())
			}
			sort.Strings(theirKeys)
			got := lakeRows(t, dir, nil)
			if !slices.Equal(got["part-0.parquet"], theirKeys) {
				t.Errorf("part-0 holds %d rows, the writer wrote %d", len(got["part-0.parquet"]), len(theirKeys))
			}
			if !slices.Equal(got["part-1.parquet"], wantRows(genOrders(1, []string{"old", "new"}, 20))) {
				t.Error("part-1 was not processed")
			}
			if anonymize {
				// part-1's expired rows only: part-0's stayed in its file
				if n := len(anonRows(t, dir)); n != 20 {
					t.Errorf("%d anonymized rows after the refused swap, want part-1's 20", n)
				}
			}

			// the rerun converges on the writer's version
			if _, err := lake.run(t, plan, nil); err != nil {
				t.Fatal(err)
			}
			if left := lake.download(t, dir); len(left) > 0 {
				t.Errorf("left in the bucket: %v", left)
			}
			got = lakeRows(t, dir, nil)
			if !slices.Equal(got["part-0.parquet"], wantRows(theirs)) {
				t.Errorf("after the rerun part-0 holds %d rows, want %d", len(got["part-0.parquet"]), len(wantRows(theirs)))
			}
			if anonymize {
				if n := len(anonRows(t, dir)); n != 20+30+5 {
					t.Errorf("%d anonymized rows after the rerun, want %d", n, 20+30+5)
				}
			}
		})
	}
}

// TestRetainGCSLock: the dataset's lock on GCS is an object created with
// DoesNotExist: a live one refuses the run; one of a process of this host
// that is gone is taken over (by a delete conditional on the generation
// judged stale) and removed at the end.
func TestRetainGCSLock(t *testing.T) {
	lake := newGCSLake(t, false)
	dir := t.TempDir()
	writeOrders(t, filepath.Join(dir, "src", "part-0.parquet"), genOrders(0, []string{"old", "new"}, 10), 10, nil)
	lake.upload(t, filepath.Join(dir, "src", "part-0.parquet"), "gs://lake/orders/part-0.parquet")
	plan := writePolicy(t, dir, policyOpts{})
	onGCS(plan)
	ctx := context.Background()
	host, _ := os.Hostname()
	loc := "gs://lake/orders/" + lockName
	put := func(owner string) {
		l, err := lock.At(lake.direct, loc, "retain", owner, time.Hour, nil)
		if err == nil {
			err = l.Acquire(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	put(lock.NewOwner())
	if _, err := lake.run(t, plan, nil); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), loc) {
		t.Fatalf("run beside a live lock: %v", err)
	}
	if err := lake.direct.Delete(ctx, loc); err != nil {
		t.Fatal(err)
	}
	put(fmt.Sprintf("%s/%d/dead", host, 1<<22))
	rep, err := lake.run(t, plan, nil)
	if err != nil || rep.Datasets[0].Removed[report.RemovedRetention] != 10 {
		t.Fatalf("run after a dead process's lock: %v", err)
	}
	if left := lake.download(t, dir); len(left) > 0 {
		t.Errorf("left in the bucket: %v", left)
	}
}

// TestRetainGCSConcurrentWriterOnDelete: a file whose rows all expired is
// deleted only if it is still the generation retain read: a writer that
// replaced it meanwhile (with rows inside retention) keeps its version,
// and the rerun applies the policy to it.
func TestRetainGCSConcurrentWriterOnDelete(t *testing.T) {
	lake := newGCSLake(t, false)
	dir := t.TempDir()
	writeOrders(t, filepath.Join(dir, "src", "part-0.parquet"), genOrders(0, []string{"old"}, 20), 20, nil)
	lake.upload(t, filepath.Join(dir, "src", "part-0.parquet"), "gs://lake/orders/part-0.parquet")
	theirs := genOrders(5, []string{"old", "new"}, 20)
	writeOrders(t, filepath.Join(dir, "src", "theirs.parquet"), theirs, 20, nil)
	plan := writePolicy(t, dir, policyOpts{})
	onGCS(plan)
	replaced := false
	_, err := lake.run(t, plan, func(name string) {
		if name == "staged" && !replaced {
			replaced = true
			lake.upload(t, filepath.Join(dir, "src", "theirs.parquet"), "gs://lake/orders/part-0.parquet")
		}
	})
	if !errors.Is(err, ErrConcurrentChange) || !strings.Contains(err.Error(), "gs://lake/orders/part-0.parquet") {
		t.Fatalf("delete over a concurrent change: %v", err)
	}
	if left := lake.download(t, dir); len(left) > 0 {
		t.Errorf("left in the bucket: %v", left)
	}
	if got := lakeRows(t, dir, nil)["part-0.parquet"]; len(got) != 40 {
		t.Fatalf("the writer's version holds %d rows after the refused delete, want 40", len(got))
	}
	if _, err := lake.run(t, plan, nil); err != nil {
		t.Fatal(err)
	}
	lake.download(t, dir)
	if got := lakeRows(t, dir, nil)["part-0.parquet"]; len(got) != 20 {
		t.Errorf("after the rerun the writer's file holds %d rows, want its 20 inside retention", len(got))
	}
}
