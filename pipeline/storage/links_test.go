package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

// linkTree is a temporary folder with a lake (lake/t/part-0.parquet,
// lake/f.json) and an output root out holding B/t/f.json and other.json.
func linkTree(t *testing.T) (tmp, out string) {
	t.Helper()
	tmp = t.TempDir()
	for _, f := range []string{"lake/t/part-0.parquet", "lake/t/f.json", "lake/f.json", "out/B/t/f.json", "out/other.json"} {
		p := filepath.Join(tmp, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("raw "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tmp, filepath.Join(tmp, "out")
}

// snapshot records every file's bytes and every link's target under dir,
// without following links.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			m[p] = "-> " + target
			return err
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			m[p] = string(b)
			return err
		}
		m[p] = "dir"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestLocalWritesRefuseLinks: every local write refuses a symbolic link at
// the location itself, at its folder or at a folder two levels up (to a
// file or folder outside the root, inside it, or dangling), names the
// link, and changes nothing anywhere: not the lake, not the output.
func TestLocalWritesRefuseLinks(t *testing.T) {
	const loc = "A/t/f.json" // relative to the output root
	links := []struct {
		name   string
		link   string // relative to the output root
		target func(tmp, out string) string
	}{
		{"file to the lake", "A/t/f.json", func(tmp, _ string) string { return filepath.Join(tmp, "lake/t/f.json") }},
		{"file relative to the lake", "A/t/f.json", func(string, string) string { return "../../../lake/t/f.json" }},
		{"file inside the root", "A/t/f.json", func(_, out string) string { return filepath.Join(out, "other.json") }},
		{"dangling file", "A/t/f.json", func(tmp, _ string) string { return filepath.Join(tmp, "nowhere.json") }},
		{"folder to the lake", "A/t", func(string, string) string { return "../../lake/t" }},
		{"folder inside the root", "A/t", func(_, out string) string { return filepath.Join(out, "B/t") }},
		{"dangling folder", "A/t", func(tmp, _ string) string { return filepath.Join(tmp, "nowhere") }},
		{"two levels up to the lake", "A", func(tmp, _ string) string { return filepath.Join(tmp, "lake") }},
		{"two levels up inside the root", "A", func(string, string) string { return "B" }},
	}
	ops := []struct {
		name string
		do   func(ctx context.Context, out, loc string) error
	}{
		{"create", func(ctx context.Context, _, loc string) error {
			return storage.WriteFile(ctx, storage.Local{}, loc, []byte("deidentified"))
		}},
		{"delete", func(ctx context.Context, _, loc string) error { return storage.Local{}.Delete(ctx, loc) }},
		{"move onto", func(ctx context.Context, out, loc string) error {
			src := filepath.Join(out, ".deid-staging", "run", "f.json")
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(src, []byte("deidentified"), 0o644); err != nil {
				return err
			}
			err := storage.Local{}.Move(ctx, src, loc)
			os.RemoveAll(filepath.Join(out, ".deid-staging"))
			return err
		}},
		{"move from", func(ctx context.Context, out, loc string) error {
			return storage.Local{}.Move(ctx, loc, filepath.Join(out, "C", "f.json"))
		}},
		{"create exclusive", func(ctx context.Context, _, loc string) error {
			_, err := storage.Local{}.CreateExclusive(ctx, loc, []byte("held"))
			return err
		}},
		{"remove all", func(ctx context.Context, _, loc string) error { return storage.Local{}.RemoveAll(ctx, loc) }},
	}
	for _, l := range links {
		for _, op := range ops {
			for _, roots := range []string{"output root", "no root"} {
				t.Run(l.name+"/"+op.name+"/"+roots, func(t *testing.T) {
					tmp, out := linkTree(t)
					symlink(t, l.target(tmp, out), filepath.Join(out, l.link))
					ctx := context.Background()
					if roots == "output root" {
						ctx = storage.WithRoots(ctx, out)
					}
					before := snapshot(t, tmp)
					err := op.do(ctx, out, filepath.Join(out, loc))
					var le *storage.LinkError
					if !errors.Is(err, storage.ErrLink) || !errors.As(err, &le) {
						t.Fatalf("got %v, want a link error", err)
					}
					if le.Link != filepath.Join(out, l.link) || le.Target != l.target(tmp, out) {
						t.Errorf("link %q to %q, want %q to %q", le.Link, le.Target, filepath.Join(out, l.link), l.target(tmp, out))
					}
					if !strings.Contains(err.Error(), filepath.Join(out, l.link)) {
						t.Errorf("%v does not name the link", err)
					}
					if after := snapshot(t, tmp); !reflect.DeepEqual(before, after) {
						t.Errorf("the tree changed:\nbefore %v\nafter  %v", before, after)
					}
				})
			}
		}
	}
}

// TestLocalCommitRefusesLinkSwappedIn: a folder replaced by a link between
// Create and Commit is found at Commit; nothing reaches the link's target.
func TestLocalCommitRefusesLinkSwappedIn(t *testing.T) {
	for _, target := range []string{"lake", "inside"} {
		t.Run(target, func(t *testing.T) {
			tmp, out := linkTree(t)
			ctx := storage.WithRoots(context.Background(), out)
			loc := filepath.Join(out, "A", "t", "part-0.parquet")
			w, err := storage.Local{}.Create(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if _, err := w.Write([]byte("deidentified")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(out, "A", "t"), filepath.Join(out, "A", "t.old")); err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(tmp, "lake", "t")
			if target == "inside" {
				to = filepath.Join(out, "B", "t")
			}
			symlink(t, to, filepath.Join(out, "A", "t"))
			before := snapshot(t, filepath.Join(tmp, "lake"))
			beforeB := snapshot(t, filepath.Join(out, "B"))
			if _, err := w.Commit(); !errors.Is(err, storage.ErrLink) {
				t.Fatalf("commit through a link: %v, want a link error", err)
			}
			if !reflect.DeepEqual(before, snapshot(t, filepath.Join(tmp, "lake"))) || !reflect.DeepEqual(beforeB, snapshot(t, filepath.Join(out, "B"))) {
				t.Error("the commit changed the link's target")
			}
		})
	}
}

// TestLocalLinksAboveTheRoot: links in the root's own path (the output
// folder itself, a folder above it) are the operator's and are followed.
func TestLocalLinksAboveTheRoot(t *testing.T) {
	cases := []struct {
		name string
		link string // made a link to <tmp>/real
		root string // the output root, below tmp
	}{
		{"the output folder", "out", "out"},
		{"a folder above it", "data", "data/out"},
		{"a folder above it, output missing", "data", "data/new/out"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			real := filepath.Join(tmp, "real")
			if err := os.MkdirAll(filepath.Join(real, "out"), 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, real, filepath.Join(tmp, c.link))
			if c.link == "out" {
				os.RemoveAll(filepath.Join(real, "out"))
			}
			root := filepath.Join(tmp, c.root)
			ctx := storage.WithRoots(context.Background(), root)
			loc := filepath.Join(root, "A", "t", "part-0.parquet")
			if err := storage.WriteFile(ctx, storage.Local{}, loc, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := (storage.Local{}).CreateExclusive(ctx, filepath.Join(root, ".deid-lock", "publish.json"), []byte("held")); err != nil {
				t.Fatal(err)
			}
			if err := (storage.Local{}).Move(ctx, loc, filepath.Join(root, "A", "u", "part-0.parquet")); err != nil {
				t.Fatal(err)
			}
			if err := (storage.Local{}).RemoveAll(ctx, filepath.Join(root, "A")); err != nil {
				t.Fatal(err)
			}
			if err := (storage.Local{}).Delete(ctx, filepath.Join(root, ".deid-lock", "publish.json")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLocalListLinks: a link to a file lists as the file, a link to a
// folder below the walked folder is not followed, and the walked folder
// may itself be a link (the caller's).
func TestLocalListLinks(t *testing.T) {
	tmp, _ := linkTree(t)
	symlink(t, filepath.Join(tmp, "lake", "t"), filepath.Join(tmp, "t2"))
	symlink(t, "part-0.parquet", filepath.Join(tmp, "lake", "t", "part-1.parquet"))
	symlink(t, filepath.Join(tmp, "lake"), filepath.Join(tmp, "lake", "t", "sub"))
	for _, prefix := range []string{filepath.Join(tmp, "lake", "t") + "/", filepath.Join(tmp, "t2") + "/"} {
		var got []string
		err := storage.Local{}.List(context.Background(), prefix, func(a storage.Attrs) error {
			got = append(got, strings.TrimPrefix(a.Location, prefix))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"f.json", "part-0.parquet", "part-1.parquet"}; !reflect.DeepEqual(got, want) {
			t.Errorf("list %s: %v, want %v", prefix, got, want)
		}
	}
}

// TestLinkAt: a source file that is a symbolic link is named with its
// target; one with other hard links is refused with its link count (and
// with none left, accepted); a failure to examine the file is an error,
// not a pass; a missing file, a folder and an object are accepted.
func TestLinkAt(t *testing.T) {
	tmp, _ := linkTree(t)
	link := filepath.Join(tmp, "lake", "t", "part-1.parquet")
	symlink(t, "part-0.parquet", link)
	err := storage.LinkAt("rewrite", link)
	var le *storage.LinkError
	if !errors.As(err, &le) || le.Target != "part-0.parquet" || !strings.Contains(err.Error(), `"part-0.parquet"`) {
		t.Fatalf("got %v", err)
	}
	for _, p := range []string{filepath.Join(tmp, "lake", "t", "part-0.parquet"), filepath.Join(tmp, "lake", "t"), filepath.Join(tmp, "missing"), "gs://b/x"} {
		if err := storage.LinkAt("rewrite", p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	t.Run("hard links", func(t *testing.T) {
		file := filepath.Join(tmp, "lake", "f.json")
		for n := 2; n <= 3; n++ {
			if err := os.Link(file, filepath.Join(tmp, "lake", "t", fmt.Sprintf("copy-%d.json", n))); err != nil {
				t.Fatal(err)
			}
			err := storage.LinkAt("rewrite", file)
			var he *storage.HardLinkError
			if !errors.As(err, &he) || he.Links != uint64(n) || !errors.Is(err, storage.ErrHardLink) || errors.Is(err, storage.ErrLink) {
				t.Fatalf("%d names: got %v", n, err)
			}
			for _, want := range []string{fmt.Sprintf("%d hard links", n), `"` + file + `"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%v does not say %s", err, want)
				}
			}
		}
		for n := 2; n <= 3; n++ {
			if err := os.Remove(filepath.Join(tmp, "lake", "t", fmt.Sprintf("copy-%d.json", n))); err != nil {
				t.Fatal(err)
			}
		}
		if err := storage.LinkAt("rewrite", file); err != nil {
			t.Errorf("one name left: %v", err)
		}
	})

	t.Run("cannot examine", func(t *testing.T) {
		// a path through a file (ENOTDIR) and, unless root, a folder
		// without search permission (EACCES): neither is a missing file
		cases := []string{filepath.Join(tmp, "lake", "f.json", "x.parquet")}
		if os.Geteuid() != 0 {
			locked := filepath.Join(tmp, "locked")
			if err := os.Mkdir(locked, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(locked, "x.parquet"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(locked, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(locked, 0o755) })
			cases = append(cases, filepath.Join(locked, "x.parquet"))
		}
		for _, p := range cases {
			err := storage.LinkAt("rewrite", p)
			if err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: got %v, want an error naming it", p, err)
			}
		}
	})
}
