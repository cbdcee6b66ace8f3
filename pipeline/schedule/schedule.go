// Package schedule runs the jobs a policy declares (rules.JobDecl): on their
// cron schedules for `deid serve`, or once for `deid run --job`. It is built
// on github.com/robfig/cron/v3 and adds what a scheduled data job needs:
//
//   - a job never overlaps itself: cron.SkipIfStillRunning skips (and this
//     package logs and counts) a trigger while the previous run is going;
//   - a panic in a job is recovered (cron.Recover, after the skip wrapper:
//     the reverse order would skip the job forever after its first panic);
//   - a lock with a lease in the job's output (FileLock on disk, StoreLock
//     on GCS with preconditions), so that two
//     schedulers, or a scheduler and a manual run, never run a job at once;
//   - a graceful stop: no new runs, the running one gets a grace period to
//     finish, then its context is cancelled and the pipeline aborts without
//     publishing anything (a run publishes as a whole, atomically);
//   - Prometheus metrics and an HTTP handler with /healthz, /readyz,
//     /metrics and /jobs.
//
// What a job does is given per kind (Runners): Deidentify runs the
// pipeline, Retain runs deid retain. A job whose kind has no runner is
// accepted by the policy and reported as unsupported when it runs.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/verify"
	"github.com/deidproject/deid/rules"
)

// ErrUnsupported is matched when a job's kind has no runner in this build.
var ErrUnsupported = errors.New("not supported by this build")

// ErrAborted is matched by Stop's error when a running job had to be
// cancelled because the grace period ended.
var ErrAborted = errors.New("job aborted at shutdown")

// Result is what one run of a job did, for metrics and /jobs.
type Result struct {
	// RunID names the run (the pipeline's run id); empty when none.
	RunID string
	// Reports are the locations of the reports the run wrote.
	Reports []string
	// RowsIn, RowsOut, Bytes and Removed (rows by reason) are the run's
	// figures; zero for kinds that do not count them.
	RowsIn, RowsOut, Bytes int64
	Removed                map[string]int64
	// Report is the de-identification run's report, when the job ran one.
	Report *report.Run
}

// RunFunc runs one job once. It must stop promptly, publishing nothing,
// when ctx is cancelled.
type RunFunc func(ctx context.Context, job *rules.JobDecl) (*Result, error)

// Outcomes of a run, the outcome label of deid_job_runs_total.
const (
	OutcomeSuccess     = "success"
	OutcomeFailure     = "failure"
	OutcomeSkipped     = "skipped"     // the previous run was still going
	OutcomeLocked      = "locked"      // another process holds the job's lock
	OutcomeUnsupported = "unsupported" // no runner for the job's kind
	OutcomePanic       = "panic"
	OutcomeAborted     = "aborted" // cancelled, e.g. at shutdown
)

// Options configure a Scheduler.
type Options struct {
	// Runners run each kind of job: rules.JobDeidentify, rules.JobRetain.
	// A "both" job runs retain, then deidentify.
	Runners map[string]RunFunc
	// Logger receives the scheduler's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics; nil means none are exported.
	Registerer prometheus.Registerer
	// LockTTL is the lease of job locks (default 2 minutes); the lock is
	// renewed every third of it while the job runs. Zero TTL with NoLock
	// unset means the default.
	LockTTL time.Duration
	// NoLock runs jobs without locks (tests of the scheduler alone).
	NoLock bool
	// Store holds the locks of jobs whose output is on object storage
	// (gs://); nil means a storage.Router with the default stores. Locks
	// on local outputs are files (FileLock).
	Store storage.Store
	// Location is the zone of schedules without CRON_TZ; nil means UTC.
	Location *time.Location
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Scheduler runs a policy's jobs.
type Scheduler struct {
	policy  *rules.Policy
	opt     Options
	log     *slog.Logger
	metrics *metrics
	cron    *cron.Cron
	owner   string

	// base is the parent of every run's context; abort cancels it
	base  context.Context
	abort context.CancelFunc

	// inflight counts runs going, scheduled or not
	inflight sync.WaitGroup

	mu       sync.Mutex
	jobs     map[string]*jobState
	order    []string
	started  bool
	stopping bool
}

// jobState is what the scheduler knows of one job.
type jobState struct {
	decl    *rules.JobDecl
	entry   cron.EntryID
	running bool
	start   time.Time
	last    *Run
	lastOK  *Run
	wrapped cron.Job // the job as cron runs it: skip, recover, run
}

// Run describes one finished run, as /jobs shows it.
type Run struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Seconds  float64   `json:"seconds"`
	Outcome  string    `json:"outcome"`
	Error    string    `json:"error,omitempty"`
	RunID    string    `json:"run_id,omitempty"`
	Reports  []string  `json:"reports,omitempty"`
}

