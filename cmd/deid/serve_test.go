package main

import (
	"bufio"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run `deid serve` as a real process on the sample lake with a
// job scheduled every second. To hold a run in the middle without relying
// on timing, the erasure list is replaced by a named pipe: the run blocks
// opening it (after taking the job's lock and listing its inputs) until the
// test lets it go. Waits are bounded polls for log lines and endpoints.

// serveProc is a running `deid serve`.
type serveProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	dir  string
	addr string
	mu   sync.Mutex
	logs []string
	done chan struct{}
	code int
	key  []byte // what release writes into the gate
}

// testRunGateEnv names the FIFO every scheduled run of the test build of
// deid (-tags deidtest, see buildDeid) reads before it starts (testgate.go).
const testRunGateEnv = "DEID_TEST_RUN_GATE"

// startServe writes a policy with one job, tick, every second, gates its
// runs and starts the server.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	dir := sampleWorkdir(t)
	policy := string(samplePolicy)
	policy = policy[:strings.Index(policy, "\njobs:")] + "\njobs:\n  - {name: tick, what: deidentify, schedule: '* * * * * *'}\n"
	if err := os.WriteFile(filepath.Join(dir, "serve.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	// each run first reads the named pipe DEID_TEST_RUN_GATE (a key file
	// can no longer be one): it waits there, in a read no context reaches,
	// until release writes into it
	secret, err := os.ReadFile(filepath.Join(dir, "testdata", "lake", "keys", "training.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "gate"), 0o600); err != nil {
		t.Skipf("named pipes unavailable: %v", err)
	}
	p := &serveProc{t: t, dir: dir, done: make(chan struct{}), key: secret}
	p.cmd = exec.Command(buildDeid(t), append([]string{"serve", "-c", "serve.yaml", "--addr", "127.0.0.1:0", "--workers", "1"}, args...)...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), testRunGateEnv+"="+filepath.Join(dir, "gate"))
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
		}
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", p.log())
		}
	})
	m := regexp.MustCompile(`msg=serving addr=(\S+)`).FindStringSubmatch(p.waitLog("msg=serving"))
	p.addr = m[1]
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// waitLog waits (at most 30 s) for a log line containing s and returns it.
func (p *serveProc) waitLog(s string) string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.logs {
			if strings.Contains(l, s) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			p.t.Fatalf("serve exited (code %d) before logging %q", p.code, s)
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("no log line with %q in 30 s", s)
	return ""
}

