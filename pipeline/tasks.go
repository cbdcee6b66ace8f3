package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/transforms"
)

// This file holds how a run schedules its work: one task per row group of
// each input file on a pool of workers; the file's state collects the
// tasks' parts and counts, parts are spliced into the outputs in row-group
// order as they finish, and the last task of a file completes it (counts,
// the input's SHA-256, the outputs' footers).

// task is one row group of one input file.
type task struct {
	in *inputFile
	rg int
}

// fileState collects the results of a file's tasks until the last one ends.
type fileState struct {
	mu     sync.Mutex
	file   *parquetio.File // opened by the first task, closed with the last
	left   int
	parts  [][]*scratch.Part // per output, per row group: the part, or nil
	counts [][]int64         // per row group: removed by reason, then kept
	// outCounts, per row group and output: removed by destination reason,
	// rows of unknown age, then kept
	outCounts [][][]int64
	started   time.Time
	// sum receives the file's SHA-256, hashed beside the tasks (see hash)
	sum chan hashResult

	// done marks the row groups whose parts are recorded; next is the first
	// not yet spliced into the outputs (asm, per output, nil before the
	// first part), which one task at a time does, holding appendMu
	done     []bool
	next     int
	asm      []*assembly
	appendMu sync.Mutex
}

// hashResult is a file's SHA-256 in hex, or why it could not be computed.
type hashResult struct {
	sum string
	err error
}

// hashes reports whether a run records the SHA-256 of in: when it writes
// (not in a dry run or the counting pass) and the store keeps no checksum
// of its own (local files; GCS objects have a CRC32C and a generation).
func (r *runner) hashes(in *inputFile) bool {
	return !r.dryRun && !r.counting && !in.match.HasCRC32C
}

// hash reads in once more, sequentially, for its SHA-256, and sends the
// result on the returned channel. The tasks read only the column chunks
// they need, at random, so they cannot hash the file as they go; this read
// runs beside them and mostly hits the page cache.
func (r *runner) hash(ctx context.Context, in *inputFile) chan hashResult {
	ch := make(chan hashResult, 1)
	go func() {
		rd, err := r.opt.Store.Open(ctx, in.match.Location)
		if err != nil {
			ch <- hashResult{err: err}
			return
		}
		defer rd.Close()
		if rd.Size() != in.match.Size {
			ch <- hashResult{err: fmt.Errorf("the file changed while the run was reading it (%d bytes, then %d)", in.match.Size, rd.Size())}
			return
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(rd, 0, rd.Size()), make([]byte, 1<<20)); err != nil {
			ch <- hashResult{err: err}
			return
		}
		ch <- hashResult{sum: hex.EncodeToString(h.Sum(nil))}
	}()
	return ch
}

// open returns the file, opening it on first use.
func (st *fileState) open(ctx context.Context, r *runner, in *inputFile) (*parquetio.File, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.started.IsZero() {
		st.started = r.opt.Clock()
	}
	if st.sum == nil && r.hashes(in) {
		st.sum = r.hash(ctx, in)
	}
	if st.file == nil {
		f, attrs, err := pqstore.Open(ctx, r.opt.Store, in.match.Location, r.opt.Mem)
		if err != nil {
			return nil, dataerr.Mark(err)
		}
		if attrs.Size != in.match.Size {
			f.Close()
			return nil, dataerr.Errorf(in.match.Location, "", "the file changed while the run was reading it (%d bytes, then %d)", in.match.Size, attrs.Size)
		}
		if g := attrs.Generation; g != in.match.Generation {
			f.Close()
			return nil, dataerr.Errorf(in.match.Location, "", "the object changed while the run was reading it (generation %d, then %d)", in.match.Generation, g)
		}
		st.file = f
	}
	return st.file, nil
}

// process runs every task on the worker pool; the worker that finishes a
// file's last row group assembles that file's outputs.
func (r *runner) process(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	states := map[*inputFile]*fileState{}
	var tasks []task
	defer func() {
		for _, st := range states {
			if st.file != nil {
				st.file.Close()
			}
			st.abort() // a failed run's unfinished outputs and parts
		}
	}()
	for _, in := range r.inputs {
		if r.counting && !slices.ContainsFunc(in.outputs, func(o *fileOutput) bool { return o.classes != nil }) {
			continue
		}
		st := &fileState{left: len(in.rgRows), counts: make([][]int64, len(in.rgRows)), outCounts: make([][][]int64, len(in.rgRows)),
			done: make([]bool, len(in.rgRows)), asm: make([]*assembly, len(in.outputs))}
		for range in.outputs {
			st.parts = append(st.parts, make([]*scratch.Part, len(in.rgRows)))
		}
		states[in] = st
		for rg := range in.rgRows {
			tasks = append(tasks, task{in: in, rg: rg})
		}
		if len(in.rgRows) == 0 && !r.counting {
			// a file without row groups still gets (empty) outputs
			if err := r.finishFile(ctx, in, st); err != nil {
				return err
			}
		}
	}
	ch := make(chan task)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	fail := func(err error) {
		once.Do(func() {
			firstErr = err
			cancel(err)
		})
	}
	for w := 0; w < r.opt.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range ch {
				if ctx.Err() != nil {
					continue
				}
				r.busy.Add(1)
				err := r.runTask(ctx, t, states[t.in])
				r.busy.Add(-1)
				if err != nil {
					fail(err)
				}
			}
		}()
	}
send:
	for _, t := range tasks {
		select {
		case ch <- t:
		case <-ctx.Done():
			break send
		}
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return context.Cause(ctx)
}

