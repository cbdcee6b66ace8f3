package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Writes never follow links (issue 14, items 2 and 3): whoever can write a
// published folder or a dataset root must not be able to make deid write
// through a symbolic link onto the lake.

// linksWorkdir copies the sample lake and the example policies into a new
// folder: the example policy reads ../../testdata/lake and writes
// ../../out/example/<destination> relative to deploy/examples.
func linksWorkdir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	for _, sub := range []string{"testdata/lake", "deploy/examples"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(sub)), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(t), sub), filepath.Join(dir, sub)).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	return dir
}

// replaceWithLink moves what is at path (if anything) out of the way and
// puts a symbolic link to target there.
func replaceWithLink(t *testing.T, path, target string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		if err := os.Rename(path, path+".moved-away"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// wantLinkRefused checks a data error (exit 3) that names the link and its
// target.
func wantLinkRefused(t *testing.T, res deidResult, link, target string) {
	t.Helper()
	if res.code != exitData {
		t.Fatalf("exit %d, want %d (a data error); stderr:\n%s", res.code, exitData, res.stderr)
	}
	for _, want := range []string{`"` + link + `"`, `"` + target + `"`, "symbolic link"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr does not name %s:\n%s", want, res.stderr)
		}
	}
}

var linksRun = []string{"run", "-c", "deploy/examples/policy.yaml", "--now", "2026-11-01T00:00:00Z"}

// TestRunRefusesPublishedFolderLinkedToLake: after a run, a published
// dataset folder, partition folder or file replaced by a link into the lake
// makes the next run (and plan, and validate) fail with a data error naming
// the link; the lake is byte for byte what it was.
func TestRunRefusesPublishedFolderLinkedToLake(t *testing.T) {
	cases := []struct {
		name   string
		link   string // relative to the work folder
		target string // as the link reads
	}{
		{"dataset folder", "out/example/training/device", "../../../testdata/lake/device"},
		{"dataset folder of another destination", "out/example/analytics/service", "../../../testdata/lake/service"},
		{"partition folder", "out/example/training/service/dt=2026-10-31", "../../../../testdata/lake/service/dt=2026-10-31"},
		{"published file", "out/example/training/orders/orders.parquet", "../../../../testdata/lake/orders/orders.parquet"},
		{"output's dataset folder, absolute link", "out/example/research/orders", "ABS/testdata/lake/orders"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := linksWorkdir(t)
			if res := runDeid(t, dir, nil, linksRun...); res.code != 0 {
				t.Fatalf("first run: exit %d: %s", res.code, res.stderr)
			}
			target := strings.Replace(c.target, "ABS", dir, 1)
			replaceWithLink(t, filepath.Join(dir, c.link), target)
			lake := treeState(t, filepath.Join(dir, "testdata", "lake"))
			for _, cmd := range [][]string{linksRun, append([]string{"plan"}, linksRun[1:]...), {"validate", "-c", "deploy/examples/policy.yaml"}} {
				wantLinkRefused(t, runDeid(t, dir, nil, cmd...), c.link, target)
			}
			if got := treeState(t, filepath.Join(dir, "testdata", "lake")); !reflect.DeepEqual(got, lake) {
				t.Errorf("the lake changed:\nbefore %v\nafter  %v", lake, got)
			}
		})
	}
}

// TestRunRefusesLinksAtOwnNames: a link at the manifest, the reports
// folder, the lock folder, the staging folder or the shards folder of an
// output (before the first run or after one) is refused, naming the link;
// the link's target is unchanged.
func TestRunRefusesLinksAtOwnNames(t *testing.T) {
	cases := []struct {
		name   string
		link   string
		target string
		first  bool // run once before the link is made
	}{
		{"manifest", "out/example/training/_manifest.json", "../../../testdata/lake/erasure.csv", true},
		{"reports folder", "out/example/training/_reports", "../../../testdata/lake/device", true},
		{"reports folder, first run", "out/example/partner_ads/_reports", "../../../testdata/lake/device", false},
		{"lock folder", "out/example/training/.deid-lock", "../../../testdata/lake/device", false},
		{"lock file", "out/example/analytics/.deid-lock/publish.json", "../../../../testdata/lake/consent.csv", true},
		{"staging folder", "out/example/training/.deid-staging", "../../../testdata/lake/service", false},
		{"shards folder", "out/example/research/.deid-shards", "../../../testdata/lake", true},
		{"dangling staging folder", "out/example/training/.deid-staging", "../../../nowhere", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := linksWorkdir(t)
			if c.first {
				if res := runDeid(t, dir, nil, linksRun...); res.code != 0 {
					t.Fatalf("first run: exit %d: %s", res.code, res.stderr)
				}
			}
			replaceWithLink(t, filepath.Join(dir, c.link), c.target)
			lake := treeState(t, filepath.Join(dir, "testdata", "lake"))
			wantLinkRefused(t, runDeid(t, dir, nil, linksRun...), c.link, c.target)
			if got := treeState(t, filepath.Join(dir, "testdata", "lake")); !reflect.DeepEqual(got, lake) {
				t.Errorf("the lake changed:\nbefore %v\nafter  %v", lake, got)
			}
			if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
				t.Error("the dangling link's target was made")
			}
		})
	}
}

