package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/storage/gcstest"
	"github.com/deidproject/deid/rules"
)

// gcsLockStore is a GCS store on the in-process emulator behind a proxy
// that enforces ifGenerationMatch on deletes (which fake-gcs-server
// ignores), as GCS does: takeover and release depend on it.
func gcsLockStore(t *testing.T) *storage.GCS {
	t.Helper()
	emu := gcstest.Start(t, []string{"lake"})
	p := gcstest.NewProxy(t, emu.URL, 0, 1)
	p.EnforcePreconditions = true
	return gcstest.Store(t, p.URL, storage.GCSOptions{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
}

// TestStoreLockLease: on GCS, a held lock refuses others until its lease
// expires; renewal keeps it; after expiry it is taken over, and the old
// holder can neither renew nor remove it; an unreadable lock counts as
// expired.
func TestStoreLockLease(t *testing.T) {
	g := gcsLockStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	loc := LockPath("gs://lake/out", "n")
	if loc != "gs://lake/out/.deid-lock/job-n.json" {
		t.Fatalf("lock location %s", loc)
	}
	mk := func(owner string) Lock {
		l, err := NewLock(g, "gs://lake/out", "n", owner, time.Minute, clock)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := l.(*StoreLock); !ok {
			t.Fatalf("lock on gs:// is a %T", l)
		}
		return l
	}
	a, b := mk("a"), mk("b")
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by a until 2026-11-01T03:01:00Z") {
		t.Fatalf("b while a holds: %v", err)
	}
	now = now.Add(50 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Second) // alive thanks to the renewal
	if err := b.Acquire(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("b after renewal: %v", err)
	}
	now = now.Add(61 * time.Second) // a died: the lease ran out
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("b after expiry: %v", err)
	}
	if err := a.Renew(ctx); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("a renewed a lock it lost: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if holder := readHolder(t, g, loc); holder != "b" {
		t.Errorf("after a's release the lock is %q's, want b's", holder)
	}
	if err := b.Renew(ctx); err != nil {
		t.Errorf("b renews: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Stat(ctx, loc); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("lock not removed: %v", err)
	}
	// an unreadable lock object counts as expired
	w, _ := g.Create(ctx, loc)
	io.WriteString(w, "{")
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := a.Acquire(ctx); err != nil {
		t.Errorf("over a corrupt lock: %v", err)
	}
	// a store without preconditions is refused clearly
	l := &StoreLock{Store: storage.Local{}, Location: filepath.Join(t.TempDir(), "l"), TTL: time.Minute}
	if err := l.Acquire(ctx); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("store lock on local disk: %v", err)
	}
}

func readHolder(t *testing.T, s storage.Store, loc string) string {
	t.Helper()
	r, err := s.Open(context.Background(), loc)
	if err != nil {
		t.Fatalf("read lock %s: %v", loc, err)
	}
	defer r.Close()
	var rec struct{ Owner string }
	if err := json.NewDecoder(io.NewSectionReader(r, 0, r.Size())).Decode(&rec); err != nil {
		t.Fatalf("read lock %s: %v", loc, err)
	}
	return rec.Owner
}

// TestStoreLockTakeoverRace: many contenders find the same expired lock at
// once; each deletes the generation it read, then creates exclusively:
// exactly one ends up holding it, the others report it locked.
func TestStoreLockTakeoverRace(t *testing.T) {
	g := gcsLockStore(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for round := 0; round < 4; round++ {
		out := fmt.Sprintf("gs://lake/race%d", round)
		dead, _ := NewLock(g, out, "n", "dead", time.Minute, func() time.Time { return start })
		if err := dead.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		later := func() time.Time { return start.Add(2 * time.Minute) }
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, _ := NewLock(g, out, "n", fmt.Sprintf("c%d", i), time.Minute, later)
				errs[i] = l.Acquire(ctx)
			}()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: contenders %d and %d both took over the lock", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ErrLocked):
				t.Errorf("round %d: contender %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody took over the expired lock: %v", round, errs)
		}
		if h := readHolder(t, g, LockPath(out, "n")); h != fmt.Sprintf("c%d", winner) {
			t.Errorf("round %d: the lock is %s's, the winner is c%d", round, h, winner)
		}
	}
}

// TestSchedulersContendOnGCS: two schedulers (as two deid serve processes)
// run the same job whose output is on GCS: while one runs it, the other
// reports it locked; once released, the other runs it, and no lock is left
// in the bucket.
func TestSchedulersContendOnGCS(t *testing.T) {
	g := gcsLockStore(t)
	dir := t.TempDir()
	p := testPolicy(t, dir)
	for _, d := range p.Destinations {
		d.Output = "gs://lake/out"
	}
	mk := func(run RunFunc) *Scheduler {
		s, err := New(p, Options{Runners: map[string]RunFunc{rules.JobDeidentify: run}, Registerer: prometheus.NewRegistry(), Store: g})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	b := newBlocking()
	s1 := mk(b.run)
	s2 := mk(func(context.Context, *rules.JobDecl) (*Result, error) { return &Result{}, nil })
	done := make(chan error, 1)
	go func() { _, err := s1.RunJob(context.Background(), "nightly"); done <- err }()
	<-b.started
	ctx := context.Background()
	if a, err := g.Stat(ctx, "gs://lake/out/.deid-lock/job-nightly.json"); err != nil || a.Generation == 0 {
		t.Fatalf("no lock object while s1 runs: %+v %v", a, err)
	}
	if _, err := s2.RunJob(ctx, "nightly"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "gs://lake/out/.deid-lock/job-nightly.json") {
		t.Fatalf("s2 while s1 runs: %v", err)
	}
	if last := s2.Jobs()[0].Last; last == nil || last.Outcome != OutcomeLocked {
		t.Errorf("s2's outcome: %+v", last)
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s2.RunJob(ctx, "nightly"); err != nil {
		t.Fatalf("s2 after s1 released: %v", err)
	}
	n := 0
	g.List(ctx, "gs://lake/", func(storage.Attrs) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d objects left in the bucket", n)
	}
}

// TestStoreLockLostAnswers: the answers to the lock's create, renewal and
// release are lost after GCS acted; the retried requests meet their own
// result (the create and the renewal their own bytes, the release an
// object already gone) and each call still succeeds, leaving the lock held,
// renewed, then gone.
func TestStoreLockLostAnswers(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	p := gcstest.NewProxy(t, emu.URL, 0, 1)
	p.EnforcePreconditions = true
	var mu sync.Mutex
	lose := map[string]bool{}
	p.Lose = func(r *http.Request) bool {
		kind := ""
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "multipart" && r.URL.Query().Get("ifGenerationMatch") == "0":
			kind = "create"
		case r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "multipart":
			kind = "renew"
		case r.Method == http.MethodDelete:
			kind = "release"
		default:
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if lose[kind] {
			return false
		}
		lose[kind] = true
		return true
	}
	g := gcstest.Store(t, p.URL, storage.GCSOptions{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	l, _ := NewLock(g, "gs://lake/out", "n", "a", time.Minute, func() time.Time { return now })
	if err := l.Acquire(ctx); err != nil {
		t.Fatalf("acquire after a lost answer: %v", err)
	}
	now = now.Add(30 * time.Second)
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("renew after a lost answer: %v", err)
	}
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("renew after a recovered renewal (the generation must be the new one): %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release after a lost answer: %v", err)
	}
	if _, err := g.Stat(ctx, LockPath("gs://lake/out", "n")); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("lock left: %v", err)
	}
	if !lose["create"] || !lose["renew"] || !lose["release"] {
		t.Errorf("answers lost: %v", lose)
	}
}
