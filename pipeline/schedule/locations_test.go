package schedule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/retain"
	"github.com/deidproject/deid/rules"
)

// TestJobsRecheckLocations: a link made while serve runs, joining an
// output to a source folder, fails the next deidentify or retain job with
// a policy error positioned on the output, before anything is read.
func TestJobsRecheckLocations(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := testPolicy(t, dir) // loaded while out is apart from in
	if err := os.Symlink("in", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }
	lookup := func(string) (string, bool) { return "", false }
	runners := map[string]RunFunc{
		"deidentify": Deidentify(p, pipeline.Options{}, lookup, clock),
		"retain":     Retain(p, retain.Options{}, lookup, clock),
	}
	for name, run := range runners {
		_, err := run(context.Background(), p.Jobs[0])
		var list rules.ErrorList
		if !errors.Is(err, rules.ErrPolicy) || !errors.As(err, &list) || list[0].Path != "destinations.out.output" || list[0].Line != 10 {
			t.Errorf("%s: %v, want a policy error at the output (line 10)", name, err)
		}
	}
}
