package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/report"
)

// Reports say what happened (issue 15, items 4 to 6), checked on the real
// binary with the example policy on a copy of the sample lake.

// exampleReports runs the example policy on a copy of the sample lake and
// returns the work folder and each destination's newest report folder.
func exampleReports(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := linksWorkdir(t)
	if res := runDeid(t, dir, nil, "run", "-c", filepath.Join("deploy", "examples", "policy.yaml"), "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	reports := map[string]string{}
	for _, dst := range []string{"training", "analytics", "partner_ads", "research"} {
		var m struct{ Report string }
		b, err := os.ReadFile(filepath.Join(dir, "out", "example", dst, "_manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		reports[dst] = filepath.Join(dir, "out", "example", dst, filepath.Dir(m.Report))
	}
	return dir, reports
}

func readReport(t *testing.T, folder string) (*report.Run, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(folder, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := report.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(folder, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	return r, string(page)
}

// TestReportsSayWhatHappened: the orders retention's on_null: {fallback:
// created_at, keep: 1y} is recorded and shown as such, never as "a NULL
// time is kept"; the research destination, whose every orders row is alone
// in its class, has no "Every check passed." after deid verify; and each
// destination's report holds no other destination's warnings.
func TestReportsSayWhatHappened(t *testing.T) {
	dir, reports := exampleReports(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	for dst, folder := range reports {
		r, page := readReport(t, folder)
		for _, ds := range r.Datasets {
			if ds.Name != "orders" {
				continue
			}
			rt := ds.Retention
			if rt == nil || rt.OnNull != "fallback" || rt.OnNullFallback == nil || rt.OnNullFallback.TimeColumn != "created_at" || rt.OnNullFallback.Keep != "1y" ||
				!rt.OnNullFallback.Cutoff.Equal(rt.Cutoff.AddDate(2, 0, 0)) {
				t.Errorf("%s: orders retention recorded as %+v (fallback %+v), want on_null fallback created_at 1y", dst, rt, rt.OnNullFallback)
			}
			if ds.Removed["null_time"] != 23 {
				t.Errorf("%s: null_time removed %d, want the sample's 23", dst, ds.Removed["null_time"])
			}
		}
		if strings.Contains(page, "a NULL time is kept") {
			t.Errorf("%s: the page says a NULL time is kept, but no dataset of the example keeps one", dst)
		}
		if !strings.Contains(page, "a NULL completed_at is measured from created_at instead: kept for 1y after it") {
			t.Errorf("%s: the page does not state the orders fallback", dst)
		}
		// a destination's report holds only what concerns it
		for _, w := range r.Warnings {
			for other := range reports {
				if other != dst && (strings.Contains(w, `destination "`+other+`"`) || strings.Contains(w, `key "`+other+`"`)) {
					t.Errorf("%s's report holds a warning of %s: %s", dst, other, w)
				}
			}
		}
		for w, of := range r.WarningDestinations {
			if len(of) != 1 || of[0] != dst {
				t.Errorf("%s's report attributes %q to %v", dst, w, of)
			}
		}
		own := false
		for _, w := range r.Warnings {
			own = own || strings.Contains(w, `key "`+dst+`"`)
		}
		if !own {
			t.Errorf("%s's report lacks the warning about its own key file: %q", dst, r.Warnings)
		}
		if len(r.Keys) != 1 || r.Keys[0].Allow != "sample key, public in the repository" {
			t.Errorf("%s: keys %+v, want its key with the policy's allow", dst, r.Keys)
		}
	}
	// the floor warning of analytics' masked phone is analytics' only
	r, _ := readReport(t, reports["analytics"])
	found := false
	for _, w := range r.Warnings {
		found = found || strings.Contains(w, `column "receiver_phone" gets mask, below the analytics floor`)
	}
	if !found {
		t.Errorf("analytics' report lacks its floor warning: %q", r.Warnings)
	}
	for _, d := range r.Destinations {
		for _, tr := range d.Datasets {
			for _, c := range tr.Columns {
				if c.Name == "receiver_phone" && tr.Dataset == "orders" && (c.Floor != "pseudonym" || c.Allow == "") {
					t.Errorf("analytics orders.receiver_phone: floor %q, allow %q", c.Floor, c.Allow)
				}
			}
		}
	}
	// research's orders: every row alone in its class (k = 1)
	if res := runDeid(t, dir, nil, "verify", "-c", policy); res.code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for dst, folder := range reports {
		_, page := readReport(t, folder)
		if dst == "research" {
			if strings.Contains(page, "Every check passed") {
				t.Error("research: the page says Every check passed above classes of k = 1")
			}
			if !strings.Contains(page, `class="headline sev-warning"`) && !strings.Contains(page, `class="headline sev-failed"`) {
				t.Error("research: the headline is neither a warning nor a failure")
			}
			if !regexp.MustCompile(`dataset &#34;orders&#34;: re-identification risk: k = 1; \d+ of \d+ rows are alone in their class`).MatchString(page) {
				t.Error("research: the headline does not say that orders rows are alone in their class")
			}
		}
		r, _ := readReport(t, folder)
		if len(r.Warnings) > 0 && strings.Contains(page, "Every check passed") {
			t.Errorf("%s: Every check passed above %d warnings", dst, len(r.Warnings))
		}
		// the re-rendered page is what the run and verify wrote: report check passes
		if res := runDeid(t, dir, nil, "report", "check", filepath.Dir(filepath.Dir(folder)), "-c", policy); res.code != 0 {
			t.Errorf("report check %s: exit %d\n%s%s", dst, res.code, res.stdout, res.stderr)
		}
	}
}

// TestVersionRecorded: deid version and deid --version print the build
// (module version, VCS revision, Go version), and report.json and the
// manifest record the same; report check says which deid wrote what it
// checks. A binary built with VCS stamping in a git checkout records the
// checkout's commit.
func TestVersionRecorded(t *testing.T) {
	dir, reports := exampleReports(t)
	v := runDeid(t, dir, nil, "version")
	vv := runDeid(t, dir, nil, "--version")
	if v.code != 0 || vv.code != 0 || v.stdout != vv.stdout {
		t.Fatalf("version: exit %d %q; --version: exit %d %q", v.code, v.stdout, vv.code, vv.stdout)
	}
	if !regexp.MustCompile(`^deid \S+\nrevision \S.*\nbuilt with go1\.\d+`).MatchString(v.stdout) {
		t.Errorf("version output:\n%s", v.stdout)
	}
	js := runDeid(t, dir, nil, "version", "--json")
	var b report.Build
	if err := json.Unmarshal([]byte(js.stdout), &b); err != nil || js.code != 0 || b.Version == "" || !strings.HasPrefix(b.Go, "go1.") {
		t.Fatalf("version --json: exit %d %q %v", js.code, js.stdout, err)
	}
	if !strings.HasPrefix(v.stdout, "deid "+b.Version+"\n") {
		t.Errorf("version says %q, --json %+v", v.stdout, b)
	}
	if b.Revision != "" && !strings.Contains(v.stdout, "revision "+b.Revision) {
		t.Errorf("version does not print the revision %s:\n%s", b.Revision, v.stdout)
	}
	for dst, folder := range reports {
		r, page := readReport(t, folder)
		if r.Deid == nil || *r.Deid != b {
			t.Errorf("%s: report.json records %+v, deid version says %+v", dst, r.Deid, b)
		}
		if !strings.Contains(page, "Written by</dt><dd>deid <code>"+b.Version+"</code>") {
			t.Errorf("%s: the page does not name the build", dst)
		}
		raw, _ := os.ReadFile(filepath.Join(folder, "report.json"))
		if i, j := bytes.Index(raw, []byte(`"deid": {`)), bytes.Index(raw, []byte(`"signature": {`)); i < 0 || j < i {
			t.Errorf("%s: the deid member is not inside the signed bytes", dst)
		}
		var m struct{ Deid *report.Build }
		mb, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(folder)), "_manifest.json"))
		if err := json.Unmarshal(mb, &m); err != nil || m.Deid == nil || *m.Deid != b {
			t.Errorf("%s: the manifest records %+v (%v)", dst, m.Deid, err)
		}
		res := runDeid(t, dir, nil, "report", "check", filepath.Dir(filepath.Dir(folder)), "-c", filepath.Join("deploy", "examples", "policy.yaml"))
		if res.code != 0 || !strings.Contains(res.stdout, "written by deid "+b.String()) || !strings.Contains(res.stdout, "checked by deid "+b.String()) {
			t.Errorf("%s: report check does not say which deid wrote the reports: exit %d\n%s%s", dst, res.code, res.stdout, res.stderr)
		}
		// an edited page is explained with the build that wrote the report
		os.WriteFile(filepath.Join(folder, "report.html"), []byte(strings.Replace(page, "<h1>", "<h1>x", 1)), 0o644)
		res = runDeid(t, dir, nil, "report", "check", filepath.Dir(filepath.Dir(folder)), "-c", filepath.Join("deploy", "examples", "policy.yaml"))
		if res.code != exitCheck || !strings.Contains(res.stdout, "report.html does not show what report.json says: it was edited") || strings.Contains(res.stdout, "another version of deid") {
			t.Errorf("%s: edited page: exit %d\n%s", dst, res.code, res.stdout)
		}
	}

	// a binary built with VCS stamping in this checkout records its commit
	head, err := exec.Command("git", "-C", repoRoot(t), "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git checkout to build from: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "deid")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("go build -buildvcs=true: %v\n%s", err, out) // a checkout git refuses (ownership), say
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var vb report.Build
	if err := json.Unmarshal(out, &vb); err != nil || vb.Revision != strings.TrimSpace(string(head)) || vb.Version == "(devel)" {
		t.Errorf("a VCS-stamped build records %+v, want revision %s and a pseudo-version (%v)", vb, head, err)
	}
}

// TestRetainReportSignedAndRendered: deid retain --report writes a report
// signed with the audit key; deid report render makes its page, deid report
// check verifies its signature, and one byte changed fails the check.
func TestRetainReportSignedAndRendered(t *testing.T) {
	dir, _ := exampleReports(t) // published outputs, for retain to erase in
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	if res := runDeid(t, dir, nil, "retain", "-c", policy, "--now", sampleNow, "--report", "r.json"); res.code != 0 {
		t.Fatalf("retain: exit %d\n%s", res.code, res.stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	rr, sig, err := report.ParseRetain(data)
	if err != nil || sig == nil || rr.Deid == nil {
		t.Fatalf("r.json: signature %v, deid %v, %v", sig, rr, err)
	}
	res := runDeid(t, dir, nil, "report", "render", "r.json", "-o", "r.html")
	if res.code != 0 {
		t.Fatalf("render: exit %d\n%s", res.code, res.stderr)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "r.html"))
	for _, want := range []string{"<h1>deid retain report</h1>", "Dataset orders", "a NULL completed_at is measured from created_at instead",
		"Destination partner_ads", "re-derived from lineage", sig.KeyFingerprint, `class="headline sev-`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the retain page lacks %q", want)
		}
	}
	if stdout := runDeid(t, dir, nil, "report", "render", "r.json"); stdout.code != 0 || stdout.stdout != string(page) {
		t.Errorf("render to stdout: exit %d, another page", stdout.code)
	}
	pub := strings.TrimSpace(runDeid(t, dir, nil, "report", "public-key", "-c", policy).stdout)
	for _, args := range [][]string{{"-c", policy}, {"--public-key", pub}} {
		res := runDeid(t, dir, nil, append([]string{"report", "check", "r.json"}, args...)...)
		if res.code != 0 || !strings.Contains(res.stdout, "retain report (deid-retain-report/v1) of run "+rr.RunID) ||
			!strings.Contains(res.stdout, "signature verified (audit key fingerprint "+sig.KeyFingerprint+")") ||
			!strings.Contains(res.stdout, "written by deid "+rr.Deid.String()) {
			t.Errorf("check %v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
		}
	}
	// one byte changed, in the body or in the signature
	body := bytes.Index(data, []byte(`"rows_in": `)) + len(`"rows_in": `)
	value := bytes.Index(data, []byte(`"value": "`)) + len(`"value": "`) + 10
	for _, at := range []int{body, value} {
		edited := append([]byte{}, data...)
		if edited[at] == '1' {
			edited[at] = '2'
		} else {
			edited[at] = '1'
		}
		if err := os.WriteFile(filepath.Join(dir, "edited.json"), edited, 0o644); err != nil {
			t.Fatal(err)
		}
		res := runDeid(t, dir, nil, "report", "check", "edited.json", "-c", policy)
		if res.code != exitCheck || !strings.Contains(res.stdout, "MISMATCH edited.json: report does not match its signature") {
			t.Errorf("byte %d changed: exit %d\n%s%s", at, res.code, res.stdout, res.stderr)
		}
	}
	// not a report: a clear message, not an unmarshalling error
	os.WriteFile(filepath.Join(dir, "other.json"), []byte(`{"rows": 3}`), 0o644)
	for _, args := range [][]string{{"report", "render", "other.json"}, {"report", "check", "other.json", "--unsigned"}} {
		res := runDeid(t, dir, nil, args...)
		if res.code == 0 || !strings.Contains(res.stderr, `other.json: not a deid report: the JSON object has no "format" member`) || strings.Contains(res.stderr, "unmarshal") {
			t.Errorf("%v: exit %d\n%s", args, res.code, res.stderr)
		}
	}
}
