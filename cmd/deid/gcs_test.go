package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/storage/gcstest"
)

// The tests in this file run the deid binary against fake-gcs-server:
// in-process (reached by the binary through STORAGE_EMULATOR_HOST, like
// any emulator), and the standalone process .ci/run starts.

// gcsTarget is an emulator and a bucket on it.
type gcsTarget struct {
	host   string // for STORAGE_EMULATOR_HOST
	bucket string
	store  *storage.GCS
}

// inProcessGCS starts fake-gcs-server in this process with a bucket lake;
// through, when set, wraps its URL (a fault-injecting proxy).
func inProcessGCS(t *testing.T, through func(string) string) (gcsTarget, *gcstest.Emulator) {
	emu := gcstest.Start(t, []string{"lake"})
	base := emu.URL
	if through != nil {
		base = through(base)
	}
	u, _ := url.Parse(base)
	return gcsTarget{host: u.Host, bucket: "lake", store: gcstest.Store(t, emu.URL, storage.GCSOptions{})}, emu
}

// standaloneGCS returns a fresh bucket on the standalone emulator.
func standaloneGCS(t *testing.T) gcsTarget {
	bucket := gcstest.NewBucket(t)
	g, err := storage.NewGCS(context.Background(), storage.GCSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return gcsTarget{host: os.Getenv("STORAGE_EMULATOR_HOST"), bucket: bucket, store: g}
}

// upload copies dir/testdata to gs://bucket/testdata.
func (g gcsTarget) upload(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	err := filepath.WalkDir(filepath.Join(dir, "testdata"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".key") {
			return err // keys stay local: a policy names them by file
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, err := g.store.Create(ctx, "gs://"+g.bucket+"/"+filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		defer w.Abort()
		w.Write(b)
		_, err = w.Commit()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// read returns an object's bytes.
func (g gcsTarget) read(t *testing.T, loc string) []byte {
	t.Helper()
	r, err := g.store.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// list returns the locations under a prefix.
func (g gcsTarget) list(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	if err := g.store.List(context.Background(), prefix, func(a storage.Attrs) error {
		out = append(out, a.Location)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// onGCS rewrites a policy's sources, lists and outputs (relative paths
// under testdata/ and out/) onto gs://sources/ and gs://outputs/.
func onGCS(policy, sources, outputs string) string {
	for _, k := range []string{"source: ", "list: "} {
		policy = strings.ReplaceAll(policy, k+"testdata/", k+"gs://"+sources+"/testdata/")
	}
	return strings.ReplaceAll(policy, "output: out/", "output: gs://"+outputs+"/out/")
}

// gcsPolicies are the policies the end-to-end tests run: the example
// policy (three datasets, four destinations, erasure and consent lists) and
// the bench's reference policy on the browsing sample, with the folder of
// their outputs.
var gcsPolicies = []struct{ name, file, out string }{
	{"example", "cmd/deid/sample-policy.yaml", "out/example"},
	{"reference", "cmd/deid/testdata/reference-sample.yaml", "out/sample"},
}

// compareWithLocal checks that every destination under out on GCS has the
// same manifest entries (paths and SHA-256) as the local run's, that the
// objects hash to them, and that the report names gs:// inputs with
// generations and CRC32C.
func compareWithLocal(t *testing.T, g gcsTarget, localOut, out string) {
	t.Helper()
	// destination folders: out itself, or its subfolders
	dests := []string{""}
	if _, err := os.Stat(filepath.Join(localOut, output.ManifestName)); err != nil {
		entries, _ := os.ReadDir(localOut)
		dests = nil
		for _, e := range entries {
			dests = append(dests, e.Name())
		}
	}
	if len(dests) == 0 {
		t.Fatalf("the local run wrote nothing in %s", localOut)
	}
	for _, name := range dests {
		var lm, gm output.Manifest
		lb, err := os.ReadFile(filepath.Join(localOut, name, output.ManifestName))
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(lb, &lm)
		prefix := strings.TrimSuffix("gs://"+g.bucket+"/"+out+"/"+name, "/")
		if err := json.Unmarshal(g.read(t, prefix+"/"+output.ManifestName), &gm); err != nil {
			t.Fatal(err)
		}
		if len(gm.Files) != len(lm.Files) || len(lm.Files) == 0 {
			t.Fatalf("%s: %d files on GCS, %d locally", name, len(gm.Files), len(lm.Files))
		}
		for i, f := range gm.Files {
			l := lm.Files[i]
			if f.Path != l.Path || f.SHA256 != l.SHA256 || f.Rows != l.Rows {
				t.Errorf("%s/%s: sha256 %s, %d rows on GCS; locally %s %s, %d rows", name, f.Path, f.SHA256, f.Rows, l.Path, l.SHA256, l.Rows)
			}
			sum := sha256.Sum256(g.read(t, prefix+"/"+f.Path))
			if hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Errorf("%s/%s: the object does not hash to its manifest entry", name, f.Path)
			}
			// an output's generation is not known before the commit point,
			// and is not recorded; its CRC32C, a copy's too, is
			if !strings.HasPrefix(f.Input.Location, "gs://") || f.Input.Generation == 0 || !crcRE.MatchString(f.Input.CRC32C) ||
				f.Generation != 0 || !crcRE.MatchString(f.CRC32C) {
				t.Errorf("%s/%s: input %+v, output generation %d crc32c %q", name, f.Path, f.Input, f.Generation, f.CRC32C)
			}
		}
		var rep report.Run
		if err := json.Unmarshal(g.read(t, prefix+"/"+gm.Report), &rep); err != nil {
			t.Fatal(err)
		}
		for _, ds := range rep.Datasets {
			for _, in := range ds.Files {
				if !strings.HasPrefix(in.Location, "gs://") || in.Generation == 0 || !crcRE.MatchString(in.CRC32C) {
					t.Errorf("report input %+v", in)
				}
			}
			for _, l := range ds.Erasure {
				if !strings.HasPrefix(l.Location, "gs://") || l.Generation == 0 || !crcRE.MatchString(l.CRC32C) {
					t.Errorf("report erasure list %+v", l)
				}
			}
			for _, l := range ds.Consent {
				if !strings.HasPrefix(l.Location, "gs://") || l.Generation == 0 || !crcRE.MatchString(l.CRC32C) {
					t.Errorf("report consent list %+v", l)
				}
			}
			if len(ds.Erasure) == 0 {
				t.Errorf("dataset %s: no erasure list in the report", ds.Name)
			}
		}
		for _, loc := range g.list(t, prefix+"/") {
			if strings.Contains(loc, output.StagingDir) {
				t.Errorf("staging left behind: %s", loc)
			}
		}
	}
}

var crcRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

// localRun runs a policy on the local sample and returns the output folder.
func localRun(t *testing.T, file, out string) string {
	dir := sampleWorkdir(t)
	policy, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "local.yaml"), policy, 0o644)
	if res := runDeid(t, dir, nil, "run", "-c", "local.yaml", "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("local run: exit %d\n%s", res.code, res.stderr)
	}
	return filepath.Join(dir, out)
}

// gcsRun runs a policy with sources and outputs on the target's bucket.
func gcsRun(t *testing.T, g gcsTarget, file string, args ...string) deidResult {
	dir := sampleWorkdir(t)
	g.upload(t, dir)
	policy, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(policy), g.bucket, g.bucket)), 0o644)
	return runDeid(t, dir, []string{"STORAGE_EMULATOR_HOST=" + g.host},
		append([]string{"run", "-c", "gcs.yaml", "--now", sampleNow, "--progress", "never"}, args...)...)
}

// TestGCSRunMatchesLocal: the example and reference policies with sources,
// erasure and consent lists, outputs, manifests and reports on the
// emulator give the local run's bytes.
func TestGCSRunMatchesLocal(t *testing.T) {
	targets := []struct {
		name string
		get  func(*testing.T) gcsTarget
	}{
		{"in-process", func(t *testing.T) gcsTarget { g, _ := inProcessGCS(t, nil); return g }},
		{"standalone", standaloneGCS},
	}
	for _, p := range gcsPolicies {
		localOut := localRun(t, p.file, p.out)
		for _, tg := range targets {
			t.Run(p.name+"/"+tg.name, func(t *testing.T) {
				g := tg.get(t)
				res := gcsRun(t, g, p.file)
				if res.code != 0 {
					t.Fatalf("exit %d\n%s", res.code, res.stderr)
				}
				compareWithLocal(t, g, localOut, p.out)
			})
		}
	}
}

// TestGCSRunWithFaults: a proxy in front of the emulator fails about 10% of
// requests (503, 429, dropped connections, answers lost after the emulator
// acted; seeded); the run completes with the local run's outputs and
// reports its retries.
func TestGCSRunWithFaults(t *testing.T) {
	p := gcsPolicies[0]
	localOut := localRun(t, p.file, p.out)
	var proxy *gcstest.Proxy
	g, _ := inProcessGCS(t, func(u string) string { proxy = gcstest.NewProxy(t, u, 0.1, 42); return proxy.URL })
	res := gcsRun(t, g, p.file, "--json")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	compareWithLocal(t, g, localOut, p.out)
	var rep report.Run
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	u, m, d, l := proxy.Injected()
	if u == 0 || m == 0 || d == 0 || l == 0 || rep.StorageRetries == 0 || rep.StorageRetries > u+m+d+l {
		t.Errorf("faults injected: %d 503, %d 429, %d dropped, %d lost; the report counts %d retries", u, m, d, l, rep.StorageRetries)
	}
	t.Logf("%d requests forwarded; faults: %d 503, %d 429, %d dropped, %d lost; %d retries reported", proxy.Forwarded(), u, m, d, l, rep.StorageRetries)
}

// TestGCSPermanentErrors: a missing output bucket, and a 403 on uploads
// after the first, stop the run at once (no retry), with an error naming
// the location, and leave nothing in the output bucket.
func TestGCSPermanentErrors(t *testing.T) {
	p := gcsPolicies[0]
	t.Run("missing bucket", func(t *testing.T) {
		g, _ := inProcessGCS(t, nil)
		dir := sampleWorkdir(t)
		g.upload(t, dir)
		policy, _ := os.ReadFile(filepath.Join(repoRoot(t), p.file))
		os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(policy), g.bucket, "no-such-bucket")), 0o644)
		res := runDeid(t, dir, []string{"STORAGE_EMULATOR_HOST=" + g.host}, "run", "-c", "gcs.yaml", "--now", sampleNow)
		if res.code != exitOther || !strings.Contains(res.stderr, "gs://no-such-bucket/out/example/") {
			t.Errorf("exit %d\n%s", res.code, res.stderr)
		}
	})
	t.Run("403 on upload", func(t *testing.T) {
		var uploads atomic.Int64
		var proxy *gcstest.Proxy
		g, emu := inProcessGCS(t, func(u string) string { proxy = gcstest.NewProxy(t, u, 0, 1); return proxy.URL })
		emu.Server.CreateBucket("locked")
		proxy.Deny = func(r *http.Request) int {
			if strings.HasPrefix(r.URL.Path, "/upload/storage/v1/b/locked/") && uploads.Add(1) > 1 {
				return http.StatusForbidden
			}
			return 0
		}
		dir := sampleWorkdir(t)
		g.upload(t, dir)
		policy, _ := os.ReadFile(filepath.Join(repoRoot(t), p.file))
		os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(policy), g.bucket, "locked")), 0o644)
		res := runDeid(t, dir, []string{"STORAGE_EMULATOR_HOST=" + g.host}, "run", "-c", "gcs.yaml", "--now", sampleNow, "--workers", "1")
		if res.code != exitOther || !strings.Contains(res.stderr, "gs://locked/out/example/") || !strings.Contains(res.stderr, "permission denied") {
			t.Errorf("exit %d\n%s", res.code, res.stderr)
		}
		if uploads.Load() < 2 {
			t.Errorf("%d uploads: the run failed before the denied one", uploads.Load())
		}
		if left := g.list(t, "gs://locked/"); len(left) != 0 {
			t.Errorf("a failed run left %v", left)
		}
	})
}