// TestRunFollowsOperatorLinks: links in the part of a path the operator
// wrote (the output folder itself, a folder above it) are followed.
func TestRunFollowsOperatorLinks(t *testing.T) {
	for _, link := range []string{"out", "out/example", "out/example/training"} {
		t.Run(link, func(t *testing.T) {
			dir := linksWorkdir(t)
			real := filepath.Join(dir, "real")
			if err := os.MkdirAll(real, 0o755); err != nil {
				t.Fatal(err)
			}
			replaceWithLink(t, filepath.Join(dir, link), real)
			for i := 0; i < 2; i++ {
				if res := runDeid(t, dir, nil, linksRun...); res.code != 0 {
					t.Fatalf("run %d: exit %d: %s", i, res.code, res.stderr)
				}
			}
			if len(treeState(t, real)) < 2 { // the folder itself, and what was written
				t.Error("nothing was written through the operator's link")
			}
		})
	}
}

var linksRetain = []string{"retain", "-c", "deploy/examples/policy.yaml", "--now", "2026-11-01T00:00:00Z"}

// TestRetainRefusesSourceLink: deid retain (and its dry run) refuses a
// source file that is a link, naming the link and its target, before it
// changes any dataset; the target is unchanged.
func TestRetainRefusesSourceLink(t *testing.T) {
	cases := []struct {
		name   string
		file   string // a source file, moved to real/ and linked
		target string
	}{
		{"orders file", "testdata/lake/orders/orders.parquet", "../../real/orders.parquet"},
		{"device partition file", "testdata/lake/device/dt=2026-10-30/part-0.parquet", "../../../real/part-0.parquet"},
		{"service file, absolute link", "testdata/lake/service/dt=2026-10-31/part-0.parquet", "ABS/testdata/real/part-0.parquet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := linksWorkdir(t)
			real := filepath.Join(dir, "testdata", "real", filepath.Base(c.file))
			if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, c.file), real); err != nil {
				t.Fatal(err)
			}
			target := strings.Replace(c.target, "ABS", dir, 1)
			if err := os.Symlink(target, filepath.Join(dir, c.file)); err != nil {
				t.Fatal(err)
			}
			before := treeState(t, filepath.Join(dir, "testdata"))
			for _, cmd := range [][]string{append(linksRetain, "--dry-run"), linksRetain} {
				wantLinkRefused(t, runDeid(t, dir, nil, cmd...), c.file, target)
			}
			if got := treeState(t, filepath.Join(dir, "testdata")); !reflect.DeepEqual(got, before) {
				t.Errorf("the lake changed:\nbefore %v\nafter  %v", before, got)
			}
		})
	}
}

// TestRetainRefusesLinksAtItsFolders: a link to the lake in the place of
// a folder or file deid retain writes in a dataset root (the isolated and
// anonymized parts, its work folder, its lock) or in an output is refused,
// naming the link, before any dataset changes.
func TestRetainRefusesLinksAtItsFolders(t *testing.T) {
	cases := []struct {
		name   string
		link   string
		target string
		erase  bool // retain --erase-outputs after a run (the outputs' files)
	}{
		{"restricted", "testdata/lake/orders/_restricted", "../../victim", false},
		{"anonymized", "testdata/lake/orders/_anonymized", "../../victim", false},
		{"work folder", "testdata/lake/device/.deid-retain", "../../victim", false},
		{"lock", "testdata/lake/service/.deid-retain.lock", "../../victim/keep.txt", false},
		{"restricted, dangling", "testdata/lake/orders/_restricted", "../../nowhere", false},
		{"output's work folder", "out/example/training/.deid-retain", "../../../testdata/victim", true},
		{"output's manifest", "out/example/training/_manifest.json", "../../../testdata/victim/keep.txt", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := linksWorkdir(t)
			victim := filepath.Join(dir, "testdata", "victim")
			if err := os.MkdirAll(victim, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(victim, "keep.txt"), []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := linksRetain
			if c.erase {
				if res := runDeid(t, dir, nil, linksRun...); res.code != 0 {
					t.Fatalf("run: exit %d: %s", res.code, res.stderr)
				}
				args = append(args, "--outputs")
			}
			replaceWithLink(t, filepath.Join(dir, c.link), c.target)
			before := treeState(t, filepath.Join(dir, "testdata"))
			wantLinkRefused(t, runDeid(t, dir, nil, args...), c.link, c.target)
			if got := treeState(t, filepath.Join(dir, "testdata")); !reflect.DeepEqual(got, before) {
				t.Errorf("the lake changed:\nbefore %v\nafter  %v", before, got)
			}
		})
	}
}

// TestRetainRefusesHardLinkedSource: deid retain (and its dry run)
// refuses a source file with a second hard link, with a data error naming
// the file and its link count, before it changes any dataset: the rewrite
// would be a new file, and the other name would keep the erased rows.
func TestRetainRefusesHardLinkedSource(t *testing.T) {
	dir := linksWorkdir(t)
	file := "testdata/lake/orders/orders.parquet"
	if err := os.Link(filepath.Join(dir, file), filepath.Join(dir, "testdata", "orders-backup.parquet")); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, filepath.Join(dir, "testdata"))
	for _, cmd := range [][]string{append(linksRetain, "--dry-run"), linksRetain} {
		res := runDeid(t, dir, nil, cmd...)
		if res.code != exitData {
			t.Fatalf("%v: exit %d, want %d (a data error); stderr:\n%s", cmd, res.code, exitData, res.stderr)
		}
		for _, want := range []string{file + `"`, "2 hard links"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("stderr does not say %s:\n%s", want, res.stderr)
			}
		}
	}
	if got := treeState(t, filepath.Join(dir, "testdata")); !reflect.DeepEqual(got, before) {
		t.Errorf("the lake changed:\nbefore %v\nafter  %v", before, got)
	}
}
