package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/retain"
	"github.com/deidproject/deid/pipeline/schedule"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// serveFlags are the flags of serve, on top of the run flags that shape
// each run (workers, batch size, compression, memory limit).
type serveFlags struct {
	runFlags
	addr      string
	grace     time.Duration
	abortWait time.Duration
	lockTTL   time.Duration
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := flag.NewFlagSet("deid serve", flag.ContinueOnError)
	// run's flags but those serve has no use for: each job runs with the
	// clock's time and its own destinations, without a progress bar
	all := flag.NewFlagSet("", flag.ContinueOnError)
	f.runFlags.register(all)
	copyFlags(fs, all, "now", "json", "destination", "progress")
	fs.StringVar(&f.addr, "addr", ":9090", "HTTP address for /healthz, /readyz, /metrics and /jobs (host:port; port 0 picks one, logged)")
	fs.DurationVar(&f.grace, "grace", 25*time.Second, "on SIGTERM or SIGINT, how long a running job may go on before it is aborted (nothing it staged is published)")
	fs.DurationVar(&f.abortWait, "abort-wait", 10*time.Second, "after the abort, how long to wait for the job to clean up before exiting anyway")
	fs.BoolVar(&f.force, "force", false, "reprocess every input at each run (default: incremental, skipping outputs committed from unchanged inputs)")
	fs.DurationVar(&f.lockTTL, "lock-ttl", 2*time.Minute, "lease of job locks: a lock not renewed for this long (its holder died) is taken over")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	// the process outlives its own graceful shutdown by a margin only
	shutdownOf(ctx).setGrace(f.grace + f.abortWait + 5*time.Second)
	f.progress = "never"
	opt, _, err := f.options(stderr)
	if err != nil {
		return err
	}
	opt.Incremental = !f.force
	opt.Critical = criticalOf(ctx)
	log := opt.Logger
	pol, err := f.load(log)
	if err != nil {
		return err
	}
	if len(pol.Jobs) == 0 {
		return usageError("policy %s declares no jobs: add a jobs: list (see deploy/examples/policy.yaml) or use deid run", pol.File)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, err := newScheduler(pol, opt, f.lockTTL, reg, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return usageError("--addr %s: %v", f.addr, err)
	}
	srv := &http.Server{Handler: s.Handler(reg), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "jobs", len(pol.Jobs))
	s.Start()

	select {
	case <-ctx.Done():
		log.Info("signal received: no new runs", "grace", f.grace)
	case err := <-served:
		s.Stop(0, f.abortWait)
		return fmt.Errorf("http server: %w", err)
	}
	stopErr := s.Stop(f.grace, f.abortWait)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http server did not shut down cleanly", "error", err)
	}
	if stopErr != nil {
		return stopErr
	}
	log.Info("stopped cleanly")
	return nil
}

// newScheduler builds the scheduler of the policy's jobs with their
// runners: deidentify (the pipeline) and retain (pipeline/retain). clock, when
// set, fixes each run's reference instant (deid run --job --now).
func newScheduler(pol *rules.Policy, opt pipeline.Options, lockTTL time.Duration, reg prometheus.Registerer, clock func() time.Time) (*schedule.Scheduler, error) {
	if opt.Store == nil {
		opt.Store = storage.NewRouter() // one GCS client for runs and job locks
	}
	return schedule.New(pol, schedule.Options{
		Runners: map[string]schedule.RunFunc{
			rules.JobDeidentify: gated(schedule.Deidentify(pol, opt, os.LookupEnv, clock)),
			rules.JobRetain:     schedule.Retain(pol, retain.Options{Logger: opt.Logger, Mem: opt.Mem, Store: opt.Store, Critical: opt.Critical, Workers: opt.Workers, ScratchDir: opt.ScratchDir, BatchSize: int64(opt.BatchSize)}, os.LookupEnv, clock),
		},
		Logger:     opt.Logger,
		Registerer: reg,
		Store:      opt.Store,
		LockTTL:    lockTTL,
	})
}

// runJob runs one job of the policy once, now, under its lock.
func runJob(ctx context.Context, f *runFlags, opt pipeline.Options, stdout io.Writer) error {
	if len(f.destinations) > 0 {
		return usageError("--job runs the job's own destinations: leave out --destination")
	}
	opt.Incremental = !f.force
	pol, err := f.load(opt.Logger)
	if err != nil {
		return err
	}
	if pol.Job(f.job) == nil {
		names := ""
		for _, j := range pol.Jobs {
			names += " " + j.Name
		}
		if names == "" {
			names = " none"
		}
		return usageError("--job %s: no such job in %s (jobs:%s)", f.job, pol.File, names)
	}
	var clock func() time.Time
	if f.now != "" {
		now, err := f.reference(time.Now)
		if err != nil {
			return err
		}
		clock = func() time.Time { return now }
	}
	s, err := newScheduler(pol, opt, 2*time.Minute, nil, clock)
	if err != nil {
		return err
	}
	res, err := s.RunJob(ctx, f.job)
	if errors.Is(err, schedule.ErrLocked) {
		return fmt.Errorf("%w (wait for the other run, or remove the lock file if you know its holder is gone)", err)
	}
	if err != nil {
		return err
	}
	if res.Report == nil { // a retain job: its report is stored beside the data
		fmt.Fprintf(stdout, "job %s done: run %s, %d rows scanned, removed %s\n", f.job, res.RunID, res.RowsIn, removedText(res.Removed))
		for _, r := range res.Reports {
			fmt.Fprintf(stdout, "  report %s\n", r)
		}
		return nil
	}
	if f.json {
		return printJSON(stdout, res.Report)
	}
	printSummary(stdout, res.Report)
	return nil
}

// removedText lists counts by reason in a stable order.
func removedText(m map[string]int64) string {
	reasons := make([]string, 0, len(m))
	for r, n := range m {
		if n > 0 {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) == 0 {
		return "nothing"
	}
	sort.Strings(reasons)
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s %d", r, m[r])
	}
	return strings.Join(parts, ", ")
}
