package retain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// This file holds how deid retain removes erased subjects' rows from one
// published output file, on the engine as source files are (job.go): open,
// then a task per row group decodes the subject column, then a task per
// row group copies it or re-encodes its kept rows into the staged
// replacement (hashing the published rows it decodes), whose finish
// verifies it, hashes it for the manifest and checks that its re-encoded
// rows are a subset of the published rows they came from.

// outputJob is the erasure from one published file.
type outputJob struct {
	d       *dataset
	dst     string
	loc     string
	mf      *output.ManifestFile
	dd      *report.RetainDestinationDataset
	subject string
	match   *transforms.SubjectSet
	n       int // names the staged file

	opened // the published file and, while staged, its bytes
	leaf   int
	fates  [][]transforms.Fate // per row group: nil when no row of it is erased
	groups []int               // row groups of each re-encoded part
	erased []int64             // per row group
	older  [][]rowHash         // per re-encoded row group: the hashes of its published rows

	// set by the job: the rows erased and, unless in a dry run, the staged
	// replacement
	erasedRows int64
	staged     *stagedOutput
}

// newOutputJob is the erasure of the subjects match finds in column
// subject of published file mf of destination dst.
func (d *dataset) newOutputJob(dst, loc string, mf *output.ManifestFile, dd *report.RetainDestinationDataset, subject string, match *transforms.SubjectSet, n int) *outputJob {
	return &outputJob{d: d, dst: dst, loc: loc, mf: mf, dd: dd, subject: subject, match: match, n: n}
}

// eraseOutputs runs the jobs on the engine's workers.
func (d *dataset) eraseOutputs(ctx context.Context, jobs []*outputJob) error {
	defer func() {
		for _, j := range jobs {
			j.close()
		}
	}()
	files := make([]*engine.File, len(jobs))
	for i, j := range jobs {
		files[i] = &engine.File{Name: j.loc, Finish: func(ctx context.Context, _ []engine.Output) (*engine.File, error) {
			if err := j.open(ctx); err != nil {
				return nil, err
			}
			return j.decideStage(), nil
		}}
	}
	pool := engine.Pool{Workers: d.opt.Workers}
	return pool.Run(ctx, files)
}

// open opens the published file and finds its subject column.
func (j *outputJob) open(ctx context.Context) error {
	f, _, err := pqstore.Open(ctx, j.d.opt.Store, j.loc, j.d.opt.Mem)
	if err != nil {
		return &dataerr.Error{Err: err}
	}
	j.f = f
	if err := dataerr.CheckColumnNames(j.loc, f.Schema()); err != nil {
		return err
	}
	if f.Schema().FieldIndices(j.subject) == nil {
		return &dataerr.Error{Location: j.loc, Column: j.subject, Err: errors.New("the published output lacks the subject column the policy gives it")}
	}
	if j.leaf = f.LeafIndex(j.subject); j.leaf < 0 {
		return &dataerr.Error{Location: j.loc, Column: j.subject, Err: errors.New("the published output's subject column is not a flat column")}
	}
	n := f.NumRowGroups()
	j.fates, j.groups, j.erased, j.older = make([][]transforms.Fate, n), make([]int, n), make([]int64, n), make([][]rowHash, n)
	return nil
}

// decideStage decodes each row group's subject column; its finish starts
// the staging, when rows are erased and this is no dry run.
func (j *outputJob) decideStage() *engine.File {
	return &engine.File{Name: j.loc, RowGroups: len(j.fates),
		Task: func(ctx context.Context, rg int, _ engine.Head) ([]engine.Piece, error) {
			return nil, j.decide(ctx, rg)
		},
		Finish: func(ctx context.Context, _ []engine.Output) (*engine.File, error) {
			for _, n := range j.erased {
				j.erasedRows += n
			}
			if j.erasedRows == 0 || j.d.opt.DryRun {
				j.close()
				return nil, nil
			}
			return j.stageFile(ctx)
		}}
}

// decide finds the erased rows of row group rg.
func (j *outputJob) decide(ctx context.Context, rg int) error {
	rule := transforms.RetainRule{Erasure: j.match}
	fs := make([]transforms.Fate, j.f.RowGroupRows(rg))
	var counts transforms.RetainCounts
	off := 0
	err := j.f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: []int{j.leaf}, BatchSize: j.d.opt.BatchSize}, func(b arrow.RecordBatch) error {
		k := int(b.NumRows())
		err := rule.Decide(nil, nil, b.Column(0), fs[off:off+k], &counts)
		off += k
		return err
	})
	if err != nil {
		return &dataerr.Error{Location: j.loc, Err: err}
	}
	if slices.Contains(fs, transforms.FateErased) {
		j.fates[rg] = fs
	}
	j.erased[rg] = counts.Erased
	return nil
}