// spare reports whether fewer tasks run than the process has CPUs: a task
// then transforms its columns, and its part writer encodes them, on two
// goroutines (see parallel.Each and parquetio.FastPartWriter.SetSpare), so that
// the last tasks of a run do not leave CPUs idle.
func (r *runner) spare() bool {
	if r.opt.spare != 0 {
		return r.opt.spare > 0
	}
	return int(r.busy.Load()) < runtime.GOMAXPROCS(0)
}

// headSplicer returns what the part of row group rg for output oi calls as
// it is written: the output's Splicer once rg is the next row group to
// splice and no task is splicing, else nil. Until rg's part is done no
// other part can be spliced into that output, so the part may stream into
// it without holding appendMu.
func (r *runner) headSplicer(ctx context.Context, in *inputFile, st *fileState, rg, oi int) func() *parquetio.Splicer {
	next := func() int {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.next
	}
	return func() *parquetio.Splicer {
		if next() != rg || !st.appendMu.TryLock() {
			return nil
		}
		defer st.appendMu.Unlock()
		if next() != rg {
			return nil
		}
		if st.asm[oi] == nil {
			a, err := r.startAssembly(ctx, in.outputs[oi])
			if err != nil {
				return nil // the part waits; its splice reports the error
			}
			st.asm[oi] = a
		}
		if r.opt.streamed != nil {
			r.opt.streamed.Add(1)
		}
		return st.asm[oi].sp
	}
}

// runTask processes one row group and, if it was the file's last, the file.
func (r *runner) runTask(ctx context.Context, t task, st *fileState) error {
	f, err := st.open(ctx, r, t.in)
	if err != nil {
		return err
	}
	var head func(oi int) func() *parquetio.Splicer
	if !r.dryRun && !r.counting {
		head = func(oi int) func() *parquetio.Splicer { return r.headSplicer(ctx, t.in, st, t.rg, oi) }
	}
	parts, counts, outCounts, err := r.processRowGroup(ctx, t.in, t.rg, f, head)
	if err != nil {
		return err
	}
	st.mu.Lock()
	for i, p := range parts {
		st.parts[i][t.rg] = p
	}
	st.done[t.rg] = true
	st.counts[t.rg] = counts
	st.outCounts[t.rg] = outCounts
	st.left--
	last := st.left == 0
	if last && st.file != nil {
		st.file.Close()
		st.file = nil
	}
	st.mu.Unlock()
	if r.counting {
		return nil
	}
	if !r.dryRun {
		if err := r.appendParts(ctx, t.in, st, last); err != nil {
			return err
		}
	}
	if !last {
		return nil
	}
	return r.finishFile(ctx, t.in, st)
}

// finishFile records a file's counts and assembles its outputs.
func (r *runner) finishFile(ctx context.Context, in *inputFile, st *fileState) error {
	removed := map[string]int64{}
	var kept, futureKept int64
	for _, c := range st.counts {
		reasons := transforms.Reasons()
		for i, reason := range reasons {
			removed[reason.String()] += c[i]
		}
		futureKept += c[len(reasons)]
		kept += c[len(c)-1]
	}
	if st.sum == nil && r.hashes(in) {
		st.sum = r.hash(ctx, in) // a file without row groups
	}
	if st.sum != nil {
		res := <-st.sum
		if res.err != nil {
			return dataerr.Errorf(in.match.Location, "", "SHA-256 for the report: %v", res.err)
		}
		in.sha256 = res.sum
	}
	dsr := r.datasetReport(in.ds)
	r.rep.Lock()
	in.report.SHA256 = in.sha256
	in.report.RowsIn = in.rows
	in.report.RowsKept = kept
	in.report.Removed = removed
	if !st.started.IsZero() {
		in.report.Seconds = r.opt.Clock().Sub(st.started).Seconds()
	}
	dsr.RowsIn += in.rows
	dsr.RowsKept += kept
	dsr.FutureTimeKept += futureKept
	report.AddRemoved(dsr.Removed, removed)
	r.rep.Unlock()
	for i, out := range in.outputs {
		outKept := kept
		if out.rules != nil || out.classes != nil {
			outKept = 0
			r.rep.Lock()
			for _, oc := range st.outCounts {
				dreasons := transforms.DestinationReasons()
				for j, reason := range dreasons {
					out.rep.Removed[reason.String()] += oc[i][j]
				}
				if out.classes != nil {
					out.rep.Removed[transforms.ReasonSmallClass.String()] += oc[i][len(dreasons)]
				}
				out.rep.AgeUnknown += oc[i][len(oc[i])-2]
				outKept += oc[i][len(oc[i])-1]
			}
			r.rep.Unlock()
		}
		if r.dryRun {
			r.planOutput(in, out, outKept)
			continue
		}
		if err := r.finishAssembly(ctx, in, st, i); err != nil {
			return err
		}
	}
	n := r.filesDone.Add(1)
	r.progress(int(n))
	r.opt.Logger.Debug("file done", "file", in.match.Location, "rows_in", in.rows, "rows_kept", kept)
	return nil
}

// planOutput records, in a dry run, the file a run would write.
func (r *runner) planOutput(in *inputFile, out *fileOutput, rows int64) {
	r.rep.Lock()
	defer r.rep.Unlock()
	out.rep.Files = append(out.rep.Files, &report.OutputFile{Path: out.rel, Dataset: in.ds.Name, Rows: rows, Columns: out.columns,
		Input: inputOf(in)})
	out.rep.RowsOut += rows
}

func (r *runner) progress(filesDone int) {
	if r.opt.Progress != nil {
		r.progressMu.Lock()
		defer r.progressMu.Unlock()
		r.opt.Progress(Progress{RowsDone: r.rowsDone.Load(), RowsTotal: r.rowsTotal, FilesDone: filesDone, Files: len(r.inputs)})
	}
}
