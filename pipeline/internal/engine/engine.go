// Package engine is the one scheduler of deid run and deid retain: it runs
// the row-group tasks of files on a pool of workers and splices each task's
// pieces (an encoded part, or row groups of the source copied byte for
// byte) into the file's outputs in row-group order as they finish, so that
// when a file's last task ends only its part and the footer are left to
// write. A File says what its tasks compute, where its outputs go and what
// finishing it means; the engine knows nothing of policies, stores or
// reports. It never imports pipeline, retain, storage, rules or transforms.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
)

// Piece is what one row-group task gives one output: an encoded part,
// spliced whole (or streamed in as it was encoded) and then freed, or, with
// RowGroups, only those of its row groups copied (Splicer.AddRowGroups);
// or row groups of Source copied byte for byte (with none, Source only
// gives the output its footer, when it is the output's first piece). The
// zero Piece adds nothing.
type Piece struct {
	Part      *scratch.Part
	Source    parquetio.Part
	RowGroups []int
}

func (p Piece) empty() bool { return p.Part == nil && p.Source == nil }

// discard frees p's part, if any.
func (p Piece) discard() {
	if p.Part != nil {
		p.Part.Discard()
	}
}

// Output is one output file being spliced.
type Output interface {
	// Splicer is where the output's pieces go.
	Splicer() *parquetio.Splicer
	// Abort discards the unfinished output.
	Abort()
	// Name names the output in errors ("output for partners").
	Name() string
}

// Head is what a streaming task's part writer calls, for output oi, to
// learn whether it may stream into the output as it encodes: it returns
// the output's splicer once the task's row group is the next to splice and
// no other task is splicing, else nil. Until that part is done no other
// part can be spliced into that output.
type Head func(oi int) func() *parquetio.Splicer

// File is the work on one file: one task per row group, then Finish.
type File struct {
	// Name names the file in errors.
	Name string
	// RowGroups is the number of tasks; Outputs the number of outputs.
	RowGroups, Outputs int
	// Task computes row group rg's pieces, one per output (a shorter slice
	// leaves the rest empty). head is nil unless Stream is set.
	Task   func(ctx context.Context, rg int, head Head) ([]Piece, error)
	Stream bool
	// InOrder, when set, is called for every row group in row-group order,
	// one at a time, after its task and before its pieces are spliced, and
	// may replace them: work that must see the rows in order (a writer
	// shared by the file's row groups). Not with Stream.
	InOrder func(ctx context.Context, rg int, pieces []Piece) ([]Piece, error)
	// Open creates output oi, when its first piece comes.
	Open func(ctx context.Context, oi int) (Output, error)
	// Finish ends the file once every row group is spliced; outs[oi] is nil
	// for an output that received no piece. Finish owns outs: it commits or
	// aborts each. It may return the file's next stage, whose tasks run
	// before those of files not yet started.
	Finish func(ctx context.Context, outs []Output) (next *File, err error)
}

// Pool runs files' tasks on Workers goroutines.
type Pool struct {
	// Workers is the number of tasks run at once (at least 1).
	Workers int
	busy    atomic.Int32
}

// Busy returns the number of tasks running.
func (p *Pool) Busy() int { return int(p.busy.Load()) }

// task is one row group of one file's stage.
type task struct {
	st *state
	rg int
}

// Run runs every file's tasks, and those of the stages they return, then
// returns: nil, or the first error (every unfinished output aborted and
// every unspliced part discarded). Files start in order, each once the
// tasks of those before it have all started, so that only about Workers
// files are open at once.
func (p *Pool) Run(ctx context.Context, files []*File) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := &sched{ctx: ctx, files: files}
	s.cond = sync.NewCond(&s.mu)
	var wg sync.WaitGroup
	for range max(p.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t, ok := s.take()
				if !ok {
					return
				}
				p.busy.Add(1)
				err := t.st.run(ctx, s, t.rg)
				p.busy.Add(-1)
				s.done(err, cancel)
			}
		}()
	}
	wg.Wait()
	for _, st := range s.started {
		st.abort()
	}
	if s.err != nil {
		return s.err
	}
	return context.Cause(ctx)
}

// sched is a Run's queue: the tasks of started files, in order, and the
// files not yet started.
type sched struct {
	ctx     context.Context
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []task
	files   []*File
	pending int      // next file to start
	running int      // tasks taken and not done
	started []*state // every stage started, to abort on failure
	err     error
}

