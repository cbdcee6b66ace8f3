package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer the watcher's goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const testGrace = 40 * time.Millisecond

// TestShutdownHoldsTheExitDuringACommit: after SIGTERM the process exits
// when the grace is over or on a second signal, as before, unless a commit
// (a publish) is open: then it exits once the commit ends, on a third
// signal, or after the commit wait. Timers only fire late, so the lower
// bounds on the exit's time are exact.
func TestShutdownHoldsTheExitDuringACommit(t *testing.T) {
	cases := []struct {
		name       string
		hold       bool          // a commit is open when the signals come
		endAt      time.Duration // when it ends; 0: never
		signals    int
		lateSignal time.Duration // one more signal then; 0: none
		commitWait time.Duration
		notBefore  time.Duration // the exit comes no earlier
		want       []string      // on stderr, in order
	}{
		{"grace over, no publish", false, 0, 1, 0, time.Minute, testGrace,
			[]string{"SIGTERM: stopping", "exiting anyway; nothing staged is published"}},
		{"second signal, no publish", false, 0, 2, 0, time.Minute, 0,
			[]string{"second signal (SIGTERM): exiting at once; nothing staged is published"}},
		{"a publish that ended before the grace", true, 10 * time.Millisecond, 1, 0, time.Minute, testGrace,
			[]string{"exiting anyway; nothing staged is published"}},
		{"grace over during a publish: exits when it ends", true, 100 * time.Millisecond, 1, 0, time.Minute, 100 * time.Millisecond,
			[]string{"finishing the publish under way, then exiting (at most 1m0s more", "the publish under way has ended: exiting"}},
		{"second signal during a publish: waits for it", true, 80 * time.Millisecond, 2, 0, time.Minute, 80 * time.Millisecond,
			[]string{"second signal (SIGTERM): waiting for the publish under way to end", "the publish under way has ended: exiting"}},
		{"third signal during a publish: exits at once", true, 0, 3, 0, time.Minute, 0,
			[]string{"waiting for the publish under way to end", "SIGTERM again: exiting at once; the publish under way is cut short"}},
		{"another signal after the grace, during a publish", true, 0, 1, testGrace + 30*time.Millisecond, time.Minute, testGrace,
			[]string{"finishing the publish under way", "SIGTERM again: exiting at once"}},
		{"a publish past the commit wait", true, 0, 1, 0, 60 * time.Millisecond, testGrace + 60*time.Millisecond,
			[]string{"finishing the publish under way", "a publish still under way 60ms after the grace: exiting anyway"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr lockedBuffer
			codes := make(chan int, 1)
			s := newShutdown(&stderr, func(code int) { codes <- code }, testGrace, c.commitWait)
			sigs := make(chan os.Signal, 3)
			ctx, stop := s.watch(context.Background(), sigs)
			defer stop()
			start := time.Now()
			if c.hold {
				end := s.critical()
				if c.endAt > 0 {
					time.AfterFunc(c.endAt, end)
				}
			}
			if c.lateSignal > 0 {
				time.AfterFunc(c.lateSignal, func() { sigs <- syscall.SIGTERM })
			}
			for i := 0; i < c.signals; i++ {
				sigs <- syscall.SIGTERM
			}
			select {
			case code := <-codes:
				if code != exitOther {
					t.Errorf("exit status %d, want %d", code, exitOther)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no exit within 5s; stderr:\n%s", stderr.String())
			}
			if d := time.Since(start); d < c.notBefore {
				t.Errorf("exited after %s, before %s", d, c.notBefore)
			}
			if ctx.Err() == nil {
				t.Error("the first signal did not cancel the context")
			}
			out := stderr.String()
			rest := out
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestShutdownStartsNoCommitOnceExiting: once the watcher has decided to
// exit, a commit asked for waits for the exit (with os.Exit, for ever)
// instead of starting to be cut.
func TestShutdownStartsNoCommitOnceExiting(t *testing.T) {
	var stderr lockedBuffer
	exiting, release := make(chan struct{}), make(chan struct{})
	s := newShutdown(&stderr, func(int) { close(exiting); <-release }, testGrace, time.Minute)
	sigs := make(chan os.Signal, 2)
	_, stop := s.watch(context.Background(), sigs)
	defer stop()
	sigs <- syscall.SIGINT
	sigs <- syscall.SIGINT
	<-exiting
	opened := make(chan struct{})
	go func() { s.critical()(); close(opened) }()
	select {
	case <-opened:
		t.Fatal("a commit started while the process exits")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-opened:
	case <-time.After(5 * time.Second):
		t.Fatal("critical still blocked after exit returned")
	}
}

// TestShutdownStopWaitsForACommit: a command that returns while a commit
// of its own goroutines is open (deid serve giving up on a job) does not
// end the process before the commit, at most the commit wait.
func TestShutdownStopWaitsForACommit(t *testing.T) {
	for _, c := range []struct {
		name       string
		commitWait time.Duration
		end        bool
		want       string
	}{
		{"the commit ends", time.Minute, true, "waiting for the publish under way to end (at most 1m0s)"},
		{"the commit wait is over", 30 * time.Millisecond, false, "a publish still under way after 30ms: exiting anyway"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr lockedBuffer
			s := newShutdown(&stderr, func(int) { t.Error("exit called without a signal") }, testGrace, c.commitWait)
			_, stop := s.watch(context.Background(), make(chan os.Signal))
			defer stop()
			end := s.critical()
			drained := make(chan struct{})
			go func() { s.drain(); close(drained) }()
			select {
			case <-drained:
				if c.end {
					t.Fatal("drain returned while a commit was open")
				}
			case <-time.After(50 * time.Millisecond):
				if !c.end {
					t.Fatal("drain still waiting after the commit wait")
				}
			}
			end()
			end() // a second end changes nothing
			<-drained
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, stderr.String())
			}
			s.drain() // nothing open: returns at once
		})
	}
}

// TestShutdownOutsideWatchSignals: a context without a shutdown (tests,
// library callers) gives no Critical option, and a nil shutdown opens
// nothing and keeps no grace.
func TestShutdownOutsideWatchSignals(t *testing.T) {
	if criticalOf(context.Background()) != nil {
		t.Error("criticalOf a bare context is not nil")
	}
	var s *shutdown
	s.setGrace(time.Second)
	s.critical()()
	w := newShutdown(&lockedBuffer{}, func(int) {}, testGrace, time.Minute)
	ctx, stop := w.watch(context.Background(), make(chan os.Signal))
	defer stop()
	if shutdownOf(ctx) != w || criticalOf(ctx) == nil {
		t.Error("the watched context does not carry its shutdown")
	}
	shutdownOf(ctx).setGrace(time.Hour)
	if got := time.Duration(w.grace.Load()); got != time.Hour {
		t.Errorf("grace %s after setGrace(1h)", got)
	}
}
