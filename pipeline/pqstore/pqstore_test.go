package pqstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/storage"
)

// TestOpen: a missing object is the store's ErrNotExist naming it, a file
// that is not Parquet is ErrCorrupt naming it, and a Parquet file opens
// with the object's attributes as opened.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.parquet")
	if _, _, err := Open(ctx, storage.Local{}, missing, memory.DefaultAllocator); !errors.Is(err, storage.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.parquet")
	if err := os.WriteFile(bad, []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(ctx, storage.Local{}, bad, memory.DefaultAllocator); !errors.Is(err, parquetio.ErrCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Errorf("not Parquet: %v", err)
	}
	good, err := filepath.Glob(filepath.Join("..", "..", "testdata", "lake", "orders", "*.parquet"))
	if err != nil || len(good) == 0 {
		t.Fatalf("no sample file: %v", err)
	}
	st, err := os.Stat(good[0])
	if err != nil {
		t.Fatal(err)
	}
	f, attrs, err := Open(ctx, storage.Local{}, good[0], memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if attrs.Size != st.Size() || f.NumRows() == 0 || f.Location() != good[0] {
		t.Errorf("attributes %+v (file of %d bytes), %d rows, location %s", attrs, st.Size(), f.NumRows(), f.Location())
	}
}