// TestGCSVersionedOutputWarns: outputs in a bucket with object versioning
// get a warning in the report, since replaced outputs (and the rows a later
// erasure removes from them) survive as noncurrent versions.
func TestGCSVersionedOutputWarns(t *testing.T) {
	p := gcsPolicies[1]
	g, emu := inProcessGCS(t, nil)
	emu.Server.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "versioned", VersioningEnabled: true})
	dir := sampleWorkdir(t)
	g.upload(t, dir)
	policy, _ := os.ReadFile(filepath.Join(repoRoot(t), p.file))
	for _, c := range []struct {
		outputs string
		warn    bool
	}{{"versioned", true}, {"lake", false}} {
		os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(policy), g.bucket, c.outputs)), 0o644)
		res := runDeid(t, dir, []string{"STORAGE_EMULATOR_HOST=" + g.host}, "run", "-c", "gcs.yaml", "--now", sampleNow, "--json")
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		var rep report.Run
		json.Unmarshal([]byte(res.stdout), &rep)
		warned := false
		for _, w := range rep.Warnings {
			warned = warned || strings.Contains(w, "gs://"+c.outputs+": object versioning keeps deleted and replaced objects")
		}
		if warned != c.warn {
			t.Errorf("outputs in %s: warnings %q", c.outputs, rep.Warnings)
		}
	}
}

