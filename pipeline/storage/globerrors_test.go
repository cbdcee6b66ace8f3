package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGlobSourceErrors: a pattern without glob characters naming a folder
// is a *FolderError (ErrFolder) that suggests a glob, empty folder or not;
// a link to nothing met while listing is a *DanglingLinkError
// (ErrDanglingLink), not ErrNotExist; a missing file stays ErrNotExist.
func TestGlobSourceErrors(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, dir string) (pattern string)
		want    error
		notWant error
		msg     []string
	}{
		{"a folder", func(t *testing.T, dir string) string {
			writeGlobFixture(t, filepath.Join(dir, "lake", "t", "a.parquet"))
			return filepath.Join(dir, "lake", "t")
		}, ErrFolder, ErrNotExist, []string{"is a folder", "t/*.parquet", "t/**/*.parquet"}},
		{"an empty folder", func(t *testing.T, dir string) string {
			os.MkdirAll(filepath.Join(dir, "lake", "t"), 0o755)
			return filepath.Join(dir, "lake", "t")
		}, ErrFolder, ErrNotExist, []string{"is a folder"}},
		{"a folder with a trailing slash", func(t *testing.T, dir string) string {
			writeGlobFixture(t, filepath.Join(dir, "lake", "t", "a.parquet"))
			return filepath.Join(dir, "lake", "t") + "/"
		}, ErrFolder, ErrNotExist, []string{"t/*.parquet"}},
		{"a link to nothing", func(t *testing.T, dir string) string {
			writeGlobFixture(t, filepath.Join(dir, "lake", "t", "a.parquet"))
			if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "lake", "t", "b.parquet")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "lake", "t", "*.parquet")
		}, ErrDanglingLink, ErrNotExist, []string{"b.parquet", "which does not exist"}},
		{"a missing file", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "lake", "t", "a.parquet")
		}, ErrNotExist, ErrFolder, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pattern := tc.setup(t, t.TempDir())
			_, _, err := Glob(context.Background(), Local{}, pattern)
			if !errors.Is(err, tc.want) || errors.Is(err, tc.notWant) {
				t.Fatalf("Glob(%q) = %v, want %v and not %v", pattern, err, tc.want, tc.notWant)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not say %q: %v", m, err)
				}
			}
		})
	}
}

// writeGlobFixture writes a small file at path, its folders made.
func writeGlobFixture(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
}
