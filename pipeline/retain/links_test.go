package retain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// TestRetainRefusesLinks: a source file that is a symbolic link, or a link
// at a folder or file retain writes in the dataset root, is refused as a
// data error naming the link and its target, in a dry run too, and the
// target is unchanged; a dataset root that is itself a link is followed.
func TestRetainRefusesLinks(t *testing.T) {
	cases := []struct {
		name string
		link string // relative to the temporary folder; its target is <tmp>/elsewhere/<base of link>
	}{
		{"source file", "orders/part-1.parquet"},
		{"isolated part", "orders/" + isoFolder},
		{"anonymized part", "orders/" + anonFolder},
		{"work folder", "orders/" + workDir},
		{"lock", "orders/" + lockName},
	}
	for _, c := range cases {
		for _, dry := range []bool{true, false} {
			name := c.name
			if dry {
				name += " dry run"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				writeOrders(t, filepath.Join(dir, "orders", "part-0.parquet"), genOrders(0, []string{"old", "new"}, 10), 10, nil)
				target := filepath.Join(dir, "elsewhere", filepath.Base(c.link))
				if strings.HasSuffix(c.link, ".parquet") {
					writeOrders(t, target, genOrders(100, []string{"old", "new"}, 10), 10, nil)
				} else if err := os.MkdirAll(target, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, filepath.Join(dir, c.link)); err != nil {
					t.Fatal(err)
				}
				before := snapshotFiles(t, dir)
				plan := writePolicy(t, dir, policyOpts{legal: true, anonymize: true, erasure: []int64{1, 2, 3}})
				_, err := Run(context.Background(), plan, Options{Store: storage.Local{}, DryRun: dry})
				if !errors.Is(err, dataerr.ErrData) || !errors.Is(err, storage.ErrLink) {
					t.Fatalf("got %v, want a data error about a link", err)
				}
				for _, want := range []string{filepath.Join(dir, c.link), target} {
					if !strings.Contains(err.Error(), `"`+want+`"`) {
						t.Errorf("%v does not name %q", err, want)
					}
				}
				after := snapshotFiles(t, dir)
				delete(after, filepath.Join(dir, "erasure.csv"))
				delete(after, filepath.Join(dir, "policy.yaml"))
				for p, b := range before {
					if !bytes.Equal(after[p], b) {
						t.Errorf("%s changed", p)
					}
				}
				if len(after) != len(before) {
					t.Errorf("%d files before, %d after", len(before), len(after))
				}
			})
		}
	}
	t.Run("root is a link", func(t *testing.T) {
		dir := t.TempDir()
		writeOrders(t, filepath.Join(dir, "real", "part-0.parquet"), genOrders(0, []string{"old", "new"}, 10), 10, nil)
		if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "orders")); err != nil {
			t.Fatal(err)
		}
		rep := run(t, writePolicy(t, dir, policyOpts{}), false)
		if rep.Datasets[0].Files.Rewritten != 1 {
			t.Fatalf("files %+v, want one rewritten", rep.Datasets[0].Files)
		}
		if info, err := os.Lstat(filepath.Join(dir, "orders")); err != nil || info.Mode()&os.ModeSymlink == 0 {
			t.Error("the root link was replaced")
		}
	})
}

// snapshotFiles reads every regular file under dir (links not followed).
func snapshotFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			m[p], _ = os.ReadFile(p)
		}
		return err
	})
	return m
}

// TestRetainRefusesHardLinks: a source file, or a published file retain
// would rewrite, that has another name (a hard link) is refused as a data
// error naming it and its link count, in a dry run too, and no name of it
// changes: a rewrite is a new file, and the other name would keep the
// erased rows.
func TestRetainRefusesHardLinks(t *testing.T) {
	wantRefused := func(t *testing.T, err error, file string) {
		t.Helper()
		if !errors.Is(err, dataerr.ErrData) || !errors.Is(err, storage.ErrHardLink) {
			t.Fatalf("got %v, want a data error about a hard link", err)
		}
		for _, want := range []string{`"` + file + `"`, "2 hard links"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v does not say %s", err, want)
			}
		}
	}
	for _, dry := range []bool{true, false} {
		t.Run(fmt.Sprintf("source file dry run %v", dry), func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "orders", "part-0.parquet")
			writeOrders(t, file, genOrders(0, []string{"old", "new"}, 10), 10, nil)
			if err := os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(file, filepath.Join(dir, "elsewhere", "part-0.parquet")); err != nil {
				t.Fatal(err)
			}
			before := snapshotFiles(t, dir)
			plan := writePolicy(t, dir, policyOpts{erasure: []int64{1, 2, 3}})
			_, err := Run(context.Background(), plan, Options{Store: storage.Local{}, DryRun: dry})
			wantRefused(t, err, file)
			after := snapshotFiles(t, dir)
			for p, b := range before {
				if !bytes.Equal(after[p], b) {
					t.Errorf("%s changed", p)
				}
			}
		})
		t.Run(fmt.Sprintf("published file dry run %v", dry), func(t *testing.T) {
			pub := publish(t)
			files, _ := filepath.Glob(filepath.Join(pub.dir, "out", "a", "orders", "*.parquet"))
			if len(files) == 0 {
				t.Fatal("nothing published")
			}
			before := map[string][]byte{}
			for i, f := range files {
				other := filepath.Join(pub.dir, fmt.Sprintf("copy-%d.parquet", i))
				if err := os.Link(f, other); err != nil {
					t.Fatal(err)
				}
				before[f], _ = os.ReadFile(f)
			}
			os.WriteFile(pub.erasure, []byte("user_id\n1003\n1011\n"), 0o644)
			plan, err := rules.CompileRetain(pub.pol, now)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: pub.full, RunID: "erase", DryRun: dry})
			if !errors.Is(err, storage.ErrHardLink) {
				t.Fatalf("got %v, want a hard link refused", err)
			}
			var file string
			for f := range before {
				if strings.Contains(err.Error(), `"`+f+`"`) {
					file = f
				}
			}
			wantRefused(t, err, file)
			for f, b := range before {
				if got, _ := os.ReadFile(f); !bytes.Equal(got, b) {
					t.Errorf("%s changed", f)
				}
			}
		})
	}
}
