package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
)

// rewritingStore is the local store with another writer: the nth time the
// run opens location, the file is first replaced by other content, as a
// job writing the next erasure list would.
type rewritingStore struct {
	storage.Local
	location string
	nth      int
	content  []byte
	opens    int
}

func (s *rewritingStore) Open(ctx context.Context, location string) (storage.Reader, error) {
	if location == s.location {
		if s.opens++; s.opens == s.nth {
			os.WriteFile(location, s.content, 0o644)
			later := time.Now().Add(time.Minute)
			os.Chtimes(location, later, later)
		}
	}
	return s.Local.Open(ctx, location)
}

// TestListChangedWhileRead: an erasure list replaced between the read that
// hashes it for the report and the read that parses it fails the run with a
// data error naming the list, and publishes nothing; unchanged, the same
// run succeeds.
func TestListChangedWhileRead(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "erasure.csv")
	if err := os.WriteFile(list, []byte("user_id\n1000000001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, nth := range []int{0, 2} {
		out := filepath.Join(dir, "out", strings.Repeat("x", nth+1))
		plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"), list, out))
		st := &rewritingStore{location: list, nth: nth, content: []byte("user_id\n1000000001\n1000000002\n")}
		_, err := Run(context.Background(), plan, Options{Store: st, Workers: 1, ScratchDir: t.TempDir()})
		if nth == 0 {
			if err != nil {
				t.Fatalf("unchanged list: %v", err)
			}
			continue
		}
		var de *DataError
		if !errors.As(err, &de) || de.Location != list || !strings.Contains(err.Error(), "changed while it was read") {
			t.Fatalf("list replaced at open %d: error %v, want a data error naming %s", nth, err, list)
		}
		if files := tree(t, out); len(files) != 0 {
			t.Errorf("a failed run left %v", keys(files))
		}
	}
}
