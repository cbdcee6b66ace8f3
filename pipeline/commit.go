package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// The commit of a run to a destination output. Everything the commit makes
// visible is staged first in the run's staging folder,
// <output>/.deid-staging/<run id>/: the data files at their paths, then,
// under the output's publish lock, the report (report.json, report.html)
// and the merged manifest in its .deid-commit folder. Then the commit
// record, .deid-commit/commit.json, is written beside them: it lists every
// move to make, the manifest last. Writing it is the commit
// point:
//
//   - killed before the record exists, the run made nothing visible: the
//     next run removes its staging folder (roll back) as soon as the run's
//     staging lease shows that its holder is gone;
//   - killed after, the next run that takes the publish lock (or starts,
//     see cleanStaging) replays the record (roll forward): a staged file
//     that is still there is moved into place (a move is atomic on local
//     disk; on object storage a copy then a delete, and a copy that is
//     done again is the same object), one that is gone was moved already.
//     Replaying is idempotent.
//
// So a report is never where a committed one would be before its manifest
// is on its way: deid report check never has to guess whether a report
// without a manifest is a crash or an insertion.

const (
	// commitDir is the folder, in a staging folder, of the files a commit
	// writes besides the data: its report, its manifest, its record. No
	// output file lies in a folder of that name (CheckOutputPath).
	commitDir = ".deid-commit"
	// commitRecordName is the commit record in a staging folder.
	commitRecordName = commitDir + "/commit.json"
	// commitFormat versions the commit record.
	commitFormat = "deid-commit/v1"
)

// commitRecord is the intent of one commit to one output.
type commitRecord struct {
	Format string `json:"format"`
	RunID  string `json:"run_id"`
	// Moves are made in order; paths are relative, Staged to the staging
	// folder and Final to the output.
	Moves []commitMove `json:"moves"`
}

// commitMove is one staged file and where the commit puts it.
type commitMove struct {
	Staged string `json:"staged"`
	Final  string `json:"final"`
	// SHA256 is the staged file's hex SHA-256: a replay that finds the
	// staged file gone takes it for moved only if Final has these bytes.
	SHA256 string `json:"sha256,omitempty"`
}

// commitStagingDir is the staging folder of run runID in output.
func commitStagingDir(output, runID string) string {
	return storage.Join(output, StagingDir, runID)
}

// reportRel is where run runID's report lies, relative to the output.
func reportRel(runID, file string) string {
	return ReportsDir + "/" + runID + "/" + file
}

// check refuses a record that would move a file from outside its staging
// folder or to a place in the output that a commit never writes: a planted
// record can only do what a run of that id could have done.
func (c *commitRecord) check(folderID string) error {
	if c.Format != commitFormat {
		return fmt.Errorf("format %q, want %q", c.Format, commitFormat)
	}
	if c.RunID != folderID {
		return fmt.Errorf("the record is of run %q but lies in the staging folder of run %q", c.RunID, folderID)
	}
	if err := CheckRunID(c.RunID); err != nil {
		return err
	}
	own := []string{ManifestName, reportRel(c.RunID, "report.json"), reportRel(c.RunID, "report.html")}
	for _, m := range c.Moves {
		if slices.Contains(own, m.Final) {
			if m.Staged != commitDir+"/"+path.Base(m.Final) {
				return fmt.Errorf("%s would come from %q, not from the commit's own folder", m.Final, m.Staged)
			}
			continue
		}
		if err := CheckOutputPath(m.Final); err != nil {
			return err
		}
		if m.Staged != m.Final {
			return fmt.Errorf("%s would come from %q, not from the same path in the staging folder", m.Final, m.Staged)
		}
	}
	return nil
}

// writeCommitRecord writes the record into the staging folder: the commit
// point.
func writeCommitRecord(ctx context.Context, st storage.Store, staging string, c *commitRecord) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFile(ctx, st, storage.Join(staging, commitRecordName), b)
}

// replayCommit makes the record's moves that are still to make, then
// removes the staging folder.
func replayCommit(ctx context.Context, st storage.Store, output, staging string, c *commitRecord) error {
	for _, m := range c.Moves {
		src, dst := storage.Join(staging, m.Staged), storage.Join(output, m.Final)
		if _, err := st.Stat(ctx, src); errors.Is(err, storage.ErrNotExist) {
			if err := checkMoved(ctx, st, dst, m.SHA256); err != nil {
				return err
			}
			continue // moved already
		} else if err != nil {
			return fmt.Errorf("commit %s: %w", dst, err)
		}
		if err := storage.NoLinks(ctx, "publish", dst); err != nil {
			return dataError(err)
		}
		if err := storage.Move(ctx, st, src, dst); err != nil {
			return fmt.Errorf("publish %s: %w", dst, err)
		}
	}
	return removeTree(ctx, st, staging)
}

