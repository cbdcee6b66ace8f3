package retain

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// The crash test runs retain in a child process (this test binary, re-run
// as TestRetainChild) and kills it with SIGKILL at a named failpoint or at a
// random moment, then runs retain again and checks the data equals what one
// uninterrupted run gives, row multisets compared with parquet-go, and that
// no temporary file, journal or lock is left.
//
// By default it makes every failpoint fire at every occurrence and adds
// random kills up to 30 trials; DEID_RETAIN_CRASH_TRIALS=N asks for N
// random kills more (.ci/retain-crash runs 300).

const (
	childEnv     = "DEID_RETAIN_CHILD_POLICY"
	failpointEnv = "DEID_RETAIN_FAILPOINT" // name:occurrence
)

// TestRetainChild is the child process of the crash test; it does nothing
// in a normal test run.
func TestRetainChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only run as the crash test's child")
	}
	plan, fire := childSetup(t, path)
	fmt.Println("ready")
	// scratch beside the lake's folder, in the parent test's temporary
	// root: a killed child leaves its scratch folder, which the test's
	// cleanup removes (a killed run's is left as a killed process leaves it)
	scratch := filepath.Dir(filepath.Dir(path))
	if _, err := Run(context.Background(), plan, Options{Store: storage.Local{}, RunID: fmt.Sprintf("child-%d", os.Getpid()), ScratchDir: scratch, failAt: fire}); err != nil {
		t.Fatal(err)
	}
}

// childSetup is the start of a crash test's child process: the retain plan
// of the policy at path, and the failpoint function that kills the process
// at the step DEID_RETAIN_FAILPOINT names ("name:n", the nth time; none
// when unset).
func childSetup(t *testing.T, path string) (*rules.RetainPlan, func(string)) {
	p, err := rules.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rules.CompileRetain(p, now)
	if err != nil {
		t.Fatal(err)
	}
	fp := os.Getenv(failpointEnv)
	if fp == "" {
		return plan, nil
	}
	name, nth, _ := strings.Cut(fp, ":")
	want, _ := strconv.Atoi(nth)
	seen := 0
	return plan, func(n string) {
		if n == name {
			if seen++; seen == want {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Hour)
			}
		}
	}
}

// startChild starts the test binary running the child test named by run,
// with env added, and waits for its "ready" line.
func startChild(t *testing.T, run string, env ...string) (*exec.Cmd, *bufio.Reader) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q %v", line, err)
	}
	return cmd, r
}

// crashLake writes the crash test's dataset under dir: four files, with
// rows to drop, rewrite, anonymize, erase and isolate (a legal minimum of 2
// years), a file that goes whole, and a file an earlier run isolated, some
// of whose rows are released.
func crashLake(t testing.TB, dir string) *rules.RetainPlan {
	files := [][]string{{"old", "mixed", "new"}, {"old"}, {"new", "mixed", "recent"}, {"new", "recent"}}
	for i, kinds := range files {
		writeOrders(t, filepath.Join(dir, "orders", fmt.Sprintf("part-%d.parquet", i)), genOrders(i, kinds, 30), 30, nil)
	}
	writeOrders(t, filepath.Join(dir, "orders", isoFolder, "part-1", "earlier.parquet"), genOrders(9, []string{"new", "recent", "old"}, 30), 30, nil)
	return writePolicy(t, dir, policyOpts{anonymize: true, legal: true, legalKeep: "2y", erasure: []int64{1004, 1013}, holds: []int64{1001}})
}

type lakeState struct {
	rows map[string][]string
	iso  map[string][]string
	anon []string
}

func state(t testing.TB, dir string) lakeState {
	return lakeState{rows: lakeRows(t, dir, nil), iso: isoRows(t, dir, nil), anon: anonRows(t, dir)}
}

// child starts the child process on the lake in dir.
func child(t *testing.T, dir, failpoint string) (*exec.Cmd, *bufio.Reader) {
	return startChild(t, "TestRetainChild", childEnv+"="+filepath.Join(dir, "policy.yaml"), failpointEnv+"="+failpoint)
}

func TestRetainCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	// the expected state: one uninterrupted run
	ref := t.TempDir()
	refRep := run(t, crashLake(t, ref), false)
	want := state(t, ref)
	if iso := refRep.Datasets[0].Isolation; iso.Isolated == 0 || iso.Released == 0 || iso.Remaining == 0 {
		t.Fatalf("the crash lake must isolate, release and keep isolated rows: %+v", iso)
	}

	// how often each failpoint fires in one run, and how long a run takes
	counts := map[string]int{}
	probe := t.TempDir()
	crashLake(t, probe)
	start := time.Now()
	cmd, _ := child(t, probe, "")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean child run: %v", err)
	}
	runTime := time.Since(start)
	if got := state(t, probe); !equalState(got, want) {
		t.Fatal("the child's run differs from the in-process run")
	}
	// count the failpoints in-process on a fresh lake
	if _, err := Run(context.Background(), crashLake(t, t.TempDir()), Options{Store: storage.Local{}, failAt: func(n string) { counts[n]++ }}); err != nil {
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
	random := max(30-len(trials), 5)
	if n, err := strconv.Atoi(os.Getenv("DEID_RETAIN_CRASH_TRIALS")); err == nil {
		random += n
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for range random {
		trials = append(trials, trial{delay: time.Duration(rng.Int64N(int64(runTime)))})
	}
	t.Logf("%d trials: %d at failpoints (%v), %d random kills within %s", len(trials), len(trials)-random, counts, random, runTime)
	killedMidway := 0
	for i, tr := range trials {
		dir := t.TempDir()
		plan := crashLake(t, dir)
		cmd, _ := child(t, dir, tr.failpoint)
		if tr.failpoint == "" {
			time.Sleep(tr.delay)
			cmd.Process.Signal(syscall.SIGKILL)
		}
		err := cmd.Wait()
		if tr.failpoint != "" && (err == nil || !strings.Contains(err.Error(), "killed")) {
			t.Fatalf("trial %d (%s): child was not killed: %v", i, tr.failpoint, err)
		}
		if err != nil {
			killedMidway++
		}
		// right after the kill: every source file is readable and no row
		// the policy keeps is missing
		crashed := lakeRows(t, dir, nil)
		for file, rows := range want.rows {
			if !subset(rows, crashed[file]) {
				t.Fatalf("trial %d (%s%v): after the kill, %s lacks rows the policy keeps", i, tr.failpoint, tr.delay, file)
			}
		}
		// and every row to isolate is in its source file or isolated
		crashedIso := isoRows(t, dir, nil)
		for stem, rows := range want.iso {
			both := append(slices.Clone(crashed[stem+".parquet"]), crashedIso[stem]...)
			slices.Sort(both)
			if !subset(rows, both) {
				t.Fatalf("trial %d (%s%v): after the kill, rows to isolate from %s are lost", i, tr.failpoint, tr.delay, stem)
			}
		}
		rep := run(t, plan, false)
		if got := state(t, dir); !equalState(got, want) {
			t.Fatalf("trial %d (%s%v, recovery %q): data after the rerun differs:\n%s\nisolated:\n%s\nanonymized %d rows, want %d",
				i, tr.failpoint, tr.delay, rep.Datasets[0].Recovered, diffRows(got.rows, want.rows), diffRows(got.iso, want.iso), len(got.anon), len(want.anon))
		}
		if left := leftovers(t, dir); len(left) > 0 {
			t.Fatalf("trial %d (%s%v): left behind: %v", i, tr.failpoint, tr.delay, left)
		}
	}
	t.Logf("%d of %d children were killed before finishing", killedMidway, len(trials))
}

func equalState(a, b lakeState) bool {
	return equalRows(a.rows, b.rows) && equalRows(a.iso, b.iso) && slices.Equal(a.anon, b.anon)
}

// subset reports whether sorted multiset a is contained in sorted multiset b.
func subset(a, b []string) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
		j++
	}
	return true
}