// New returns a scheduler for the policy's jobs; Start starts it.
func New(policy *rules.Policy, opt Options) (*Scheduler, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.LockTTL <= 0 {
		opt.LockTTL = 2 * time.Minute
	}
	if opt.Store == nil {
		opt.Store = storage.NewRouter()
	}
	host, _ := os.Hostname()
	s := &Scheduler{policy: policy, opt: opt, log: opt.Logger, metrics: newMetrics(opt.Registerer),
		jobs: map[string]*jobState{}, owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomSuffix())}
	s.base, s.abort = context.WithCancel(context.Background())
	cl := cronLogger{log: s.log}
	s.cron = cron.New(cron.WithParser(scheduleParser{}), cron.WithLocation(opt.Location), cron.WithLogger(cl))
	for _, j := range policy.Jobs {
		st := &jobState{decl: j}
		// the wrappers of cron.WithChain(cron.SkipIfStillRunning(l),
		// cron.Recover(l)), in that order, built per job so that a skip is
		// logged and counted under the job's name
		jl := cronLogger{log: s.log.With("job", j.Name), onSkip: func() { s.skipped(j) }}
		st.wrapped = cron.NewChain(cron.SkipIfStillRunning(jl), cron.Recover(jl)).Then(cron.FuncJob(func() { s.scheduled(j) }))
		id, err := s.cron.AddJob(j.Schedule, st.wrapped)
		if err != nil {
			return nil, fmt.Errorf("job %s: schedule %q (%s): %w", j.Name, j.Schedule, j.SchedulePos, err)
		}
		st.entry = id
		s.jobs[j.Name] = st
		s.order = append(s.order, j.Name)
		s.metrics.declare(j.Name)
	}
	return s, nil
}

// scheduleParser parses schedules as the policy language does.
type scheduleParser struct{}

func (scheduleParser) Parse(spec string) (cron.Schedule, error) { return rules.ParseSchedule(spec) }

// cronLogger adapts slog to cron.Logger and counts skips.
type cronLogger struct {
	log    *slog.Logger
	onSkip func()
}

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		if l.onSkip != nil {
			l.onSkip()
		}
		l.log.Warn("run skipped: the previous run of this job is still going")
		return
	}
	l.log.Debug("cron: "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "error", err)...)
}

// Start starts running jobs on their schedules.
func (s *Scheduler) Start() {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	s.cron.Start()
	for _, name := range s.order {
		s.log.Info("job scheduled", "job", name, "schedule", s.jobs[name].decl.Schedule, "next", s.cron.Entry(s.jobs[name].entry).Next)
	}
}

// Ready reports whether the scheduler runs and is not stopping.
func (s *Scheduler) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started && !s.stopping
}

// Stop stops taking new runs and waits for running ones to finish for at
// most grace; then it cancels them and waits up to abortWait for them to
// clean up. It returns an error matching ErrAborted if a run was cancelled.
func (s *Scheduler) Stop(grace, abortWait time.Duration) error {
	s.mu.Lock()
	s.stopping = true
	running := s.runningLocked()
	s.mu.Unlock()
	cronDone := s.cron.Stop().Done()
	done := make(chan struct{})
	go func() { <-cronDone; s.inflight.Wait(); close(done) }()
	if len(running) > 0 {
		s.log.Info("stopping: no new runs; waiting for running jobs", "jobs", running, "grace", grace)
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	s.mu.Lock()
	running = s.runningLocked()
	s.mu.Unlock()
	if len(running) == 0 { // finished just as the grace period ended
		<-done
		return nil
	}
	s.log.Warn("grace period over: aborting running jobs; nothing they staged is published", "jobs", running)
	s.abort()
	select {
	case <-done:
	case <-time.After(abortWait):
		s.log.Error("running jobs did not stop after the abort; exiting anyway (nothing was published: staging is left for the next run to replace)", "jobs", running)
	}
	return fmt.Errorf("%w: %v", ErrAborted, running)
}

func (s *Scheduler) runningLocked() []string {
	var out []string
	for _, name := range s.order {
		if s.jobs[name].running {
			out = append(out, name)
		}
	}
	return out
}

// scheduled is one scheduled trigger of job j.
func (s *Scheduler) scheduled(j *rules.JobDecl) {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return
	}
	if _, err := s.RunJob(s.base, j.Name); err != nil {
		s.log.Error("job failed", "job", j.Name, "error", err)
	}
}