// stageFile stages the replacement: the published file's footer, its
// untouched row groups copied and the others re-encoded without the
// erased rows.
func (j *outputJob) stageFile(ctx context.Context) (*engine.File, error) {
	st := j.d.opt.Store
	src, err := st.Open(ctx, j.loc)
	if err != nil {
		return nil, err
	}
	j.src = src
	staged := storage.Join(j.d.work, j.d.opt.RunID, fmt.Sprintf("%05d.parquet", j.n))
	open := func(ctx context.Context) (*hashedFile, error) {
		w, err := st.Create(ctx, staged)
		if err != nil {
			return nil, fmt.Errorf("%s: stage the erased output: %w", j.loc, err)
		}
		o := &hashedFile{stagedFile: stagedFile{loc: staged, w: w}, h: sha256.New()}
		o.cw = &countingWriter{w: io.MultiWriter(w, o.h)}
		o.sp = parquetio.NewSplicer(o.cw)
		if err := o.sp.AddRowGroups(src, nil); err != nil { // the published file's footer
			w.Abort()
			return nil, fmt.Errorf("%s: stage the erased output: %w", j.loc, err)
		}
		return o, nil
	}
	return &engine.File{Name: j.loc, RowGroups: len(j.fates), Outputs: 1,
		Task: func(ctx context.Context, rg int, _ engine.Head) ([]engine.Piece, error) {
			if j.fates[rg] == nil {
				return []engine.Piece{{Source: src, RowGroups: []int{rg}}}, nil
			}
			part, groups, err := j.d.rewrite(ctx, j.f, rg, j.fates[rg], sinks{hashes: &j.older[rg]})
			if err != nil || part == nil {
				j.older[rg] = nil // no row of it stays: nothing to check
				return nil, err
			}
			j.groups[rg] = groups
			return []engine.Piece{{Part: part, RowGroups: firstGroups(groups)}}, nil
		},
		Open: func(ctx context.Context, _ int) (engine.Output, error) { return open(ctx) },
		Finish: func(ctx context.Context, outs []engine.Output) (*engine.File, error) {
			defer j.close()
			defer clear(j.older)
			o, _ := outs[0].(*hashedFile)
			if o == nil {
				// every row erased: a file of the footer alone, as published
				var err error
				if o, err = open(ctx); err != nil {
					return nil, fmt.Errorf("%s: stage the erased output: %w", j.loc, err)
				}
			}
			if err := j.finish(ctx, o, staged); err != nil {
				if errors.Is(err, ErrNewRows) { // names the published file already
					return nil, err
				}
				return nil, fmt.Errorf("%s: stage the erased output: %w", j.loc, err)
			}
			j.staged = &stagedOutput{action: action{File: j.loc, Staged: staged}, size: o.cw.n, sum: hex.EncodeToString(o.h.Sum(nil))}
			return nil, nil
		}}, nil
}

// finish writes the staged replacement's footer, commits and verifies it.
// Erasure only removes: the row groups copied are the published file's
// bytes, and every row of a re-encoded one must be one of the published
// rows it was encoded from (rowsFrom).
func (j *outputJob) finish(ctx context.Context, o *hashedFile, staged string) error {
	if _, err := o.sp.Close(); err != nil {
		o.Abort()
		return err
	}
	if _, err := o.w.Commit(); err != nil {
		o.Abort()
		return err
	}
	rewritten := reencodedRowGroups(len(j.fates), func(rg int) (bool, int) { return j.fates[rg] == nil, j.groups[rg] })
	return verifyFile(ctx, j.d.opt, staged, j.f.NumRows()-j.erasedRows, j.f.Schema(), rewritten, j.rowsFrom())
}

// rowsFrom returns verifyFile's check of the staged file's re-encoded row
// groups, the k-th of which was encoded from the published row group
// from[k]: once every staged row group of a published one is hashed, their
// rows must take one of its rows each, as a multiset; its hashes are then
// freed.
func (j *outputJob) rowsFrom() func(k int, hashes []rowHash) error {
	var from []int
	for rg, fs := range j.fates {
		for range j.groups[rg] {
			if fs != nil {
				from = append(from, rg)
			}
		}
	}
	var mu sync.Mutex
	newer := map[int][]rowHash{} // per published row group, until all its staged ones are in
	seen := map[int]int{}
	return func(k int, hashes []rowHash) error {
		if k >= len(from) {
			return fmt.Errorf("%s: the staged file's re-encoded row group %d comes from no published one (%d re-encoded)", j.loc, k, len(from))
		}
		rg := from[k]
		mu.Lock()
		newer[rg] = append(newer[rg], hashes...)
		seen[rg]++
		done := seen[rg] == j.groups[rg]
		hashes, older := newer[rg], j.older[rg]
		if done {
			delete(newer, rg)
			j.older[rg] = nil
		}
		mu.Unlock()
		if !done {
			return nil
		}
		return subsetOf(j.dst, j.loc, hashes, older)
	}
}

// hashedFile is a staged file whose bytes are hashed and counted as they
// are written, for the manifest.
type hashedFile struct {
	stagedFile
	h  hash.Hash
	cw *countingWriter
}

// Name names the staged file in errors.
func (h *hashedFile) Name() string { return "the erased output" }

// firstGroups returns 0, 1, ... n-1: every row group of a part.
func firstGroups(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
