package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/deidproject/deid/pipeline/schedule"
	"github.com/deidproject/deid/rules"
)

// defaultShutdownGrace is how long a command may go on after the first
// SIGINT or SIGTERM cancelled its context before the process exits anyway.
// A command blocked in a system call (a write to a pipe nobody reads, a read
// from a hung file system) does not see the context; nothing it staged is
// published, since publishing is the last, atomic step.
const defaultShutdownGrace = 5 * time.Second

// shutdownGrace holds the current grace in nanoseconds; deid serve raises it
// to its own --grace and --abort-wait plus a margin, so that its graceful
// shutdown keeps working.
var shutdownGrace atomic.Int64

func init() { shutdownGrace.Store(int64(defaultShutdownGrace)) }

// setShutdownGrace sets how long the process may go on after the first
// signal.
func setShutdownGrace(d time.Duration) { shutdownGrace.Store(int64(d)) }

// watchSignals returns a context cancelled by the first SIGINT or SIGTERM.
// After that signal, the process exits with status 1 (via exit) when it has
// not finished within the shutdown grace, and at once on a second signal;
// either way it says so on stderr. stop ends the watch.
func watchSignals(stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		var first os.Signal
		select {
		case first = <-sigs:
		case <-done:
			return
		}
		cancel()
		grace := time.Duration(shutdownGrace.Load())
		fmt.Fprintf(stderr, "deid: %s: stopping (within %s; a second signal exits at once)\n", signalName(first), grace)
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "deid: second signal (%s): exiting at once; nothing staged is published\n", signalName(s))
		case <-timer.C:
			fmt.Fprintf(stderr, "deid: still running %s after %s: exiting anyway; nothing staged is published\n", grace, signalName(first))
		case <-done:
			return
		}
		exit(exitOther)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// signalName names a signal as operators know it.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// testRunGateEnv, for tests only, names a FIFO that every scheduled
// deidentify run reads to its end before it starts: the run waits in a
// system call no context reaches, as a run blocked on a hung file system
// does, until the test writes to the FIFO and closes it.
const testRunGateEnv = "DEID_TEST_RUN_GATE"

// gated holds run on the test gate when testRunGateEnv is set.
func gated(run schedule.RunFunc) schedule.RunFunc {
	gate := os.Getenv(testRunGateEnv)
	if gate == "" {
		return run
	}
	return func(ctx context.Context, job *rules.JobDecl) (*schedule.Result, error) {
		if f, err := os.Open(gate); err == nil {
			io.Copy(io.Discard, f)
			f.Close()
		}
		return run(ctx, job)
	}
}