// skipped counts an overlapping trigger of job j.
func (s *Scheduler) skipped(j *rules.JobDecl) {
	s.metrics.runs.WithLabelValues(j.Name, OutcomeSkipped).Inc()
}

// RunJob runs the named job once, now, under its lock, and records the
// outcome. It is what `deid run --job` calls, and what each scheduled
// trigger calls.
func (s *Scheduler) RunJob(ctx context.Context, name string) (res *Result, err error) {
	s.mu.Lock()
	st := s.jobs[name]
	if st == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("no job named %q in the policy%s", name, s.jobHint())
	}
	st.running, st.start = true, s.opt.Clock()
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	j := st.decl
	log := s.log.With("job", name)
	started := st.start
	outcome := OutcomeFailure
	defer func() {
		if p := recover(); p != nil {
			s.finish(st, started, OutcomePanic, fmt.Errorf("panic: %v", p), nil)
			log.Error("job panicked", "panic", p, "stack", string(debug.Stack()))
			panic(p) // cron.Recover logs it and keeps the scheduler alive
		}
		s.finish(st, started, outcome, err, res)
	}()

	lock, err := s.lock(ctx, j)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			outcome = OutcomeLocked
		}
		return nil, err
	}
	if lock != nil {
		defer func() {
			if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
				log.Warn("job lock could not be released: it expires with its lease", "error", err)
			}
		}()
		stopRenew := s.renew(ctx, lock, log)
		defer stopRenew()
	}
	log.Info("job starting", "what", j.What)
	res, err = s.runKinds(ctx, j)
	switch {
	case err == nil:
		outcome = OutcomeSuccess
	case errors.Is(err, ErrUnsupported):
		outcome = OutcomeUnsupported
	case ctx.Err() != nil:
		outcome = OutcomeAborted
	}
	return res, err
}

func (s *Scheduler) runKinds(ctx context.Context, j *rules.JobDecl) (*Result, error) {
	kinds := []string{j.What}
	if j.What == rules.JobBoth {
		kinds = []string{rules.JobRetain, rules.JobDeidentify}
	}
	// check every kind is available before running any
	for _, k := range kinds {
		if s.opt.Runners[k] == nil {
			return nil, fmt.Errorf("job %s: %s is %w (it arrives with `deid %s`): run it another way meanwhile", j.Name, k, ErrUnsupported, k)
		}
	}
	total := &Result{Removed: map[string]int64{}}
	for _, k := range kinds {
		r, err := s.opt.Runners[k](ctx, j)
		if r != nil {
			total.RunID = r.RunID
			if r.Report != nil {
				total.Report = r.Report
			}
			total.Reports = append(total.Reports, r.Reports...)
			total.RowsIn += r.RowsIn
			total.RowsOut += r.RowsOut
			total.Bytes += r.Bytes
			for reason, n := range r.Removed {
				total.Removed[reason] += n
			}
		}
		if err != nil {
			return total, fmt.Errorf("job %s (%s): %w", j.Name, k, err)
		}
	}
	return total, nil
}

// lock takes the job's lock in its first destination's output, or returns
// nil when locks are off.
func (s *Scheduler) lock(ctx context.Context, j *rules.JobDecl) (Lock, error) {
	if s.opt.NoLock {
		return nil, nil
	}
	output := ""
	names := j.Destinations
	for _, d := range s.policy.Destinations {
		if len(names) == 0 || contains(names, d.Name) {
			output = d.Output
			break
		}
	}
	if output == "" {
		return nil, fmt.Errorf("job %s: no destination to hold its lock", j.Name)
	}
	l, err := NewLock(s.opt.Store, output, j.Name, s.owner, s.opt.LockTTL, s.opt.Clock)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", j.Name, err)
	}
	if err := l.Acquire(ctx); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.Name, err)
	}
	return l, nil
}

// renew renews the lock's lease every third of its TTL until stopped.
func (s *Scheduler) renew(ctx context.Context, l Lock, log *slog.Logger) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.opt.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := l.Renew(context.WithoutCancel(ctx)); err != nil {
					log.Error("job lock lease could not be renewed", "error", err)
				}
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Scheduler) jobHint() string {
	if len(s.order) == 0 {
		return " (it declares no jobs: add a jobs: list)"
	}
	names := append([]string(nil), s.order...)
	sort.Strings(names)
	return fmt.Sprintf(" (declared: %v)", names)
}

