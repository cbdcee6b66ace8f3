package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/deidproject/deid/rules"
)

// testPolicy declares three jobs writing under dir.
func testPolicy(t *testing.T, dir string) *rules.Policy {
	t.Helper()
	src := `version: 1
name: t
datasets:
  logs:
    source: in/*.parquet
    columns: {at: timestamp}
destinations:
  out:
    purpose: analytics
    output: ` + filepath.Join(dir, "out") + `
    datasets: {logs: {}}
jobs:
  - {name: nightly, what: deidentify, schedule: CRON_TZ=Asia/Shanghai 0 3 * * *}
  - {name: sweep, what: retain, schedule: '@weekly'}
  - {name: all, what: both, destinations: [out], schedule: '*/5 * * * * *'}
`
	p, err := rules.Parse(filepath.Join(dir, "p.yaml"), []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// blocking is a runner that signals when it starts and returns when told.
type blocking struct {
	started chan struct{}
	release chan struct{}
	panics  bool
	calls   int
	mu      sync.Mutex
}

func newBlocking() *blocking {
	return &blocking{started: make(chan struct{}, 10), release: make(chan struct{})}
}

func (b *blocking) run(ctx context.Context, _ *rules.JobDecl) (*Result, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	b.started <- struct{}{}
	if b.panics {
		panic("boom")
	}
	select {
	case <-b.release:
		return &Result{RunID: "r1", Reports: []string{"out/_reports/r1/report.json"}, RowsIn: 10, RowsOut: 7, Bytes: 100,
			Removed: map[string]int64{"retention": 3}}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func newScheduler(t *testing.T, p *rules.Policy, runner RunFunc, reg prometheus.Registerer) *Scheduler {
	t.Helper()
	s, err := New(p, Options{Runners: map[string]RunFunc{rules.JobDeidentify: runner}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOverlapSkippedAndCounted: a trigger while the job runs is skipped and
// counted; the running one is not disturbed.
func TestOverlapSkippedAndCounted(t *testing.T) {
	b := newBlocking()
	s := newScheduler(t, testPolicy(t, t.TempDir()), b.run, prometheus.NewRegistry())
	job := s.jobs["nightly"].wrapped
	done := make(chan struct{})
	go func() { job.Run(); close(done) }()
	<-b.started
	job.Run() // returns at once: skipped
	if got := testutil.ToFloat64(s.metrics.runs.WithLabelValues("nightly", OutcomeSkipped)); got != 1 {
		t.Errorf("skipped %v, want 1", got)
	}
	if st := s.Jobs()[0]; !st.Running || st.Name != "nightly" {
		t.Errorf("status while running: %+v", st)
	}
	close(b.release)
	<-done
	if got := testutil.ToFloat64(s.metrics.runs.WithLabelValues("nightly", OutcomeSuccess)); got != 1 {
		t.Errorf("success %v, want 1", got)
	}
	if b.calls != 1 {
		t.Errorf("runner called %d times", b.calls)
	}
	if got := testutil.ToFloat64(s.metrics.removed.WithLabelValues("nightly", "retention")); got != 3 {
		t.Errorf("removed %v", got)
	}
	if got := testutil.ToFloat64(s.metrics.lastSuccess.WithLabelValues("nightly")); got == 0 {
		t.Error("last success not set")
	}
}

// TestPanicRecovered: a panicking job does not kill the scheduler, is
// counted, and runs again at its next trigger (skip wraps recover, not the
// reverse, which would skip it forever).
func TestPanicRecovered(t *testing.T) {
	b := newBlocking()
	b.panics = true
	s := newScheduler(t, testPolicy(t, t.TempDir()), b.run, prometheus.NewRegistry())
	job := s.jobs["nightly"].wrapped
	job.Run()
	job.Run()
	if b.calls != 2 {
		t.Errorf("runner called %d times after a panic, want 2", b.calls)
	}
	if got := testutil.ToFloat64(s.metrics.runs.WithLabelValues("nightly", OutcomePanic)); got != 2 {
		t.Errorf("panics counted %v, want 2", got)
	}
	if last := s.Jobs()[0].Last; last == nil || last.Outcome != OutcomePanic || !strings.Contains(last.Error, "boom") {
		t.Errorf("last run: %+v", last)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.policy.File), "out", LockDir)); !os.IsNotExist(err) {
		t.Errorf("lock left behind after a panic: %v", err)
	}
}

// TestUnsupportedKind: retain (and both, which needs it) are accepted and
// reported unsupported until a runner is given; deidentify does not run
// half of a "both" job.
func TestUnsupportedKind(t *testing.T) {
	b := newBlocking()
	close(b.release)
	s := newScheduler(t, testPolicy(t, t.TempDir()), b.run, prometheus.NewRegistry())
	for _, name := range []string{"sweep", "all"} {
		_, err := s.RunJob(context.Background(), name)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v", name, err)
		}
		if got := testutil.ToFloat64(s.metrics.runs.WithLabelValues(name, OutcomeUnsupported)); got != 1 {
			t.Errorf("%s: unsupported counted %v", name, got)
		}
	}
	if b.calls != 0 {
		t.Errorf("deidentify ran %d times for unsupported jobs", b.calls)
	}
	// with a retain runner, both runs retain then deidentify
	var order []string
	s, err := New(s.policy, Options{Runners: map[string]RunFunc{
		rules.JobRetain: func(context.Context, *rules.JobDecl) (*Result, error) {
			order = append(order, "retain")
			return &Result{}, nil
		},
		rules.JobDeidentify: func(context.Context, *rules.JobDecl) (*Result, error) {
			order = append(order, "deidentify")
			return &Result{}, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunJob(context.Background(), "all"); err != nil || strings.Join(order, ",") != "retain,deidentify" {
		t.Errorf("both: %v, order %v", err, order)
	}
	if _, err := s.RunJob(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `no job named "nope"`) {
		t.Errorf("unknown job: %v", err)
	}
}

// TestJobLockAcrossSchedulers: a second scheduler (another process, or
// `deid run --job`) does not run a job the first is running.
func TestJobLockAcrossSchedulers(t *testing.T) {
	dir := t.TempDir()
	p := testPolicy(t, dir)
	b := newBlocking()
	s1 := newScheduler(t, p, b.run, prometheus.NewRegistry())
	s2 := newScheduler(t, p, b.run, prometheus.NewRegistry())
	done := make(chan error)
	go func() { _, err := s1.RunJob(context.Background(), "nightly"); done <- err }()
	<-b.started
	_, err := s2.RunJob(context.Background(), "nightly")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second run: %v", err)
	}
	if got := testutil.ToFloat64(s2.metrics.runs.WithLabelValues("nightly", OutcomeLocked)); got != 1 {
		t.Errorf("locked counted %v", got)
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// released: the second can run now, and nothing is left behind
	if _, err := s2.RunJob(context.Background(), "nightly"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", LockDir)); !os.IsNotExist(err) {
		t.Errorf("lock folder left: %v", err)
	}
}

// TestFileLockLease: a held lock refuses others until its lease expires;
// then it is taken over, and the old holder can neither renew nor remove it.
func TestFileLockLease(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), LockDir, "job-n.json")
	a := &FileLock{Path: path, Job: "n", Owner: "a", TTL: time.Minute, Clock: clock}
	b := &FileLock{Path: path, Job: "n", Owner: "b", TTL: time.Minute, Clock: clock}
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
	now = now.Add(50 * time.Second) // 100 s after acquiring: alive thanks to the renewal
	if err := b.Acquire(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("b after renewal: %v", err)
	}
	now = now.Add(61 * time.Second) // a died: the lease ran out
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("b after expiry: %v", err)
	}
	if err := a.Renew(ctx); err == nil {
		t.Error("a renewed a lock it lost")
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("a removed b's lock: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("lock not removed: %v", err)
	}
	// an unreadable lock file counts as expired
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte("{"), 0o644)
	if err := a.Acquire(ctx); err != nil {
		t.Errorf("over a corrupt lock: %v", err)
	}
}

// TestHandler: the endpoints answer with the jobs, metrics and readiness.
func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newBlocking()
	close(b.release)
	s := newScheduler(t, testPolicy(t, t.TempDir()), b.run, reg)
	srv := httptest.NewServer(s.Handler(reg))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz before start: %d", code)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	if _, err := s.RunJob(context.Background(), "nightly"); err != nil {
		t.Fatal(err)
	}
	s.Start()
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("readyz after start: %d", code)
	}
	_, body := get("/jobs")
	var jobs struct{ Jobs []JobStatus }
	if err := json.Unmarshal([]byte(body), &jobs); err != nil {
		t.Fatal(err)
	}
	j := jobs.Jobs[0]
	if len(jobs.Jobs) != 3 || j.Name != "nightly" || j.Last == nil || j.Last.Outcome != OutcomeSuccess ||
		j.Last.Reports[0] != "out/_reports/r1/report.json" || j.Next.Hour() != 19 {
		t.Errorf("jobs: %s", body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{`deid_job_runs_total{job="nightly",outcome="success"} 1`, `deid_job_rows_in_total{job="nightly"} 10`,
		`deid_job_rows_removed_total{job="nightly",reason="retention"} 3`, `deid_job_duration_seconds_count{job="nightly",outcome="success"} 1`,
		`deid_job_bytes_written_total{job="nightly"} 100`, `deid_job_last_success_timestamp_seconds{job="nightly"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if err := s.Stop(time.Minute, time.Minute); err != nil {
		t.Errorf("stop with nothing running: %v", err)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz while stopping: %d", code)
	}
}

// TestStopAbortsAfterGrace: a run still going when the grace period ends
// is cancelled, and Stop says so.
func TestStopAbortsAfterGrace(t *testing.T) {
	b := newBlocking()
	s := newScheduler(t, testPolicy(t, t.TempDir()), b.run, prometheus.NewRegistry())
	s.Start()
	done := make(chan struct{})
	go func() { s.jobs["nightly"].wrapped.Run(); close(done) }()
	<-b.started
	err := s.Stop(0, time.Minute)
	<-done
	if !errors.Is(err, ErrAborted) {
		t.Errorf("stop: %v", err)
	}
	if last := s.Jobs()[0].Last; last == nil || last.Outcome != OutcomeAborted {
		t.Errorf("last: %+v", last)
	}
}
