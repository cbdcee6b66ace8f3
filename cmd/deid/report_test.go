package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReportCheckCommand: deid report check passes on the example's jobs
// after two runs, with the policy or the printed public key, and exits 4
// naming the report an edit changed.
func TestReportCheckCommand(t *testing.T) {
	dir := sampleWorkdir(t)
	policy := filepath.Join(dir, "example.yaml")
	if err := os.WriteFile(policy, samplePolicy, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow); res.code != 0 {
			t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
		}
	}
	job := filepath.Join("out", "example", "partner_ads")
	pub := runDeid(t, dir, nil, "report", "public-key", "-c", policy)
	if pub.code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(pub.stdout) {
		t.Fatalf("public-key: exit %d %q %s", pub.code, pub.stdout, pub.stderr)
	}
	for _, args := range [][]string{{"-c", policy}, {"--public-key", strings.TrimSpace(pub.stdout)}, {"--unsigned"}} {
		res := runDeid(t, dir, nil, append([]string{"report", "check", job}, args...)...)
		if res.code != 0 || !strings.Contains(res.stdout, "2 reports, 3 output files") || !strings.Contains(res.stdout, " 0 problems") {
			t.Errorf("check %v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
		}
	}
	m, _ := os.ReadFile(filepath.Join(dir, job, "_manifest.json"))
	newest := regexp.MustCompile(`"report": "([^"]+)"`).FindStringSubmatch(string(m))[1]
	// render gives the page the run wrote beside the report
	page, _ := os.ReadFile(filepath.Join(dir, job, filepath.Dir(newest), "report.html"))
	res := runDeid(t, dir, nil, "report", "render", filepath.Join(job, newest))
	if res.code != 0 || res.stdout != string(page) || !strings.Contains(res.stdout, "<h1>deid report</h1>") {
		t.Errorf("render: exit %d, %d bytes, the run wrote %d\n%s", res.code, len(res.stdout), len(page), res.stderr)
	}
	if res := runDeid(t, dir, nil, "report", "render", filepath.Join(job, newest), "-o", "page.html"); res.code != 0 {
		t.Errorf("render -o: exit %d %s", res.code, res.stderr)
	} else if b, _ := os.ReadFile(filepath.Join(dir, "page.html")); string(b) != string(page) {
		t.Error("render -o wrote another page")
	}
	p := filepath.Join(dir, job, newest)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, regexp.MustCompile(`"rows_out": \d+`).ReplaceAll(b, []byte(`"rows_out": 1`)), 0o644)
	res = runDeid(t, dir, nil, "report", "check", job, "-c", policy)
	if res.code != 4 || !strings.Contains(res.stdout, "MISMATCH "+filepath.Join(job, newest)+": report does not match its signature") {
		t.Errorf("edited report: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report"}, 2, "no subcommand"},
		{[]string{"report", "check"}, 2, "needs the job's folder"},
		{[]string{"report", "render"}, 2, "needs a report"},
		{[]string{"report", "render", "_manifest.json"}, 1, "no such file"},
		{[]string{"report", "render", filepath.Join(job, "_manifest.json")}, 1, "not a deid report: a manifest"},
		{[]string{"report", "check", job}, 2, "-c policy.yaml or --public-key HEX"},
		{[]string{"report", "check", job, "--public-key", "abcd"}, 2, "want 32 bytes in hex"},
		{[]string{"report", "check", job, "-c", filepath.Join(dir, "reference.yaml")}, 2, "declares no audit_key"},
		{[]string{"report", "check", filepath.Join(dir, "nowhere"), "--unsigned"}, 1, "no reports"},
	} {
		res := runDeid(t, dir, nil, c.args...)
		if res.code != c.code || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%v: exit %d, want %d and %q\n%s", c.args, res.code, c.code, c.want, res.stderr)
		}
	}
}
