package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// defaultShutdownGrace is how long a command may go on after the first
// SIGINT or SIGTERM cancelled its context before the process exits anyway.
// A command blocked in a system call (a write to a pipe nobody reads, a read
// from a hung file system) does not see the context. Nothing it staged is
// published: a commit already under way (see shutdown.critical) is waited
// for instead.
const defaultShutdownGrace = 5 * time.Second

// defaultCommitWait is how long past the grace, or past a second signal,
// the process waits for a commit under way to end before it exits anyway.
// A publish to gs:// moves its files one at a time and can take longer than
// the grace; cut short, it would leave files replaced without a manifest
// and locks held until their lease ends.
const defaultCommitWait = 2 * time.Minute

// shutdown is how the process answers SIGINT and SIGTERM. The first signal
// cancels the commands' context. The process then exits with status 1 when
// the command has not returned within the grace, or at once on a second
// signal, unless a commit is open (critical): then it waits for the commit
// to end, at most commitWait more, and exits; another signal while it waits
// exits at once. Once it has decided to exit, no commit starts.
type shutdown struct {
	stderr     io.Writer
	exit       func(int)
	grace      atomic.Int64 // nanoseconds; serve raises it (setGrace)
	commitWait time.Duration

	mu      sync.Mutex
	open    int           // commits under way
	idle    chan struct{} // closed when open falls back to 0
	exiting bool          // exit is being called: no commit starts
	exited  chan struct{} // closed once exit returned (a test's exit does)
}

// shutdownKey is the context key of the process's shutdown.
type shutdownKey struct{}

// newShutdown returns a shutdown that calls exit once it decides to end the
// process.
func newShutdown(stderr io.Writer, exit func(int), grace, commitWait time.Duration) *shutdown {
	s := &shutdown{stderr: stderr, exit: exit, commitWait: commitWait, exited: make(chan struct{})}
	s.grace.Store(int64(grace))
	return s
}

// watchSignals returns a context cancelled by the first SIGINT or SIGTERM,
// which carries the process's shutdown (shutdownOf); see shutdown for what
// follows the signal. stop waits for a commit still under way (at most the
// commit wait), then ends the watch.
func watchSignals(stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	s := newShutdown(stderr, exit, defaultShutdownGrace, defaultCommitWait)
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, stopWatch := s.watch(context.Background(), sigs)
	return ctx, func() {
		s.drain()
		signal.Stop(sigs)
		stopWatch()
	}
}

// watch answers the signals received on sigs until stop is called; ctx,
// derived from parent, carries s and is cancelled by the first signal.
func (s *shutdown) watch(parent context.Context, sigs <-chan os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.WithValue(parent, shutdownKey{}, s))
	done := make(chan struct{})
	go func() {
		select {
		case first := <-sigs:
			cancel()
			s.afterSignal(first, sigs, done)
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		cancel()
	}
}

// afterSignal waits, after the first signal, for the grace or a second
// signal, then exits, or waits for the commits under way first.
func (s *shutdown) afterSignal(first os.Signal, sigs <-chan os.Signal, done <-chan struct{}) {
	grace := time.Duration(s.grace.Load())
	fmt.Fprintf(s.stderr, "deid: %s: stopping (within %s; a second signal exits at once, or once a publish under way has ended)\n", signalName(first), grace)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	var idle <-chan struct{}
	select {
	case sig := <-sigs:
		if idle = s.exitIfIdle(); idle == nil {
			fmt.Fprintf(s.stderr, "deid: second signal (%s): exiting at once; nothing staged is published\n", signalName(sig))
			s.exitNow()
			return
		}
		fmt.Fprintf(s.stderr, "deid: second signal (%s): waiting for the publish under way to end, then exiting (at most %s; a third signal exits at once)\n", signalName(sig), s.commitWait)
	case <-timer.C:
		if idle = s.exitIfIdle(); idle == nil {
			fmt.Fprintf(s.stderr, "deid: still running %s after %s: exiting anyway; nothing staged is published\n", grace, signalName(first))
			s.exitNow()
			return
		}
		fmt.Fprintf(s.stderr, "deid: still running %s after %s: finishing the publish under way, then exiting (at most %s more; a second signal exits at once)\n", grace, signalName(first), s.commitWait)
	case <-done:
		return
	}
	s.awaitCommits(idle, sigs, done)
}

