package pipeline

import (
	"context"
	"sort"
	"time"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// RetainCommit is a commit deid retain makes to a destination output
// outside a run: the output files it rewrote and removed, which the
// output's report chain must record.
type RetainCommit struct {
	// RunID names the commit in the output (its report's folder).
	RunID string
	// Destination is the output's destination.
	Destination *rules.Destination
	// Files are the new entries of the files rewritten.
	Files []*report.OutputFile
	// Deleted are the paths of the files removed.
	Deleted []string
	// Note says what happened, for the report's reader.
	Note string
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// StageRetainReport stages in dir the report recording commit c in the
// output's chain (chained to the report manifest m names, signed with the
// plan's audit key), points m at it, and returns the moves to make, before
// m's: pairs of staged and final locations of report.json and report.html.
func StageRetainReport(ctx context.Context, st storage.Store, plan *rules.Plan, c RetainCommit, dir string, m *output.Manifest) ([][2]string, error) {
	if err := output.CheckRunID(c.RunID); err != nil {
		return nil, err
	}
	r := newRunner(plan, Options{Store: st, RunID: c.RunID, Clock: c.Clock}, "retain")
	r.rep.Datasets = []*report.Dataset{}
	dst := r.destReport(c.Destination)
	dst.Files = append([]*report.OutputFile{}, c.Files...)
	dst.Deleted = append([]string(nil), c.Deleted...)
	sortedOutputs(dst.Files)
	sort.Strings(dst.Deleted)
	for _, f := range dst.Files {
		dst.RowsOut += f.Rows
	}
	r.rep.Warnings = []string{c.Note}
	r.rep.Finish(r.opt.Clock(), nil)
	moves, err := r.stageReport(ctx, r.rep, dst, dir)
	if err != nil {
		return nil, err
	}
	m.RunID, m.Report = c.RunID, output.ReportRel(c.RunID, "report.json")
	out := make([][2]string, len(moves))
	for i, mv := range moves {
		out[i] = [2]string{storage.Join(dir, mv.Staged), storage.Join(c.Destination.Output, mv.Final)}
	}
	return out, nil
}