// checkMoved refuses a move whose staged file is gone while its target
// does not hold the staged bytes: the staged file was removed, not moved,
// and the commit would record a file that is not there.
func checkMoved(ctx context.Context, st storage.Store, dst, sum string) error {
	if sum == "" {
		return nil // a record of a deid that recorded no hash
	}
	got, _, err := hashObject(ctx, st, dst)
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("commit %s: %w", dst, err)
	}
	if err != nil || got != sum {
		return dataError(fmt.Errorf("commit %s: its staged file is gone but the target does not hold it (SHA-256 %.12s…): another process removed the staging before "+
			"the commit completed, so it cannot be completed; remove the staging folder to abandon it (deid report check then names what it had already moved), "+
			"and run deid again to publish anew", dst, sum))
	}
	return nil
}

// readCommitRecord reads the commit record of a staging folder; ok is false
// when there is none.
func readCommitRecord(ctx context.Context, st storage.Store, staging, id string) (c *commitRecord, ok bool, err error) {
	loc := storage.Join(staging, commitRecordName)
	b, err := readAll(ctx, st, loc)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", loc, err)
	}
	c = &commitRecord{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, false, dataError(fmt.Errorf("%s: the commit record is unreadable (%w): inspect the output by hand", storage.QuoteLocation(loc), err))
	}
	if err := c.check(id); err != nil {
		return nil, false, dataError(fmt.Errorf("%s: the commit record is refused: %w", storage.QuoteLocation(loc), err))
	}
	return c, true, nil
}

// stagingRuns lists the run ids that have a staging folder in output,
// sorted.
func stagingRuns(ctx context.Context, st storage.Store, output string) ([]string, error) {
	root := storage.Join(output, StagingDir)
	seen := map[string]bool{}
	err := st.List(ctx, strings.TrimSuffix(root, "/")+"/", func(a storage.Attrs) error {
		rel, err := storage.Rel(root, a.Location)
		if err != nil {
			return nil
		}
		id, _, _ := strings.Cut(strings.ReplaceAll(rel, `\`, "/"), "/")
		if CheckRunID(id) == nil { // an object "" or ".." names no run's folder
			seen[id] = true
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotExist) {
		err = nil
	}
	if !storage.IsURI(root) {
		// folders emptied by a removal cut short hold no object to list
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.IsDir() && CheckRunID(e.Name()) == nil {
				seen[e.Name()] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, err
}

// RecoverCommits completes, in output, every commit that a run killed after
// its commit point left (see the commit record), other than the run own's.
// The caller holds the output's publish lock: a record is written only
// under it, so a record found then is of a run that no longer commits. It
// returns the run ids completed.
func RecoverCommits(ctx context.Context, st storage.Store, output, own string) ([]string, error) {
	ids, err := stagingRuns(ctx, st, output)
	if err != nil {
		return nil, fmt.Errorf("list the staging folder of %s: %w", output, err)
	}
	var done []string
	for _, id := range ids {
		if id == own {
			continue
		}
		staging := commitStagingDir(output, id)
		c, ok, err := readCommitRecord(ctx, st, staging, id)
		if err != nil {
			return done, err
		}
		if !ok {
			continue
		}
		if err := replayCommit(ctx, st, output, staging, c); err != nil {
			return done, fmt.Errorf("complete the interrupted commit of run %s: %w", id, err)
		}
		done = append(done, id)
	}
	return done, nil
}

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
func StageRetainReport(ctx context.Context, st storage.Store, plan *rules.Plan, c RetainCommit, dir string, m *Manifest) ([][2]string, error) {
	if err := CheckRunID(c.RunID); err != nil {
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
	m.RunID, m.Report = c.RunID, reportRel(c.RunID, "report.json")
	out := make([][2]string, len(moves))
	for i, mv := range moves {
		out[i] = [2]string{storage.Join(dir, mv.Staged), storage.Join(c.Destination.Output, mv.Final)}
	}
	return out, nil
}