// finish records a run's outcome in the job's state and the metrics.
func (s *Scheduler) finish(st *jobState, started time.Time, outcome string, err error, res *Result) {
	end := s.opt.Clock()
	run := &Run{Started: started.UTC(), Finished: end.UTC(), Seconds: end.Sub(started).Seconds(), Outcome: outcome}
	if err != nil {
		run.Error = err.Error()
	}
	if res != nil {
		run.RunID, run.Reports = res.RunID, res.Reports
	}
	s.mu.Lock()
	st.running = false
	st.last = run
	if outcome == OutcomeSuccess {
		st.lastOK = run
	}
	s.mu.Unlock()
	name := st.decl.Name
	s.metrics.runs.WithLabelValues(name, outcome).Inc()
	if outcome == OutcomeLocked || outcome == OutcomeUnsupported {
		return
	}
	s.metrics.duration.WithLabelValues(name, outcome).Observe(run.Seconds)
	if res != nil {
		s.metrics.rowsIn.WithLabelValues(name).Add(float64(res.RowsIn))
		s.metrics.rowsOut.WithLabelValues(name).Add(float64(res.RowsOut))
		s.metrics.bytes.WithLabelValues(name).Add(float64(res.Bytes))
		for reason, n := range res.Removed {
			s.metrics.removed.WithLabelValues(name, reason).Add(float64(n))
		}
	}
	if outcome == OutcomeSuccess {
		s.metrics.lastSuccess.WithLabelValues(name).Set(float64(end.Unix()))
		s.log.Info("job succeeded", "job", name, "seconds", run.Seconds, "run_id", run.RunID)
	}
}

// Deidentify returns the runner of deidentify jobs: it compiles the policy
// for the current instant (read once per run; keys are loaded afresh, so a
// rotated key is picked up), restricted to the job's destinations, and runs
// the pipeline with opt. lookup resolves environment references in keys.
// The policy's locations are checked again first, links resolved, as a
// command checks them when it starts.
func Deidentify(policy *rules.Policy, opt pipeline.Options, lookup rules.LookupEnv, clock func() time.Time) RunFunc {
	if clock == nil {
		clock = time.Now
	}
	return func(ctx context.Context, job *rules.JobDecl) (*Result, error) {
		// links may have moved since serve started: an output over a source is refused
		if err := policy.CheckLocations(); err != nil {
			return nil, err
		}
		plan, err := rules.Compile(policy, rules.CompileOptions{Now: clock().UTC(), Lookup: lookup, Destinations: job.Destinations})
		if err != nil {
			return nil, err
		}
		o := opt
		o.RunID = ""
		if o.Logger != nil {
			o.Logger = o.Logger.With("job", job.Name)
		}
		rep, err := pipeline.Run(ctx, plan, o)
		if err == nil && rep != nil {
			// deid verify's checks on what this run published; the result is
			// written beside each report (verify.json) and a finding fails the
			// job, so an alert fires before anyone consumes the outputs
			err = verifyRun(ctx, plan, o, rep.RunID)
		}
		res := &Result{Removed: map[string]int64{}, Report: rep}
		if rep != nil {
			res.RunID = rep.RunID
			for _, d := range rep.Datasets {
				res.RowsIn += d.RowsIn
				for reason, n := range d.Removed {
					res.Removed[reason] += n
				}
			}
			for _, d := range rep.Destinations {
				res.RowsOut += d.RowsOut
				res.Bytes += d.Bytes
				for reason, n := range d.Removed {
					res.Removed[reason] += n
				}
				if err == nil && d.NotCommitted == "" {
					res.Reports = append(res.Reports, storage.Join(d.Output, output.ReportsDir, rep.RunID, "report.json"))
				}
			}
		}
		return res, err
	}
}

// verifyRun runs deid verify on the files run runID published.
func verifyRun(ctx context.Context, plan *rules.Plan, opt pipeline.Options, runID string) error {
	res, err := verify.Outputs(ctx, plan, verify.Options{Store: opt.Store, Mem: opt.Mem, Logger: opt.Logger,
		BatchSize: opt.BatchSize, Workers: opt.Workers, ScratchDir: opt.ScratchDir, RunID: runID})
	if err != nil {
		return fmt.Errorf("verify run %s: %w", runID, err)
	}
	if !res.OK() {
		var n int
		for _, d := range res.Destinations {
			n += len(d.Findings)
		}
		return fmt.Errorf("verify run %s: %d findings in the published outputs (see verify.json beside each report): %w", runID, n, output.ErrCheck)
	}
	return nil
}
