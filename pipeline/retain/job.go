package retain

import (
	"context"

	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// This file holds how deid retain puts a dataset's files on the run's
// engine (internal/engine): each file is a job of three stages, one after
// the other, while other files' stages run beside it:
//
//   - open: the footer and the rule columns' places (one task);
//   - decide: a task per row group settles it from statistics or its rule
//     columns (file.go); the stage's finish adds the file to the report and
//     decides its fate;
//   - stage: a task per row group copies it, drops it or re-encodes its kept
//     rows; the engine splices them in order into the staged new version,
//     which the finish verifies (stage.go).
//
// The journal, its commit and the outputs' re-derivation stay as they were:
// they start once every file is staged.

// job is one file's work in a retain run.
type job struct {
	d    *dataset
	m    storage.Match
	n    int                   // the file's number, naming its staged files
	rule transforms.RetainRule // the dataset's, Isolated for a file of the isolated part
	fr   *report.RetainFile

	opened // the file, from open until the job ends, and its bytes while staged
	cols   ruleCols
	rgs    []rgDecision // per row group
	sinks  sinks        // of the rows that move, while staged
	action *action      // what the journal does, once decided
}

// rgDecision is what deciding a row group settled, and what it counted.
type rgDecision struct {
	kind      rgKind
	fates     []transforms.Fate // of a rewritten row group
	counts    transforms.RetainCounts
	rowGroups report.RowGroupCounts
	local     transforms.LocalCounts
	groups    int // row groups of its re-encoded part, once staged
}

// set records the row group's kind and fates and returns the decision.
func (dec rgDecision) set(k rgKind, fates []transforms.Fate) (rgDecision, error) {
	dec.kind, dec.fates = k, fates
	return dec, nil
}

// newJob is the work on file m, the nth of the dataset (iso: of its
// isolated part).
func (d *dataset) newJob(m storage.Match, n int, iso bool) *job {
	rule := d.rule
	rule.Isolated = iso
	return &job{d: d, m: m, n: n, rule: rule, fr: &report.RetainFile{Location: m.Location, Removed: map[string]int64{}}}
}

// openStage is the job's first stage, of no row group: its finish opens
// the file and returns the decide stage.
func (j *job) openStage() *engine.File {
	return &engine.File{Name: j.m.Location, Finish: func(ctx context.Context, _ []engine.Output) (*engine.File, error) {
		if err := j.open(ctx); err != nil {
			return nil, err
		}
		return j.decideStage(), nil
	}}
}

// decideStage decides every row group, then settles the file and returns
// the stage stage, when the file has a new version to stage.
func (j *job) decideStage() *engine.File {
	return &engine.File{Name: j.m.Location, RowGroups: len(j.rgs),
		Task: func(ctx context.Context, rg int, _ engine.Head) ([]engine.Piece, error) {
			dec, err := j.decide(ctx, rg)
			j.rgs[rg] = dec // each task writes its own row group's
			return nil, err
		},
		Finish: func(ctx context.Context, _ []engine.Output) (*engine.File, error) {
			stage, err := j.settle()
			if err != nil || !stage {
				j.close()
				return nil, err
			}
			return j.stageFile(ctx)
		}}
}

// close frees what the job holds: the file, the source's bytes and the
// sinks' unfinished files. It is called once the job ends, and again, with
// nothing left to free, after a failed run.
func (j *job) close() {
	j.opened.close()
	if j.sinks.anon != nil {
		j.sinks.anon.abort()
		j.sinks.anon = nil
	}
	if j.sinks.iso != nil {
		j.sinks.iso.abort()
		j.sinks.iso = nil
	}
}

// opened is a file a job reads: decoded through f, and its bytes through
// src while row groups are copied from it.
type opened struct {
	f   *parquetio.File
	src storage.Reader
}

// close closes what is open.
func (o *opened) close() {
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
	if o.src != nil {
		o.src.Close()
		o.src = nil
	}
}
