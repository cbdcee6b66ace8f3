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
	"sync/atomic"
	"time"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/transforms"
)

// This file holds how a run puts its work on the engine (internal/engine):
// one task per row group of each input file; the file's state collects the
// tasks' counts, the engine splices their parts into the outputs in
// row-group order as they finish, and finishing the file records its counts,
// the input's SHA-256 and the outputs' footers.

// fileState collects a file's counts until its last row group is done.
type fileState struct {
	mu     sync.Mutex
	file   *parquetio.File // opened by the first task, closed when the file finishes
	counts [][]int64       // per row group: removed by reason, then kept
	// outCounts, per row group and output: removed by destination reason,
	// rows of unknown age, then kept
	outCounts [][][]int64
	started   time.Time
	// sum receives the file's SHA-256, hashed beside the tasks (see hash)
	sum chan hashResult
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

// process runs every file's tasks on the engine's pool of workers; the
// worker that finishes a file's last row group finishes the file.
func (r *runner) process(ctx context.Context) error {
	var states []*fileState
	defer func() {
		for _, st := range states {
			st.close()
		}
	}()
	var files []*engine.File
	for _, in := range r.inputs {
		if r.counting && !slices.ContainsFunc(in.outputs, func(o *fileOutput) bool { return o.classes != nil }) {
			continue
		}
		st := &fileState{counts: make([][]int64, len(in.rgRows)), outCounts: make([][][]int64, len(in.rgRows))}
		states = append(states, st)
		files = append(files, r.engineFile(in, st))
	}
	return r.pool.Run(ctx, files)
}

// engineFile is the engine's work on input in: its row groups' tasks, its
// outputs' assembly and its finish. The counting pass has no outputs and
// no finish; a dry run has outputs that receive no part.
func (r *runner) engineFile(in *inputFile, st *fileState) *engine.File {
	writes := !r.dryRun && !r.counting
	f := &engine.File{Name: in.match.Location, RowGroups: len(in.rgRows), Outputs: len(in.outputs), Stream: writes,
		Task: func(ctx context.Context, rg int, head engine.Head) ([]engine.Piece, error) {
			return r.runTask(ctx, in, st, rg, head)
		},
		Open: func(ctx context.Context, oi int) (engine.Output, error) { return r.startAssembly(ctx, in.outputs[oi]) },
		Finish: func(ctx context.Context, outs []engine.Output) (*engine.File, error) {
			st.close()
			if r.counting {
				return nil, nil
			}
			return nil, r.finishFile(ctx, in, st, outs)
		},
	}
	if r.counting {
		f.Outputs = 0
	}
	return f
}

// close closes the file, once it is opened.
func (st *fileState) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.file != nil {
		st.file.Close()
		st.file = nil
	}
}

// spare reports whether fewer tasks run than the process has CPUs: a task
// then transforms its columns, and its part writer encodes them, on two
// goroutines (see parallel.Each and parquetio.FastPartWriter.SetSpare), so that
// the last tasks of a run do not leave CPUs idle.
func (r *runner) spare() bool {
	if r.opt.spare != 0 {
		return r.opt.spare > 0
	}
	return r.pool.Busy() < runtime.GOMAXPROCS(0)
}

// runTask processes row group rg of in and records its counts; it returns
// the row group's part for each output (none in a dry run or the counting
// pass).
func (r *runner) runTask(ctx context.Context, in *inputFile, st *fileState, rg int, head engine.Head) ([]engine.Piece, error) {
	f, err := st.open(ctx, r, in)
	if err != nil {
		return nil, err
	}
	if head != nil && r.opt.streamed != nil {
		head = countStreamed(head, r.opt.streamed)
	}
	parts, counts, outCounts, err := r.processRowGroup(ctx, in, rg, f, head)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	st.counts[rg] = counts
	st.outCounts[rg] = outCounts
	st.mu.Unlock()
	if r.counting {
		return nil, nil
	}
	pieces := make([]engine.Piece, len(parts))
	for i, p := range parts {
		if p != nil {
			pieces[i].Part = p
		}
	}
	return pieces, nil
}

// countStreamed counts in n the parts that head lets stream (tests).
func countStreamed(head engine.Head, n *atomic.Int64) engine.Head {
	return func(oi int) func() *parquetio.Splicer {
		h := head(oi)
		return func() *parquetio.Splicer {
			sp := h()
			if sp != nil {
				n.Add(1)
			}
			return sp
		}
	}
}

// finishFile records a file's counts and assembles its outputs.
// outs are the outputs the engine assembled (nil for one without a part).
func (r *runner) finishFile(ctx context.Context, in *inputFile, st *fileState, outs []engine.Output) (err error) {
	defer func() {
		if err != nil {
			for _, o := range outs {
				if o != nil {
					o.Abort()
				}
			}
		}
	}()
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
		a, _ := outs[i].(*assembly)
		outs[i] = nil
		if err := r.finishAssembly(ctx, in, a, out); err != nil {
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