// TestGCSValidateAndPlan: validate reads the sources' schemas on GCS, and
// plan lists and reads them there, writing nothing.
func TestGCSValidateAndPlan(t *testing.T) {
	p := gcsPolicies[0]
	g, _ := inProcessGCS(t, nil)
	dir := sampleWorkdir(t)
	g.upload(t, dir)
	policy, _ := os.ReadFile(filepath.Join(repoRoot(t), p.file))
	os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(policy), g.bucket, g.bucket)), 0o644)
	env := []string{"STORAGE_EMULATOR_HOST=" + g.host}
	if res := runDeid(t, dir, env, "validate", "-c", "gcs.yaml"); res.code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res := runDeid(t, dir, env, "plan", "-c", "gcs.yaml", "--now", sampleNow)
	if res.code != 0 || !strings.Contains(res.stdout, "read gs://lake/testdata/lake/orders/orders.parquet") {
		t.Fatalf("plan: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if left := g.list(t, "gs://lake/out/"); len(left) != 0 {
		t.Errorf("plan wrote %v", left)
	}
}

// TestGCSVerifyAndReportCheck: deid verify and deid report check work on
// outputs in a bucket as on disk: a clean run passes both, and an output
// object replaced behind deid's back fails the report check, naming it.
func TestGCSVerifyAndReportCheck(t *testing.T) {
	g, _ := inProcessGCS(t, nil)
	dir := sampleWorkdir(t)
	g.upload(t, dir)
	os.WriteFile(filepath.Join(dir, "gcs.yaml"), []byte(onGCS(string(samplePolicy), g.bucket, g.bucket)), 0o644)
	env := []string{"STORAGE_EMULATOR_HOST=" + g.host}
	if res := runDeid(t, dir, env, "run", "-c", "gcs.yaml", "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	res := runDeid(t, dir, env, "verify", "-c", "gcs.yaml")
	if res.code != 0 || !strings.Contains(res.stdout, "destination partner_ads: 3 files") || !strings.Contains(res.stdout, "0 findings") {
		t.Errorf("verify on gs://: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	training := "gs://" + g.bucket + "/out/example/training"
	if res := runDeid(t, dir, env, "report", "check", training, "-c", "gcs.yaml"); res.code != 0 {
		t.Fatalf("report check on gs://: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// replace one published object
	obj := training + "/orders/orders.parquet"
	w, err := g.store.Create(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("not what was published"))
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	res = runDeid(t, dir, env, "report", "check", training, "-c", "gcs.yaml")
	if res.code != 4 || !strings.Contains(res.stdout+res.stderr, "orders/orders.parquet") {
		t.Errorf("report check after replacing %s: exit %d\n%s%s", obj, res.code, res.stdout, res.stderr)
	}
}
