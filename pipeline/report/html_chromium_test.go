package report

import (
	"bytes"
	"context"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The HTML report is checked in a real browser: Debian's chromium, headless,
// which .ci/run installs (and requires, with DEID_REQUIRE_CHROMIUM=1).
// Chromium's command line is enough: --dump-dom gives the page as the
// browser built it, --enable-logging=stderr prints every console message
// (script errors, Content-Security-Policy refusals) as a CONSOLE line, and
// --screenshot draws it. A DevTools client library would add a dependency
// for nothing these three do not already show.

// chromium returns the browser's path, or skips the test when it is absent
// and not required.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("DEID_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is not installed, and DEID_REQUIRE_CHROMIUM is set (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium; DEID_REQUIRE_CHROMIUM=1 makes this a failure)")
	return ""
}

// headless runs chromium on a local page with extra flags and returns its
// stdout and the console lines of its log.
func headless(t *testing.T, bin, page string, flags ...string) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
		"--enable-logging=stderr", "--v=0", "--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+page)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	var console []string
	for _, line := range strings.Split(errb.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			console = append(console, line)
		}
	}
	return out.String(), console
}

// artifacts is where screenshots are kept: $DEID_ARTIFACTS, or a
// temporary folder.
func artifacts(t *testing.T) string {
	if d := os.Getenv("DEID_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestHTMLInChromium loads the fixed report's page in headless Chromium:
// it shows the run's figures and the planted <script> values as text, runs
// no script, logs nothing to the console, and draws; the screenshot is kept
// as an artifact.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page, err := fixture(t).HTML()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}

	// the scanner sees console errors and refused requests: a control page
	// with the report's policy, a script error and an external image
	bad := filepath.Join(dir, "bad.html")
	os.WriteFile(bad, []byte(`<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"></head>`+
		`<body><p>x</p><img src="https://example.invalid/x.png"></body></html>`), 0o644)
	if _, console := headless(t, bin, bad, "--dump-dom"); len(console) == 0 {
		t.Error("control page: a refused external image gave no console line; the scan below proves nothing")
	}

	dom, console := headless(t, bin, path, "--dump-dom")
	if len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	if regexp.MustCompile(`(?i)<(script|img|iframe)`).MatchString(dom) {
		t.Error("the page as built by the browser has a script, image or frame element")
	}
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " "))
	text = strings.Join(strings.Fields(text), " ")
	r := fixture(t)
	for _, want := range []string{
		"deid report", "Outcome succeeded", "Policy SHA-256 " + r.Policy.SHA256,
		"Destination analytics (analytics)", "Audit key fingerprint " + r.Signature.KeyFingerprint,
		"testdata/lake/device/dt=<script>alert(1)</script>/part-0.parquet",
		"a value from the data: <script>alert('warning')</script>",
		`"><img src=x onerror=alert(2)> & more`,
		"Rows removed by reason",
		"removed because rows",
		"3 findings.", "k (smallest class)", "Rows by the size k of their class", "pii out/example/analytics/service/dt=2026-10-31/part-0.parquet 0 query<script>alert(3)</script> 2 2 values the phone detector",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page does not show %q", want)
		}
	}

	shot := filepath.Join(artifacts(t), "report-screenshot.png")
	headless(t, bin, path, "--screenshot="+shot, "--window-size=1280,3000", "--hide-scrollbars")
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 10000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(b), err)
	}
	t.Logf("screenshot: %s", shot)
}

// TestRetainHTMLInChromium loads the page of testdata/retain.json (a real
// deid retain --report of the example) in headless Chromium: it shows the
// figures per dataset and destination, runs no script, logs nothing to the
// console, and draws.
func TestRetainHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	fix, _ := retainFixture(t)
	d, err := ParseDocument(fix)
	if err != nil {
		t.Fatal(err)
	}
	page, err := d.HTML()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "retain.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	dom, console := headless(t, bin, path, "--dump-dom")
	if len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	if regexp.MustCompile(`(?i)<(script|img|iframe)`).MatchString(dom) {
		t.Error("the page as built by the browser has a script, image or frame element")
	}
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " "))
	text = strings.Join(strings.Fields(text), " ")
	for _, want := range []string{
		"deid retain report", "Outcome succeeded", "Dataset orders", "a NULL completed_at is measured from created_at instead",
		"Destination partner_ads", "re-derived from lineage", "Audit key fingerprint " + d.Signature.KeyFingerprint, "Rows removed by reason",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page does not show %q", want)
		}
	}
	shot := filepath.Join(artifacts(t), "retain-screenshot.png")
	headless(t, bin, path, "--screenshot="+shot, "--window-size=1280,3000", "--hide-scrollbars")
	if b, err := os.ReadFile(shot); err != nil || len(b) < 10000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(b), err)
	}
	t.Logf("screenshot: %s", shot)
}
