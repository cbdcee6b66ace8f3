package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
)

// TestFileLockRefusesLinks: a symbolic link at the lock file or the lock
// folder (to a file or folder outside the output, or dangling) makes
// Acquire fail with storage.ErrLink, and the link's target is unchanged; a
// lock file swapped for a link after Acquire is neither renewed nor
// released through it. A link at the output folder itself is followed.
func TestFileLockRefusesLinks(t *testing.T) {
	cases := []struct {
		name   string
		link   string // relative to the output
		target string // relative to the temporary folder
	}{
		{"lock file to a lake file", Dir + "/publish.json", "lake/part-0.parquet"},
		{"lock file dangling", Dir + "/publish.json", "nowhere.json"},
		{"lock folder to the lake", Dir, "lake"},
		{"lock folder dangling", Dir, "nowhere"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			lake := filepath.Join(tmp, "lake", "part-0.parquet")
			os.MkdirAll(filepath.Dir(lake), 0o755)
			os.WriteFile(lake, []byte("raw"), 0o644)
			out := filepath.Join(tmp, "out")
			link := filepath.Join(out, c.link)
			os.MkdirAll(filepath.Dir(link), 0o755)
			if err := os.Symlink(filepath.Join(tmp, c.target), link); err != nil {
				t.Fatal(err)
			}
			l := &FileLock{Path: PublishPath(out), Job: "publish", Owner: NewOwner(), TTL: time.Minute}
			if err := l.Acquire(context.Background()); !errors.Is(err, storage.ErrLink) {
				t.Fatalf("acquire: %v, want a link error", err)
			}
			if b, err := os.ReadFile(lake); err != nil || string(b) != "raw" {
				t.Errorf("the lake file reads %q, %v", b, err)
			}
			if entries, _ := os.ReadDir(filepath.Join(tmp, "lake")); len(entries) != 1 {
				t.Errorf("the lake holds %d files", len(entries))
			}
			if _, err := os.Lstat(filepath.Join(tmp, "nowhere")); err == nil {
				t.Error("the dangling link's target was made")
			}
		})
	}
	t.Run("lock file swapped for a link", func(t *testing.T) {
		tmp := t.TempDir()
		lake := filepath.Join(tmp, "lake.json")
		os.WriteFile(lake, []byte("raw"), 0o644)
		out := filepath.Join(tmp, "out")
		l := &FileLock{Path: PublishPath(out), Job: "publish", Owner: NewOwner(), TTL: time.Minute}
		if err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(l.Path)
		os.WriteFile(lake, b, 0o644) // the link's target reads as our lock
		os.Remove(l.Path)
		if err := os.Symlink(lake, l.Path); err != nil {
			t.Fatal(err)
		}
		if err := l.Renew(context.Background()); !errors.Is(err, storage.ErrLink) {
			t.Errorf("renew: %v, want a link error", err)
		}
		if err := l.Release(context.Background()); err == nil || !errors.Is(err, storage.ErrLink) {
			t.Errorf("release: %v, want a link error", err)
		}
		if got, _ := os.ReadFile(lake); string(got) != string(b) {
			t.Errorf("the link's target was rewritten: %q", got)
		}
	})
	t.Run("output folder is a link", func(t *testing.T) {
		tmp := t.TempDir()
		os.MkdirAll(filepath.Join(tmp, "real"), 0o755)
		out := filepath.Join(tmp, "out")
		if err := os.Symlink(filepath.Join(tmp, "real"), out); err != nil {
			t.Fatal(err)
		}
		l := &FileLock{Path: PublishPath(out), Job: "publish", Owner: NewOwner(), TTL: time.Minute}
		ctx := context.Background()
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
