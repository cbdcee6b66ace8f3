package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixture reads testdata/run.json: a real report of the example policy
// (analytics), edited to carry <script> and markup in a path, a warning and
// a column's meaning, so its signature no longer verifies (rendering does
// not check signatures), with testdata/verify.json, a verification with two
// findings, one with <script> in its column name.
func fixture(t testing.TB) *Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join("testdata", "verify.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Verification, err = ParseVerification(b); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHTMLGolden: the page of the fixed report is testdata/run.html (run
// with -update and review the diff after changing the template).
func TestHTMLGolden(t *testing.T) {
	got, err := fixture(t).HTML()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "run.html")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./pipeline/report -run HTMLGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("HTML differs from %s: if intended, run with -update and review the diff", golden)
	}
}

// TestHTMLEscapes: values from data and paths are text, never markup.
func TestHTMLEscapes(t *testing.T) {
	page, err := fixture(t).HTML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, bad := range []string{"<script", "<img"} {
		if strings.Contains(strings.ToLower(s), bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{
		"dt=&lt;script&gt;alert(1)&lt;/script&gt;/part-0.parquet",
		"&lt;script&gt;alert(&#39;warning&#39;)&lt;/script&gt;",
		"&#34;&gt;&lt;img src=x onerror=alert(2)&gt; &amp; more",
		"query&lt;script&gt;alert(3)&lt;/script&gt;",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks the escaped text %q", want)
		}
	}
	// a report built in Go, unsigned, with markup in every kind of name
	r := sampleRun()
	r.Signature, r.Chain = nil, nil
	r.Policy.Name = "<b>p</b>"
	r.Destinations[0].Removed = map[string]int64{"<i>consent</i>": 3}
	page, err = r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	s = string(page)
	if strings.Contains(s, "<b>p") || strings.Contains(s, "<i>consent") || strings.Contains(s, "<script>x") {
		t.Error("markup from the report reached the page")
	}
	if !strings.Contains(s, "The report is not signed") || !strings.Contains(s, "&lt;i&gt;consent&lt;/i&gt;") || !strings.Contains(s, "Not verified yet") {
		t.Error("unsigned report, removal reason or missing verification not shown")
	}
}

// TestHTMLSelfContained: the page loads nothing: no script, no external
// reference, and a Content-Security-Policy that forbids any.
func TestHTMLSelfContained(t *testing.T) {
	page, err := fixture(t).HTML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if !strings.Contains(s, `content="default-src 'none'; style-src 'unsafe-inline'"`) {
		t.Error("no Content-Security-Policy")
	}
	// the SVG namespace is a name, not a request
	s = strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, re := range []string{`(?i)<script`, `(?i)<link`, `(?i)<(iframe|img|object|embed)`, `(?i)<[^>]*\s(src|href|action)=`, `(?i)<[^>]*https?://`, `(?i)url\(`, `(?i)@import`} {
		if loc := regexp.MustCompile(re).FindStringIndex(s); loc != nil {
			t.Errorf("page has %q: ...%s...", re, s[max(0, loc[0]-40):min(len(s), loc[1]+40)])
		}
	}
}

// TestBars: the chart's bars are scaled to the largest count, largest first.
func TestBars(t *testing.T) {
	got := bars(map[string]int64{"retention": 1000, "erasure": 1, "null_time": 0, "child": 1000})
	want := []bar{{"child", 1000, 300, 0}, {"retention", 1000, 300, 24}, {"erasure", 1, 2, 48}, {"null_time", 0, 0, 72}}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bar %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if bars(nil) != nil {
		t.Error("bars of nothing")
	}
	if num(1234567) != "1\u202f234\u202f567" || num(-12) != "-12" || num(0) != "0" {
		t.Errorf("num: %q", num(1234567))
	}
}
