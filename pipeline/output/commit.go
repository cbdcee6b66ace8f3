package output

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

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/storage"
)

const (
	// CommitDir is the folder, in a staging folder, of the files a commit
	// writes besides the data: its report, its manifest, its record. No
	// output file lies in a folder of that name (CheckOutputPath).
	CommitDir = ".deid-commit"
	// CommitRecordName is the commit record in a staging folder.
	CommitRecordName = CommitDir + "/commit.json"
	// CommitFormat versions the commit record.
	CommitFormat = "deid-commit/v1"
)

// CommitRecord is the intent of one commit to one output.
type CommitRecord struct {
	Format string `json:"format"`
	RunID  string `json:"run_id"`
	// Moves are made in order; paths are relative, Staged to the staging
	// folder and Final to the output.
	Moves []Move `json:"moves"`
}

// Move is one staged file and where the commit puts it.
type Move struct {
	Staged string `json:"staged"`
	Final  string `json:"final"`
	// SHA256 is the staged file's hex SHA-256: a replay that finds the
	// staged file gone takes it for moved only if Final has these bytes.
	SHA256 string `json:"sha256,omitempty"`
}

// CommitStagingDir is the staging folder of run runID in output.
func CommitStagingDir(output, runID string) string {
	return storage.Join(output, StagingDir, runID)
}

// ReportRel is where run runID's report lies, relative to the output.
func ReportRel(runID, file string) string {
	return ReportsDir + "/" + runID + "/" + file
}

// check refuses a record that would move a file from outside its staging
// folder or to a place in the output that a commit never writes: a planted
// record can only do what a run of that id could have done.
func (c *CommitRecord) check(folderID string) error {
	if c.Format != CommitFormat {
		return fmt.Errorf("format %q, want %q", c.Format, CommitFormat)
	}
	if c.RunID != folderID {
		return fmt.Errorf("the record is of run %q but lies in the staging folder of run %q", c.RunID, folderID)
	}
	if err := CheckRunID(c.RunID); err != nil {
		return err
	}
	own := []string{ManifestName, ReportRel(c.RunID, "report.json"), ReportRel(c.RunID, "report.html")}
	for _, m := range c.Moves {
		if slices.Contains(own, m.Final) {
			if m.Staged != CommitDir+"/"+path.Base(m.Final) {
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

// WriteCommitRecord writes the record into the staging folder: the commit
// point.
func WriteCommitRecord(ctx context.Context, st storage.Store, staging string, c *CommitRecord) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFile(ctx, st, storage.Join(staging, CommitRecordName), b)
}

// ReplayCommit makes the record's moves that are still to make, then
// removes the staging folder.
func ReplayCommit(ctx context.Context, st storage.Store, output, staging string, c *CommitRecord) error {
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
			return dataerr.Mark(err)
		}
		if err := storage.Move(ctx, st, src, dst); err != nil {
			return fmt.Errorf("publish %s: %w", dst, err)
		}
	}
	return RemoveTree(ctx, st, staging)
}

// checkMoved refuses a move whose staged file is gone while its target
// does not hold the staged bytes: the staged file was removed, not moved,
// and the commit would record a file that is not there.
func checkMoved(ctx context.Context, st storage.Store, dst, sum string) error {
	if sum == "" {
		return nil // a record of a deid that recorded no hash
	}
	got, _, err := HashObject(ctx, st, dst)
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("commit %s: %w", dst, err)
	}
	if err != nil || got != sum {
		return dataerr.Mark(fmt.Errorf("commit %s: its staged file is gone but the target does not hold it (SHA-256 %.12s…): another process removed the staging before "+
			"the commit completed, so it cannot be completed; remove the staging folder to abandon it (deid report check then names what it had already moved), "+
			"and run deid again to publish anew", dst, sum))
	}
	return nil
}

// ReadCommitRecord reads the commit record of a staging folder; ok is false
// when there is none.
func ReadCommitRecord(ctx context.Context, st storage.Store, staging, id string) (c *CommitRecord, ok bool, err error) {
	loc := storage.Join(staging, CommitRecordName)
	b, err := storage.ReadFile(ctx, st, loc)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", loc, err)
	}
	c = &CommitRecord{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, false, dataerr.Mark(fmt.Errorf("%s: the commit record is unreadable (%w): inspect the output by hand", storage.QuoteLocation(loc), err))
	}
	if err := c.check(id); err != nil {
		return nil, false, dataerr.Mark(fmt.Errorf("%s: the commit record is refused: %w", storage.QuoteLocation(loc), err))
	}
	return c, true, nil
}

// StagingRuns lists the run ids that have a staging folder in output,
// sorted.
func StagingRuns(ctx context.Context, st storage.Store, output string) ([]string, error) {
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
	ids, err := StagingRuns(ctx, st, output)
	if err != nil {
		return nil, fmt.Errorf("list the staging folder of %s: %w", output, err)
	}
	var done []string
	for _, id := range ids {
		if id == own {
			continue
		}
		staging := CommitStagingDir(output, id)
		c, ok, err := ReadCommitRecord(ctx, st, staging, id)
		if err != nil {
			return done, err
		}
		if !ok {
			continue
		}
		if err := ReplayCommit(ctx, st, output, staging, c); err != nil {
			return done, fmt.Errorf("complete the interrupted commit of run %s: %w", id, err)
		}
		done = append(done, id)
	}
	return done, nil
}