// take returns the next task, starting the next file when the queue is
// empty, or false when nothing is left or the run failed.
func (s *sched) take() (task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.err != nil || s.ctx.Err() != nil {
			return task{}, false
		}
		if len(s.queue) > 0 {
			t := s.queue[0]
			s.queue = s.queue[1:]
			s.running++
			return t, true
		}
		if s.pending < len(s.files) {
			f := s.files[s.pending]
			s.pending++
			s.startLocked(f, false)
			continue
		}
		if s.running == 0 {
			s.cond.Broadcast()
			return task{}, false
		}
		s.cond.Wait() // a running task may finish a file with a next stage
	}
}

// startLocked queues f's tasks (first, for a next stage), or, for a file
// without row groups, one task that only finishes it.
func (s *sched) startLocked(f *File, first bool) {
	st := newState(f)
	s.started = append(s.started, st)
	var ts []task
	if f.RowGroups == 0 {
		ts = []task{{st: st, rg: -1}}
	}
	for rg := range f.RowGroups {
		ts = append(ts, task{st: st, rg: rg})
	}
	if first {
		s.queue = append(ts, s.queue...)
	} else {
		s.queue = append(s.queue, ts...)
	}
}

// done records a task's end: its error, or the next stage its file
// returned (st.next).
func (s *sched) done(err error, cancel context.CancelCauseFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	if err != nil && s.err == nil {
		s.err = err
		cancel(err)
	}
	s.cond.Broadcast()
}

// next queues the next stage of a finished file.
func (s *sched) next(f *File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked(f, true)
	s.cond.Broadcast()
}

// state collects a stage's pieces until they are spliced.
type state struct {
	f *File

	mu     sync.Mutex
	pieces [][]Piece // per row group, until spliced
	done   []bool
	left   int
	next   int  // the first row group not yet spliced
	failed bool // a splice failed: nothing more is spliced or finished

	// appendMu is held by the one task splicing; outs are the outputs,
	// nil until their first piece, then nil again once Finish owns them
	appendMu sync.Mutex
	outs     []Output
}

func newState(f *File) *state {
	return &state{f: f, pieces: make([][]Piece, f.RowGroups), done: make([]bool, f.RowGroups), left: f.RowGroups,
		outs: make([]Output, f.Outputs)}
}

// run runs row group rg's task (rg -1: a file without row groups), splices
// what is ready and, after the last, finishes the file.
func (st *state) run(ctx context.Context, s *sched, rg int) error {
	if rg >= 0 {
		var head Head
		if st.f.Stream {
			head = st.head(ctx, rg)
		}
		var pieces []Piece
		err := st.call(rg, func() (err error) {
			pieces, err = st.f.Task(ctx, rg, head)
			return err
		})
		if err != nil {
			for _, p := range pieces {
				p.discard()
			}
			return err
		}
		if len(pieces) > st.f.Outputs {
			discardAll(pieces)
			return fmt.Errorf("%s: row group %d: %d pieces for %d outputs", st.f.Name, rg, len(pieces), st.f.Outputs)
		}
		st.mu.Lock()
		st.pieces[rg], st.done[rg] = pieces, true
		st.left--
		last := st.left == 0
		st.mu.Unlock()
		if err := st.splice(ctx, last); err != nil {
			return err
		}
		if !last {
			return nil
		}
	}
	st.appendMu.Lock()
	outs := st.outs
	st.outs = make([]Output, len(outs))
	st.appendMu.Unlock()
	st.mu.Lock()
	failed := st.failed
	st.mu.Unlock()
	if failed {
		for _, o := range outs {
			if o != nil {
				o.Abort()
			}
		}
		return nil // the failed splice reported its error
	}
	var next *File
	err := st.call(-1, func() (err error) {
		next, err = st.f.Finish(ctx, outs)
		return err
	})
	if errors.Is(err, ErrInternal) {
		// Finish owned the outputs and did not get to say what became of
		// them: abort them (aborting one it committed does nothing)
		for _, o := range outs {
			if o != nil {
				o.Abort()
			}
		}
	}
	if err == nil && next != nil {
		s.next(next)
	}
	return err
}

// ErrInternal is matched by the error of a panic in a file's work: a bug.
var ErrInternal = errors.New("internal error (a bug in deid: please report it with the log)")

// call runs fn, one of the file's Task, InOrder or Finish (rg -1), and
// turns a panic in it into an error naming the file and row group: a bug
// met in one file's work fails the run as any error does, its outputs
// aborted, instead of killing the process with its staging left behind.
// The stack goes to the log.
func (st *state) call(rg int, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			stack := debug.Stack()
			if cp, ok := r.(*parquetio.CallerPanic); ok { // raised in a reader's callback
				r, stack = cp.Value, cp.Stack
			}
			slog.Error("internal error", "file", st.f.Name, "row_group", rg, "panic", fmt.Sprint(r), "stack", string(stack))
			where := st.f.Name
			if rg >= 0 {
				where = fmt.Sprintf("%s: row group %d", where, rg)
			}
			err = fmt.Errorf("%s: %w: %v", where, ErrInternal, r)
		}
	}()
	return fn()
}

