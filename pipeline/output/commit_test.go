package output

import (
	"path/filepath"
	"testing"
)

// TestCommitRecordRefused: a planted commit record that would move a file
// from outside its staging folder, or over a place a commit never writes,
// or is of another run, is refused whole and nothing moves.
func TestCommitRecordRefused(t *testing.T) {
	cases := []struct {
		name string
		rec  CommitRecord
	}{
		{"another run's", CommitRecord{Format: CommitFormat, RunID: "other", Moves: []Move{{Staged: "a/b.parquet", Final: "a/b.parquet"}}}},
		{"format", CommitRecord{Format: "deid-commit/v0", RunID: "r1"}},
		{"out of the staging folder", CommitRecord{Format: CommitFormat, RunID: "r1", Moves: []Move{{Staged: "../../lake/x.parquet", Final: "a/x.parquet"}}}},
		{"out of the output", CommitRecord{Format: CommitFormat, RunID: "r1", Moves: []Move{{Staged: "../x", Final: "../x"}}}},
		{"other staged name", CommitRecord{Format: CommitFormat, RunID: "r1", Moves: []Move{{Staged: "a.parquet", Final: "b.parquet"}}}},
		{"another run's report", CommitRecord{Format: CommitFormat, RunID: "r1", Moves: []Move{{Staged: ".deid-commit/report.json", Final: "_reports/r0/report.json"}}}},
		{"manifest from data", CommitRecord{Format: CommitFormat, RunID: "r1", Moves: []Move{{Staged: "x.parquet", Final: ManifestName}}}},
		{"into the lock folder", CommitRecord{Format: CommitFormat, RunID: "r1", Moves: []Move{{Staged: ".deid-lock/publish.json", Final: ".deid-lock/publish.json"}}}},
		{"bad run id", CommitRecord{Format: CommitFormat, RunID: "../r1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.rec.check("r1"); err == nil {
				t.Errorf("record %+v accepted", c.rec)
			}
		})
	}
	ok := CommitRecord{Format: CommitFormat, RunID: "r1", Moves: []Move{
		{Staged: "d/a b\\c é.parquet", Final: "d/a b\\c é.parquet"},
		{Staged: ".deid-commit/report.json", Final: "_reports/r1/report.json"},
		{Staged: ".deid-commit/" + ManifestName, Final: ManifestName},
	}}
	if filepath.Separator == '/' {
		if err := ok.check("r1"); err != nil {
			t.Errorf("a run's own record refused: %v", err)
		}
	}
}