// awaitCommits waits for the commits under way to end (idle), then exits;
// it exits anyway after the commit wait or on one more signal.
func (s *shutdown) awaitCommits(idle <-chan struct{}, sigs <-chan os.Signal, done <-chan struct{}) {
	limit := time.NewTimer(s.commitWait)
	defer limit.Stop()
	for {
		select {
		case <-idle:
			if idle = s.exitIfIdle(); idle == nil {
				fmt.Fprintln(s.stderr, "deid: the publish under way has ended: exiting")
				s.exitNow()
				return
			}
		case sig := <-sigs:
			fmt.Fprintf(s.stderr, "deid: %s again: exiting at once; the publish under way is cut short (files may be replaced without a manifest: run again)\n", signalName(sig))
			s.exitNow()
			return
		case <-limit.C:
			fmt.Fprintf(s.stderr, "deid: a publish still under way %s after the grace: exiting anyway (files may be replaced without a manifest: run again)\n", s.commitWait)
			s.exitNow()
			return
		case <-done:
			return
		}
	}
}

// exitIfIdle decides to exit when no commit is under way (it returns nil;
// the caller then calls exitNow), or returns the channel closed when the
// commits under way have ended.
func (s *shutdown) exitIfIdle() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open > 0 {
		return s.idle
	}
	s.exiting = true
	return nil
}

// exitNow ends the process, whatever is under way.
func (s *shutdown) exitNow() {
	s.mu.Lock()
	s.exiting = true
	s.mu.Unlock()
	s.exit(exitOther)
	close(s.exited)
}

// critical opens a commit that must not be cut short (pipeline.Options and
// retain.Options Critical) and returns its end: until every open commit
// has ended, a forced exit waits (see shutdown). Once the process has
// decided to exit, critical does not return before exit does (with
// os.Exit, never). A nil shutdown opens nothing.
func (s *shutdown) critical() (end func()) {
	if s == nil {
		return func() {}
	}
	s.mu.Lock()
	if s.exiting {
		s.mu.Unlock()
		<-s.exited
		return func() {}
	}
	if s.open == 0 {
		s.idle = make(chan struct{})
	}
	s.open++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.open--; s.open == 0 {
				close(s.idle)
			}
		})
	}
}

// drain waits for the commits under way to end, at most the commit wait,
// when the command returned before them (deid serve giving up on a job).
func (s *shutdown) drain() {
	s.mu.Lock()
	open, idle := s.open, s.idle
	s.mu.Unlock()
	if open == 0 {
		return
	}
	fmt.Fprintf(s.stderr, "deid: waiting for the publish under way to end (at most %s)\n", s.commitWait)
	limit := time.NewTimer(s.commitWait)
	defer limit.Stop()
	select {
	case <-idle:
	case <-limit.C:
		fmt.Fprintf(s.stderr, "deid: a publish still under way after %s: exiting anyway (files may be replaced without a manifest: run again)\n", s.commitWait)
	}
}

// setGrace sets how long the process may go on after the first signal; a
// nil shutdown ignores it.
func (s *shutdown) setGrace(d time.Duration) {
	if s != nil {
		s.grace.Store(int64(d))
	}
}

// shutdownOf returns the shutdown ctx carries (watchSignals), or nil: a nil
// shutdown opens no commits and keeps no grace.
func shutdownOf(ctx context.Context) *shutdown {
	s, _ := ctx.Value(shutdownKey{}).(*shutdown)
	return s
}

// criticalOf returns the Critical option of the pipeline and retain runs
// under ctx: the commits of its shutdown, or nil when it has none.
func criticalOf(ctx context.Context) func() (end func()) {
	if s := shutdownOf(ctx); s != nil {
		return s.critical
	}
	return nil
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
