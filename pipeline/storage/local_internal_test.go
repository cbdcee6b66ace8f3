package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCreateExclusiveFolderGone: when the folder disappears between its
// creation and the temporary file's (a lock's holder removing the emptied
// lock folder on release), CreateExclusive makes it again and succeeds.
func TestCreateExclusiveFolderGone(t *testing.T) {
	loc := filepath.Join(t.TempDir(), ".deid-lock", "publish.json")
	removed := 0
	orig := createTemp
	createTemp = func(r *os.Root, dir, pattern string) (*os.File, string, error) {
		if removed < 2 {
			removed++
			if err := r.Remove(dir); err != nil {
				t.Fatal(err)
			}
		}
		return orig(r, dir, pattern)
	}
	defer func() { createTemp = orig }()
	if _, err := (Local{}).CreateExclusive(context.Background(), loc, []byte("held")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(loc); err != nil || string(b) != "held" || removed != 2 {
		t.Fatalf("read %q, %v; folder removed %d times", b, err, removed)
	}
	if _, err := (Local{}).CreateExclusive(context.Background(), loc, []byte("again")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a second create: %v, want an fs.ErrExist", err)
	}
}