func (p *serveProc) get(path string) (int, string) {
	p.t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of a series in /metrics, or -1.
func (p *serveProc) metric(series string) float64 {
	_, body := p.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// release lets the held run go on: the key is written into the pipe the
// run waits on. (Swapping a list under the run instead would now fail it: a
// list must be the same when hashed and when parsed.)
func (p *serveProc) release() {
	p.t.Helper()
	f, err := os.OpenFile(filepath.Join(p.dir, "gate"), os.O_WRONLY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := f.Write(p.key); err != nil {
		p.t.Fatal(err)
	}
	f.Close()
}

func (p *serveProc) wait() int {
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatal("serve did not exit within 60 s")
	}
	return p.code
}

// published lists the files under out/ (staging and locks included).
func published(t *testing.T, dir string) []string {
	var files []string
	filepath.WalkDir(filepath.Join(dir, "out"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	return files
}

// TestServeOverlapAndGracefulFinish: serve runs the job on schedule, serves
// the endpoints, skips (and counts) triggers while the run is held, and on
// SIGTERM takes no new run but lets the running one finish and publish.
func TestServeOverlapAndGracefulFinish(t *testing.T) {
	p := startServe(t, "--grace", "60s")
	p.waitLog(`msg="job starting" job=tick`)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := p.get(path); code != 200 {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	_, jobs := p.get("/jobs")
	if !strings.Contains(jobs, `"name": "tick"`) || !strings.Contains(jobs, `"running": true`) || !strings.Contains(jobs, `"next": "`) {
		t.Errorf("/jobs while running:\n%s", jobs)
	}
	// the schedule fires every second while the run is held: skipped, counted
	p.waitLog("run skipped: the previous run of this job is still going")
	if n := p.metric(`deid_job_runs_total{job="tick",outcome="skipped"}`); n < 1 {
		t.Errorf("skipped runs counted: %v", n)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("signal received: no new runs")
	if code, _ := p.get("/readyz"); code != 503 {
		t.Errorf("readyz after SIGTERM: %d", code)
	}
	p.release()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	logs := p.log()
	if n := strings.Count(logs, `msg="job starting"`); n != 1 {
		t.Errorf("%d runs started, want 1 (none after SIGTERM)", n)
	}
	if !strings.Contains(logs, `msg="job succeeded" job=tick`) || !strings.Contains(logs, "stopped cleanly") {
		t.Errorf("the held run did not finish cleanly")
	}
	files := published(t, p.dir)
	for _, dst := range []string{"training", "analytics", "partner_ads", "research"} {
		found := false
		for _, f := range files {
			found = found || f == filepath.Join("out", "example", dst, "_manifest.json")
		}
		if !found {
			t.Errorf("destination %s has no manifest: %v", dst, files)
		}
	}
	for _, f := range files {
		if strings.Contains(f, ".deid-staging") || strings.Contains(f, ".deid-lock") {
			t.Errorf("left behind: %s", f)
		}
	}
}

// TestServeSIGTERMAbortsAfterGrace: a run still going when the grace period
// ends is aborted: exit 1, nothing published, no staging or lock left.
func TestServeSIGTERMAbortsAfterGrace(t *testing.T) {
	p := startServe(t, "--grace", "1s", "--abort-wait", "60s")
	p.waitLog(`msg="job starting" job=tick`)
	if files := published(t, p.dir); len(files) != 1 || !strings.Contains(files[0], ".deid-lock") {
		t.Errorf("while running, want only the job's lock: %v", files)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("grace period over: aborting running jobs")
	p.release()
	code := p.wait()
	if code != 1 {
		t.Errorf("exit %d, want 1 (aborted)", code)
	}
	logs := p.log()
	if !strings.Contains(logs, "job aborted at shutdown") {
		t.Errorf("exit not explained:\n%s", logs)
	}
	if strings.Contains(logs, "msg=published") {
		t.Error("the aborted run published")
	}
	if files := published(t, p.dir); len(files) != 0 {
		t.Errorf("left behind after the abort: %v", files)
	}
}

// TestRunJob: deid run --job runs one job once under its lock; a held lock
// and an unknown job fail clearly; a retain job runs deid retain.
func TestRunJob(t *testing.T) {
	dir := sampleWorkdir(t)
	policy := string(samplePolicy)
	policy = policy[:strings.Index(policy, "\njobs:")] + `
jobs:
  - {name: partners, what: deidentify, destinations: [partner_ads], schedule: '@daily'}
  - {name: sweep, what: retain, schedule: '@weekly'}
`
	os.WriteFile(filepath.Join(dir, "jobs.yaml"), []byte(policy), 0o644)
	lock := filepath.Join(dir, "out", "example", "partner_ads", ".deid-lock", "job-partners.json")
	os.MkdirAll(filepath.Dir(lock), 0o755)
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	os.WriteFile(lock, []byte(`{"job":"partners","owner":"other-host/42/x","expires":"`+expires+`"}`), 0o644)
	res := runDeid(t, dir, nil, "run", "-c", "jobs.yaml", "--job", "partners", "--now", sampleNow)
	if res.code != 1 || !strings.Contains(res.stderr, "is locked by another run: held by other-host/42/x") {
		t.Fatalf("with the lock held: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "example", "partner_ads", "_manifest.json")); err == nil {
		t.Fatal("ran although locked")
	}
	// an expired lease is taken over
	os.WriteFile(lock, []byte(`{"job":"partners","owner":"other-host/42/x","expires":"2020-01-01T00:00:00Z"}`), 0o644)
	res = runDeid(t, dir, nil, "run", "-c", "jobs.yaml", "--job", "partners", "--now", sampleNow)
	if res.code != 0 || !strings.Contains(res.stdout, "destination partner_ads") || strings.Contains(res.stdout, "destination training") {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	for _, f := range published(t, dir) {
		if strings.Contains(f, ".deid-lock") || !strings.HasPrefix(f, filepath.Join("out", "example", "partner_ads")) {
			t.Errorf("unexpected file: %s", f)
		}
	}
	// a scheduled de-identification is verified: deid verify's result lies
	// beside the run's report
	if m, _ := filepath.Glob(filepath.Join(dir, "out", "example", "partner_ads", "_reports", "*", "verify.json")); len(m) != 1 {
		t.Errorf("verify.json after the job: %v", m)
	}
	// run again, incremental: the orders file is kept; the service files are
	// read again because their children rule takes ages from orders, which
	// the comparison does not cover. --force reprocesses all.
	res = runDeid(t, dir, nil, "run", "-c", "jobs.yaml", "--job", "partners", "--now", sampleNow)
	if res.code != 0 || !strings.Contains(res.stdout, "incremental: 1 file kept as committed") || !strings.Contains(res.stdout, "dataset orders: 0 files") {
		t.Errorf("incremental rerun: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = runDeid(t, dir, nil, "run", "-c", "jobs.yaml", "--job", "partners", "--now", sampleNow, "--force")
	if res.code != 0 || strings.Contains(res.stdout, "incremental:") || !strings.Contains(res.stdout, "partner_ads (partner_sharing): 3 files") {
		t.Errorf("forced rerun: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = runDeid(t, dir, nil, "run", "-c", "jobs.yaml", "--job", "nope")
	if res.code != 2 || !strings.Contains(res.stderr, "--job nope: no such job in jobs.yaml (jobs: partners sweep)") {
		t.Errorf("unknown job: exit %d\n%s", res.code, res.stderr)
	}
	// the retain job runs deid retain on the lake and leaves its report in
	// each dataset's root; run again, it changes nothing
	for i, want := range []string{"removed erasure 42, null_time 29, retention 313", "removed nothing"} {
		res = runDeid(t, dir, nil, "run", "-c", "jobs.yaml", "--job", "sweep", "--now", sampleNow)
		if res.code != 0 || !strings.Contains(res.stdout, want) || !strings.Contains(res.stdout, filepath.Join("orders", "_reports", "retain-")) {
			t.Errorf("retain job, run %d: exit %d, want %q\n%s%s", i+1, res.code, want, res.stdout, res.stderr)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "testdata", "lake", "orders", "_reports", "retain-*.json")); len(m) != 2 {
		t.Errorf("retain reports: %v", m)
	}
	res = runDeid(t, dir, nil, "serve", "-c", "reference.yaml")
	if res.code != 2 || !strings.Contains(res.stderr, "declares no jobs") {
		t.Errorf("serve without jobs: exit %d\n%s", res.code, res.stderr)
	}
}
