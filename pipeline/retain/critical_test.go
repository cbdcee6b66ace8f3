package retain

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// TestRetainCommitsAreCritical: every step from the journal's write to the
// work folder's removal runs inside Options.Critical, for the sources and
// for each output, and each commit ends only once its locks are released
// (the dataset's lock, the output's publish lock), so that deid's signal
// handling never exits half way through a swap or with a lock held. The
// staging before the journal is not a commit.
func TestRetainCommitsAreCritical(t *testing.T) {
	pub := publish(t)
	os.WriteFile(pub.erasure, []byte("user_id\n1003\n1011\n"), 0o644)
	plan, err := rules.CompileRetain(pub.pol, now)
	if err != nil {
		t.Fatal(err)
	}
	// locks lists the lock files under the lake
	locks := func() []string {
		var out []string
		filepath.WalkDir(pub.dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (d.Name() == lockName || p == lock.PublishPath(filepath.Dir(filepath.Dir(p)))) {
				rel, _ := filepath.Rel(pub.dir, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		return out
	}
	open, opened := 0, 0
	inCommit := map[string]int{} // failpoint: times it fired inside a commit
	outside := map[string]int{}
	var openLocks, endLocks [][]string
	opt := Options{Store: storage.Local{}, Outputs: pub.full, RunID: "crit",
		failAt: func(n string) {
			if open > 0 {
				inCommit[n]++
			} else {
				outside[n]++
			}
		},
		Critical: func() func() {
			open++
			opened++
			openLocks = append(openLocks, locks())
			return func() {
				open--
				endLocks = append(endLocks, locks())
			}
		},
	}
	if _, err := Run(context.Background(), plan, opt); err != nil {
		t.Fatal(err)
	}
	if open != 0 || opened < 2 {
		t.Fatalf("%d commits opened, %d left open: want the sources' and the outputs', each ended", opened, open)
	}
	for _, n := range []string{"journal-written", "swapped", "journal-removed", "work-removed"} {
		if inCommit[n] == 0 || outside[n] > 0 {
			t.Errorf("failpoint %s: %d times inside a commit, %d outside", n, inCommit[n], outside[n])
		}
	}
	if inCommit["staged"] > 0 {
		t.Errorf("staging ran inside a commit %d times", inCommit["staged"])
	}
	if len(openLocks[0]) == 0 {
		t.Fatal("no lock held as the sources' commit opens: the test sees no locks")
	}
	t.Logf("locks as each commit opens: %v; as it ends: %v", openLocks, endLocks)
	for i, l := range endLocks {
		for _, f := range l {
			// the sources' commit ends after their lock's release; an
			// output's, before re-deriving, after its publish lock's
			if i == 0 || strings.HasSuffix(f, "publish.json") {
				t.Errorf("commit %d ended with %s still held (locks then: %v)", i, f, l)
			}
		}
	}
}
