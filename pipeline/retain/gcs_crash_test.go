package retain

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/deidproject/deid/pipeline/storage/gcstest"
	"github.com/deidproject/deid/rules"
)

// The crash test adapted to GCS: the parent test runs fake-gcs-server
// in-process on a TCP port; each child (this test binary, re-run as
// TestRetainChildGCS) reaches it through its own precondition-enforcing
// proxy, runs retain on a dataset in its own bucket and is killed with
// SIGKILL at a named failpoint or at a random moment. The parent reruns
// retain and checks the bucket's data equals an uninterrupted local run's
// (row multisets read with parquet-go) and that no journal, staged object
// or lock is left in the bucket.

const (
	childGCSEnv    = "DEID_RETAIN_CHILD_GCS" // emulator URL
	childBucketEnv = "DEID_RETAIN_CHILD_BUCKET"
)

// TestRetainChildGCS is the child process of TestRetainCrashGCS; it does
// nothing in a normal test run.
func TestRetainChildGCS(t *testing.T) {
	url, path := os.Getenv(childGCSEnv), os.Getenv(childEnv)
	if url == "" || path == "" {
		t.Skip("only run as the GCS crash test's child")
	}
	plan, fire := childSetup(t, path)
	bucket := os.Getenv(childBucketEnv)
	onBucket(plan, bucket)
	fmt.Println("ready")
	if _, err := lakeOn(t, url, bucket).run(t, plan, fire); err != nil {
		t.Fatal(err)
	}
}

// crashBucket writes the crash test's dataset under dir and uploads its
// files to gs://bucket/orders.
func crashBucket(t *testing.T, emu *gcstest.Emulator, dir, bucket string) (*gcsLake, *rules.RetainPlan) {
	emu.Server.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	plan := crashLake(t, dir)
	lake := lakeOn(t, emu.URL, bucket)
	// every file of the dataset, the isolated part (_restricted) included
	root := filepath.Join(dir, "orders")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			rel, _ := filepath.Rel(root, p)
			lake.upload(t, p, "gs://"+bucket+"/orders/"+filepath.ToSlash(rel))
		}
		return err
	})
	onBucket(plan, bucket)
	return lake, plan
}

func childGCS(t *testing.T, url, dir, bucket, failpoint string) *exec.Cmd {
	cmd, _ := startChild(t, "TestRetainChildGCS", childEnv+"="+filepath.Join(dir, "policy.yaml"), failpointEnv+"="+failpoint,
		childGCSEnv+"="+url, childBucketEnv+"="+bucket)
	return cmd
}

func TestRetainCrashGCS(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	emu := gcstest.Start(t, nil)
	// the expected state: one uninterrupted local run
	ref := t.TempDir()
	run(t, crashLake(t, ref), false)
	want := state(t, ref)

	// a clean child run, timed, and the failpoints counted in-process
	probe := t.TempDir()
	crashBucket(t, emu, probe, "probe")
	start := time.Now()
	if err := childGCS(t, emu.URL, probe, "probe", "").Wait(); err != nil {
		t.Fatalf("clean child run: %v", err)
	}
	runTime := time.Since(start)
	lake := lakeOn(t, emu.URL, "probe")
	if lake.download(t, probe); !equalState(state(t, probe), want) {
		t.Fatal("the child's run on GCS differs from the local run")
	}
	counts := map[string]int{}
	lake, plan := crashBucket(t, emu, t.TempDir(), "count")
	if _, err := lake.run(t, plan, func(n string) { counts[n]++ }); err != nil {
		t.Fatal(err)
	}

	type trial struct {
		failpoint string
		delay     time.Duration
	}
	var trials []trial
	for _, name := range failpoints {
		if counts[name] == 0 {
			t.Fatalf("failpoint %s never fires", name)
		}
		for k := 1; k <= counts[name]; k++ {
			trials = append(trials, trial{failpoint: fmt.Sprintf("%s:%d", name, k)})
		}
	}
	const random = 8
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	for range random {
		trials = append(trials, trial{delay: time.Duration(rng.Int64N(int64(runTime)))})
	}
	t.Logf("%d trials: %d at failpoints (%v), %d random kills within %s", len(trials), len(trials)-random, counts, random, runTime)
	for i, tr := range trials {
		dir := t.TempDir()
		bucket := fmt.Sprintf("trial-%d", i)
		lake, plan := crashBucket(t, emu, dir, bucket)
		cmd := childGCS(t, emu.URL, dir, bucket, tr.failpoint)
		if tr.failpoint == "" {
			time.Sleep(tr.delay)
			cmd.Process.Signal(syscall.SIGKILL)
		}
		err := cmd.Wait()
		if tr.failpoint != "" && (err == nil || !strings.Contains(err.Error(), "killed")) {
			t.Fatalf("trial %d (%s): child was not killed: %v", i, tr.failpoint, err)
		}
		// right after the kill: every object is readable and no row the
		// policy keeps is missing
		lake.download(t, dir)
		crashed := lakeRows(t, dir, nil)
		for file, rows := range want.rows {
			if !subset(rows, crashed[file]) {
				t.Fatalf("trial %d (%s%v): after the kill, %s lacks rows the policy keeps", i, tr.failpoint, tr.delay, file)
			}
		}
		rep, err := lake.run(t, plan, nil)
		if err != nil {
			t.Fatalf("trial %d (%s%v): rerun: %v", i, tr.failpoint, tr.delay, err)
		}
		left := lake.download(t, dir)
		if got := state(t, dir); !equalState(got, want) {
			t.Fatalf("trial %d (%s%v, recovery %q): data after the rerun differs:\n%s\nanonymized %d rows, want %d",
				i, tr.failpoint, tr.delay, rep.Datasets[0].Recovered, diffRows(got.rows, want.rows), len(got.anon), len(want.anon))
		}
		if len(left) > 0 {
			t.Fatalf("trial %d (%s%v): left in the bucket: %v", i, tr.failpoint, tr.delay, left)
		}
	}
}
