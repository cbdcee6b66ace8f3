package storage_test

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/storage/gcstest"
	"github.com/deidproject/deid/pipeline/storage/storagetest"
)

func TestLocalConformance(t *testing.T) {
	storagetest.Run(t, storage.Local{}, t.TempDir())
}

func TestGlob(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	stores := []struct {
		name string
		s    storage.Store
		root string
	}{
		{"local", storage.Local{}, t.TempDir()},
		{"gcs", gcstest.Store(t, emu.URL, storage.GCSOptions{}), "gs://lake/glob"},
	}
	files := []string{
		"browsing/dt=2026-10-30/part-0.parquet",
		"browsing/dt=2026-10-31/part-0.parquet",
		"browsing/dt=2026-10-31/part-1.parquet",
		"browsing/dt=2026-10-31/_SUCCESS",
		"browsing/dt=2026-10-31/.part-2.parquet.crc",
		"browsing/_staging/part-9.parquet",
		"browsing/.hidden/part-8.parquet",
		"browsing/x/y/z.parquet",
		"other.parquet",
	}
	cases := []struct {
		pattern string
		root    string
		rels    []string
	}{
		{"browsing/dt=*/*.parquet", "browsing", []string{"dt=2026-10-30/part-0.parquet", "dt=2026-10-31/part-0.parquet", "dt=2026-10-31/part-1.parquet"}},
		{"browsing/dt=2026-10-31/*", "browsing/dt=2026-10-31", []string{"part-0.parquet", "part-1.parquet"}},
		{"browsing/**/*.parquet", "browsing", []string{"dt=2026-10-30/part-0.parquet", "dt=2026-10-31/part-0.parquet", "dt=2026-10-31/part-1.parquet", "x/y/z.parquet"}},
		{"browsing/**/_*", "browsing", []string{"dt=2026-10-31/_SUCCESS"}},
		{"browsing/_staging/*.parquet", "browsing/_staging", []string{"part-9.parquet"}},
		{"browsing/dt=2026-10-3[0]/*.parquet", "browsing", []string{"dt=2026-10-30/part-0.parquet"}},
		{"*.parquet", ".", []string{"other.parquet"}},
		{"nothing/*.parquet", "nothing", nil},
	}
	for _, st := range stores {
		for _, f := range files {
			put(t, st.s, storage.Join(st.root, f), f)
		}
		for _, c := range cases {
			r, m, err := storage.Glob(context.Background(), st.s, storage.Join(st.root, c.pattern))
			if err != nil {
				t.Errorf("%s: %s: %v", st.name, c.pattern, err)
				continue
			}
			var rels []string
			for _, x := range m {
				rels = append(rels, x.Rel)
				if x.Location != storage.Join(st.root, c.root, x.Rel) {
					t.Errorf("%s: %s: location %s, rel %s", st.name, c.pattern, x.Location, x.Rel)
				}
			}
			if !reflect.DeepEqual(rels, c.rels) || r != storage.Join(st.root, c.root) {
				t.Errorf("%s: %s: root %s, matches %v; want %s, %v", st.name, c.pattern, r, rels, c.root, c.rels)
			}
		}
	}
	root := stores[0].root
	// a literal path names one file, which must exist
	_, m, err := storage.Glob(context.Background(), storage.Local{}, filepath.Join(root, "other.parquet"))
	if err != nil || len(m) != 1 || m[0].Rel != "other.parquet" {
		t.Errorf("literal: %v %v", m, err)
	}
	if _, _, err := storage.Glob(context.Background(), storage.Local{}, filepath.Join(root, "missing.parquet")); err == nil {
		t.Error("a missing literal path matched")
	}
	if _, _, err := storage.Glob(context.Background(), storage.Local{}, root+"/browsing/*//x.parquet"); err == nil {
		t.Error("an empty segment was accepted")
	}
}

func TestJoinRel(t *testing.T) {
	if got := storage.Join("gs://b/lake", "x", "y.parquet"); got != "gs://b/lake/x/y.parquet" {
		t.Errorf("Join = %s", got)
	}
	if got, _ := storage.Rel("gs://b/lake", "gs://b/lake/x/y.parquet"); got != "x/y.parquet" {
		t.Errorf("Rel = %s", got)
	}
	if got := storage.Join("/out", "browsing", "dt=1/x.parquet"); got != "/out/browsing/dt=1/x.parquet" {
		t.Errorf("Join = %s", got)
	}
}

// TestLocalListFollowsFileLinks: a lake whose files are symbolic links lists
// them; a dangling link is an error, not a silently missing file.
func TestLocalListFollowsFileLinks(t *testing.T) {
	root := t.TempDir()
	target := filepath.Join(root, "data.parquet")
	os.WriteFile(target, []byte("12345"), 0o644)
	os.MkdirAll(filepath.Join(root, "in"), 0o755)
	if err := os.Symlink(target, filepath.Join(root, "in", "a.parquet")); err != nil {
		t.Skip(err)
	}
	_, m, err := storage.Glob(context.Background(), storage.Local{}, filepath.Join(root, "in", "*.parquet"))
	if err != nil || len(m) != 1 || m[0].Size != 5 {
		t.Fatalf("glob over a link: %v %v", m, err)
	}
	os.Symlink(filepath.Join(root, "gone.parquet"), filepath.Join(root, "in", "b.parquet"))
	if _, _, err := storage.Glob(context.Background(), storage.Local{}, filepath.Join(root, "in", "*.parquet")); err == nil {
		t.Error("a dangling link was skipped silently")
	}
}

// TestLocalRemoveAllTakesTempFiles: a killed writer's temporary file, which
// List does not show, goes with its folder.
func TestLocalRemoveAllTakesTempFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work")
	w, err := storage.Local{}.Create(context.Background(), filepath.Join(dir, "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial")) // never committed nor aborted, as after kill -9
	if err := (storage.Local{}).RemoveAll(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("folder still there: %v", err)
	}
}

// TestRemoveOrphanTemps: the temporary file of a writer killed before it
// finished goes; those of a running process (this one) and of another host
// sharing the folder stay.
func TestRemoveOrphanTemps(t *testing.T) {
	if dir := os.Getenv("DEID_ORPHAN_DIR"); dir != "" {
		// the helper process: leave a temporary file and wait to be killed
		w, err := storage.Local{}.Create(context.Background(), filepath.Join(dir, "killed.bin"))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		os.Stdout.WriteString("ready\n")
		time.Sleep(time.Minute)
		return
	}
	dir := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^TestRemoveOrphanTemps$")
	helper.Env = append(os.Environ(), "DEID_ORPHAN_DIR="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		helper.Process.Kill()
		t.Fatalf("helper said %q", line)
	}
	helper.Process.Kill()
	helper.Wait()
	mine, err := storage.Local{}.Create(context.Background(), filepath.Join(dir, "mine.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Abort()
	other := filepath.Join(dir, ".deid-tmp-otherhost~1-shared.bin-0123")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	storage.RemoveOrphanTemps(context.Background(), dir)
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 2 || !slices.Contains(left, filepath.Base(other)) || slices.ContainsFunc(left, func(n string) bool { return strings.Contains(n, "killed.bin") }) {
		t.Errorf("left %v, want this process's temporary and the other host's", left)
	}
}