// splice splices the finished row groups that follow those already
// spliced. One task splices at a time; a task that finds another splicing
// leaves its pieces to it, unless wait is set (the file's last task, which
// must see every piece spliced).
func (st *state) splice(ctx context.Context, wait bool) error {
	for {
		if wait {
			st.appendMu.Lock()
		} else if !st.appendMu.TryLock() {
			return nil // the task splicing re-checks for ready pieces when it is done
		}
		err := st.spliceReady(ctx)
		if err != nil {
			st.mu.Lock()
			st.failed = true
			st.mu.Unlock()
		}
		st.appendMu.Unlock()
		if err != nil {
			return err
		}
		st.mu.Lock()
		more := !st.failed && st.next < len(st.done) && st.done[st.next]
		st.mu.Unlock()
		if !more {
			return nil
		}
	}
}

// spliceReady splices the finished row groups from st.next on; the caller
// holds st.appendMu.
func (st *state) spliceReady(ctx context.Context) error {
	for {
		st.mu.Lock()
		rg := st.next
		ready := !st.failed && rg < len(st.done) && st.done[rg]
		var pieces []Piece
		if ready {
			pieces, st.pieces[rg] = st.pieces[rg], nil
		}
		st.mu.Unlock()
		if !ready {
			return nil
		}
		if st.f.InOrder != nil {
			var err error
			given := pieces
			if err = st.call(rg, func() (err error) {
				pieces, err = st.f.InOrder(ctx, rg, pieces)
				return err
			}); err != nil {
				discardAll(given)
				discardAll(pieces)
				return err
			}
		}
		for oi, p := range pieces {
			if err := st.add(ctx, oi, p); err != nil {
				discardAll(pieces[oi+1:])
				return err
			}
		}
		st.mu.Lock()
		st.next++
		st.mu.Unlock()
	}
}

// add splices piece p into output oi, opening it first, then frees p.
func (st *state) add(ctx context.Context, oi int, p Piece) error {
	defer p.discard()
	if p.empty() {
		return nil
	}
	if err := st.open(ctx, oi); err != nil {
		return err
	}
	out := st.outs[oi]
	sp := out.Splicer()
	var err error
	switch {
	case p.Part != nil && p.RowGroups != nil:
		err = sp.AddRowGroups(p.Part, p.RowGroups)
	case p.Part != nil:
		if streamedTo, start := p.Part.Streamed(); streamedTo != nil {
			if streamedTo != sp {
				err = errors.New("a part streamed into another output")
			} else {
				err = sp.AddStreamed(p.Part, start)
			}
		} else {
			err = sp.Add(p.Part)
		}
	default:
		err = sp.AddRowGroups(p.Source, p.RowGroups)
	}
	if err != nil {
		return fmt.Errorf("%s: assemble %s: %w", st.f.Name, out.Name(), err)
	}
	return nil
}

// open creates output oi on its first piece; the caller holds appendMu.
func (st *state) open(ctx context.Context, oi int) error {
	if st.outs[oi] != nil {
		return nil
	}
	out, err := st.f.Open(ctx, oi)
	if err != nil {
		return err
	}
	st.outs[oi] = out
	return nil
}

// head returns Head for row group rg's task.
func (st *state) head(ctx context.Context, rg int) Head {
	next := func() int {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.next
	}
	return func(oi int) func() *parquetio.Splicer {
		return func() *parquetio.Splicer {
			if next() != rg || !st.appendMu.TryLock() {
				return nil
			}
			defer st.appendMu.Unlock()
			if next() != rg || st.open(ctx, oi) != nil {
				return nil // an error to open waits for the part's splice to report it
			}
			return st.outs[oi].Splicer()
		}
	}
}

// abort discards, after a failure, the stage's unfinished outputs and
// unspliced pieces. Finished stages have nothing left.
func (st *state) abort() {
	st.appendMu.Lock()
	defer st.appendMu.Unlock()
	for i, out := range st.outs {
		if out != nil {
			out.Abort()
			st.outs[i] = nil
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for rg, pieces := range st.pieces {
		discardAll(pieces)
		st.pieces[rg] = nil
	}
}

func discardAll(pieces []Piece) {
	for _, p := range pieces {
		p.discard()
	}
}
