package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// Reports say what happened (issue 15, items 4 to 6): every rule as the
// policy states it, a headline that is never greener than the worst
// finding, each destination's own warnings, the build that wrote a
// document, and retain reports signed and rendered like run reports.

// TestNullTimeRule: a retention's NULL-time rule is rendered as the policy
// states it: a fallback clock is never "kept".
func TestNullTimeRule(t *testing.T) {
	cut := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		ret       Retention
		want, not string
	}{
		{"fallback", Retention{TimeColumn: "completed_at", OnNull: "fallback", OnNullFallback: &Fallback{TimeColumn: "created_at", Keep: "1y", Cutoff: cut}},
			"a NULL completed_at is measured from created_at instead: kept for 1y after it (removed when created_at is before 2025-11-01T00:00:00Z", "a NULL time is kept"},
		{"remove", Retention{TimeColumn: "t", OnNull: "remove"}, "a NULL time is removed", "kept"},
		{"keep", Retention{TimeColumn: "t", OnNull: "keep"}, "a NULL time is kept", "removed"},
		{"older retain report", Retention{TimeColumn: "t", OnNull: "fallback created_at + 1y"}, "a NULL time: fallback created_at + 1y", "a NULL time is kept"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.ret.NullTimeRule()
			if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
				t.Errorf("%q, want %q and not %q", got, c.want, c.not)
			}
			// and the pages say it
			r := sampleRun()
			ret := c.ret
			r.Datasets = []*Dataset{{Name: "orders", Source: "s", Retention: &ret, Files: []*InputFile{}, Removed: map[string]int64{"null_time": 23}}}
			page, err := r.HTML()
			if err != nil {
				t.Fatal(err)
			}
			kept := "a NULL time is kept"
			if s := htmlText(page); !strings.Contains(s, c.want) || c.want != kept && strings.Contains(s, kept) {
				t.Errorf("run page does not say %q (or says %q)", c.want, kept)
			}
			rr := sampleRetain()
			rr.Datasets[0].Retention = &ret
			page, err = rr.HTML()
			if err != nil {
				t.Fatal(err)
			}
			if s := htmlText(page); !strings.Contains(s, c.want) {
				t.Errorf("retain page does not say %q", c.want)
			}
		})
	}
}

// htmlText is a page's text: tags removed, entities decoded.
func htmlText(page []byte) string {
	s := string(page)
	var b strings.Builder
	in := false
	for _, c := range s {
		switch {
		case c == '<':
			in = true
		case c == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(c)
		}
	}
	r := strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&amp;", "&", "&#43;", "+")
	return strings.Join(strings.Fields(r.Replace(b.String())), " ")
}

// TestHeadlineSeverities: the headline takes the worst of run, verify and
// risk; only a signed, verified run with no finding, warning or risky
// class is "Every check passed.".
func TestHeadlineSeverities(t *testing.T) {
	risk := func(k int64, minK int, unique int64) *Risk {
		r := &Risk{Dataset: "orders", QuasiIdentifiers: []string{"a"}, MinK: minK, Threshold: 5, Rows: 100, Classes: 10, K: k, UniqueRows: unique,
			RowsBySize: map[string]int64{}}
		if k < 5 {
			r.ClassesBelow, r.RowsBelow = 3, 10
		}
		return r
	}
	verified := func(findings []Finding, risks ...*Risk) *Verification {
		return &Verification{Format: VerificationFormatV1, Destination: "d", Checks: []string{"schema", "risk"}, Findings: findings, Risk: risks}
	}
	signed := &Signature{Algorithm: SignatureAlgorithm, KeyFingerprint: "fp", PublicKey: "00", Value: "00"}
	cases := []struct {
		name   string
		edit   func(r *Run)
		want   Severity
		reason string // in some reason's text
	}{
		{"all passed", func(r *Run) { r.Verification = verified(nil, risk(7, 0, 0)) }, SeverityPassed, ""},
		{"not verified yet", func(r *Run) {}, SeverityNotice, "not verified yet"},
		{"unsigned", func(r *Run) { r.Verification, r.Signature = verified(nil), nil }, SeverityNotice, "not signed"},
		{"dry run", func(r *Run) { r.Command = "plan" }, SeverityNotice, "dry run"},
		{"k = 1 without min_k", func(r *Run) { r.Verification = verified(nil, risk(1, 0, 40)) }, SeverityWarning, "k = 1; 40 of 100 rows are alone in their class"},
		{"k below 5 without min_k", func(r *Run) { r.Verification = verified(nil, risk(3, 0, 0)) }, SeverityWarning, "k = 3"},
		{"k below min_k", func(r *Run) { r.Verification = verified(nil, risk(2, 3, 0)) }, SeverityFailed, "below the policy's min_k 3"},
		{"k at min_k below 5", func(r *Run) { r.Verification = verified(nil, risk(3, 3, 0)) }, SeverityWarning, "k = 3"},
		{"warnings", func(r *Run) { r.Verification, r.Warnings = verified(nil), []string{"w"} }, SeverityWarning, "1 warnings"},
		{"age unknown", func(r *Run) { r.Verification = verified(nil); r.Destinations[0].AgeUnknown = 8 }, SeverityWarning, "8 rows were kept because their age could not be told"},
		{"verify findings", func(r *Run) {
			r.Verification = verified([]Finding{{Check: "pii", File: "f", RowGroup: -1, Msg: "m"}}, risk(7, 0, 0))
		}, SeverityFailed, "deid verify found 1 problems (pii)"},
		{"run failed", func(r *Run) { r.Verification, r.Outcome, r.Error = verified(nil), "failed", "boom" }, SeverityFailed, "the run failed: boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := sampleRun()
			r.Warnings, r.Signature = []string{}, signed
			c.edit(r)
			h := r.Headline()
			if h.Severity != c.want {
				t.Errorf("severity %v, want %v: %+v", h.Severity, c.want, h)
			}
			found := c.reason == ""
			for _, x := range h.Reasons {
				found = found || strings.Contains(x.Text, c.reason)
				if x.Severity > h.Severity {
					t.Errorf("reason %q is worse than the headline", x.Text)
				}
			}
			if !found {
				t.Errorf("no reason says %q: %+v", c.reason, h.Reasons)
			}
			page, err := r.HTML()
			if err != nil {
				t.Fatal(err)
			}
			passed := strings.Contains(string(page), "Every check passed.")
			if passed != (c.want == SeverityPassed) {
				t.Errorf("page says Every check passed: %v, severity %v", passed, h.Severity)
			}
			if !strings.Contains(string(page), `class="headline sev-`+c.want.String()+`"`) {
				t.Errorf("the page's headline is not of class sev-%s", c.want)
			}
		})
	}
	// retain
	rr := sampleRetain()
	if h := rr.Headline(); h.Severity != SeverityNotice {
		t.Errorf("unsigned retain report: %+v", h)
	}
	rr.Signature = signed
	if h := rr.Headline(); h.Severity != SeverityPassed {
		t.Errorf("signed retain report: %+v", h)
	}
	rr.Warnings = []string{"deleted rows may survive"}
	if h := rr.Headline(); h.Severity != SeverityWarning {
		t.Errorf("retain warnings: %+v", h)
	}
	rr.Outcome, rr.Error = "failed", "x"
	if h := rr.Headline(); h.Severity != SeverityFailed {
		t.Errorf("failed retain: %+v", h)
	}
	for s, want := range map[Severity]string{SeverityPassed: "passed", SeverityNotice: "notice", SeverityWarning: "warning", SeverityFailed: "failed"} {
		if s.String() != want {
			t.Errorf("%d: %s", s, s)
		}
	}
}

// TestRiskSeverity: a k of 1 or any class below the threshold is never
// passed.
func TestRiskSeverity(t *testing.T) {
	for _, c := range []struct {
		r    Risk
		want Severity
	}{
		{Risk{Rows: 0, Threshold: 5}, SeverityPassed},
		{Risk{Rows: 10, K: 5, Threshold: 5}, SeverityPassed},
		{Risk{Rows: 10, K: 1, UniqueRows: 1, Threshold: 5, ClassesBelow: 1}, SeverityWarning},
		{Risk{Rows: 10, K: 4, Threshold: 5, ClassesBelow: 1}, SeverityWarning},
		{Risk{Rows: 10, K: 1, UniqueRows: 1, MinK: 2, Threshold: 2, ClassesBelow: 1}, SeverityFailed},
		{Risk{Rows: 10, K: 10, MinK: 10, Threshold: 10}, SeverityPassed},
	} {
		if got := RiskSeverity(&c.r); got != c.want {
			t.Errorf("%+v: %v, want %v", c.r, got, c.want)
		}
	}
}

// TestWarningAttribution: a destination's report holds the run's warnings
// and its own, never another destination's; the attribution survives JSON.
func TestWarningAttribution(t *testing.T) {
	r := sampleRun()
	r.Warnings = nil
	r.Destinations = []*Destination{{Name: "a", Removed: map[string]int64{}, Datasets: []*Treatment{{Dataset: "x"}}},
		{Name: "b", Removed: map[string]int64{}, Datasets: []*Treatment{{Dataset: "x"}, {Dataset: "y"}}}, {Name: "c", Removed: map[string]int64{}}}
	r.Warn("policy: audit key readable")
	r.WarnFor("destination a: below floor", "a")
	r.WarnFor("key shared by b and c", "c", "b")
	r.WarnFor("dataset x read by a and b", "a")
	r.WarnFor("dataset x read by a and b", "b")
	r.WarnFor("first scoped, then global", "a")
	r.Warn("first scoped, then global")
	r.Warn("first global, then scoped")
	r.WarnFor("first global, then scoped", "c")
	// warnings recorded without names, but naming a destination or a
	// dataset at their start, as deid's do
	r.Warn(`destination "c": removed the staging folder of run r1`)
	r.Warn(`dataset "y": retention removes every row (3 of 3)`)
	r.Warn(`dataset "nobody reads": no input file matches`)
	r.Warn(`destinations "a" and "b" is no destination's prefix`)
	r.Keys = []Key{{Name: "kb", Fingerprint: "f", Destinations: []string{"b"}}}
	r.Warn(`key "kb": its file "keys/kb.key" is readable by every user; allowed at p.yaml:3:3: sample`)
	r.Warn(`key "unused": its file is readable by every user`)
	r.Warn(`destinations ["c" "a"] share key "k": their pseudonyms can be joined with each other; allowed: one recipient`)
	r.Finish(r.StartedAt, nil)
	global := []string{"first global, then scoped", "first scoped, then global", "policy: audit key readable",
		`dataset "nobody reads": no input file matches`, `destinations "a" and "b" is no destination's prefix`, `key "unused": its file is readable by every user`}
	want := map[string][]string{
		"a": {"dataset x read by a and b", "destination a: below floor", `destinations ["c" "a"] share key "k": their pseudonyms can be joined with each other; allowed: one recipient`},
		"b": {"dataset x read by a and b", "key shared by b and c", `dataset "y": retention removes every row (3 of 3)`,
			`key "kb": its file "keys/kb.key" is readable by every user; allowed at p.yaml:3:3: sample`},
		"c": {"key shared by b and c", `destination "c": removed the staging folder of run r1`,
			`destinations ["c" "a"] share key "k": their pseudonyms can be joined with each other; allowed: one recipient`},
		"z": {}, // not a destination of the run: the run's warnings only
	}
	for name, own := range want {
		all := append(append([]string{}, own...), global...)
		got := r.ForDestination(name).Warnings
		if !sameSet(got, all) {
			t.Errorf("%s: warnings %q, want %q", name, got, all)
		}
		if !sameSet(r.WarningsFor(name), all) {
			t.Errorf("%s: WarningsFor %q", name, r.WarningsFor(name))
		}
		// and in the destination's report.json, read back
		b, err := r.ForDestination(name).JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []string{"a", "b", "c"} {
			if o != name && len(back.WarningsFor(o)) != len(global)+countScoped(back, o) {
				t.Errorf("%s's report attributes warnings to %s: %v", name, o, back.WarningDestinations)
			}
		}
		if !sameSet(back.WarningsFor(name), all) {
			t.Errorf("%s read back: %q", name, back.WarningsFor(name))
		}
	}
	if got := r.WarningDestinations[`dataset "y": retention removes every row (3 of 3)`]; !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("the full report does not attribute a dataset's warning to its readers: %v", r.WarningDestinations)
	}
	if got := r.WarningDestinations[`destination "c": removed the staging folder of run r1`]; !reflect.DeepEqual(got, []string{"c"}) {
		t.Errorf("the full report does not attribute a destination's warning: %v", r.WarningDestinations)
	}
	if got := r.WarningDestinations["dataset x read by a and b"]; !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("union of destinations: %v", got)
	}
	// a report of an older deid, without attribution: every warning is the run's
	old := []byte(`{"format": "deid-report/v1", "run_id": "x", "warnings": ["w1", "w2"], "destinations": [{"name": "a"}]}` + "\n")
	o, _, err := Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.ForDestination("a").Warnings; !sameSet(got, []string{"w1", "w2"}) {
		t.Errorf("older report: %q", got)
	}
}

// countScoped counts the warnings of r attributed to destination name.
func countScoped(r *Run, name string) int {
	n := 0
	for _, ds := range r.WarningDestinations {
		for _, d := range ds {
			if d == name {
				n++
			}
		}
	}
	return n
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestBuildFromInfo: what runtime/debug.ReadBuildInfo gives is recorded as
// it is, "(devel)" and a missing revision included.
func TestBuildFromInfo(t *testing.T) {
	for _, c := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want Build
	}{
		{"no build info", nil, false, Build{Version: Unknown}},
		{"go test", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/deidproject/deid", Version: "(devel)"}}, true,
			Build{Version: "(devel)", Go: "go1.26.8"}},
		{"go build in a dirty checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261207030000-0123456789ab+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}, true,
			Build{Version: "v0.0.0-20261207030000-0123456789ab+dirty", Revision: "0123456789abcdef", Modified: true, Go: "go1.26.8"}},
		{"a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, true,
			Build{Version: "v1.2.3", Revision: "abc", Go: "go1.26.8"}},
	} {
		got := BuildFromInfo(c.info, c.ok)
		if c.want.Go == "" {
			c.want.Go = got.Go // the running toolchain's
		}
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	if s := (Build{Version: "v1.2.3", Revision: "abc", Modified: true, Go: "go1.26.8"}).String(); s != "v1.2.3 (revision abc, modified) go1.26.8" {
		t.Errorf("String: %q", s)
	}
	if s := (Build{}).String(); !strings.Contains(s, "recorded no version") {
		t.Errorf("zero String: %q", s)
	}
	if b := CurrentBuild(); b.Version == "" || b.Go == "" {
		t.Errorf("CurrentBuild: %+v", b)
	}
}

// TestBuildRecordedAndSigned: the "deid" member is in run and retain
// reports, inside the bytes the signature covers; documents without it (an
// older deid) still parse.
func TestBuildRecordedAndSigned(t *testing.T) {
	pub := SigningKey(auditKey).Public().(ed25519.PublicKey)
	build := &Build{Version: "v1.2.3", Revision: "0123abcd", Modified: true, Go: "go1.26.8"}
	r := sampleRun()
	r.Deid = build
	rr := sampleRetain()
	rr.Deid = build
	for _, c := range []struct {
		name   string
		sign   func() ([]byte, error)
		verify func([]byte) (*Build, error)
	}{
		{"run", func() ([]byte, error) { return r.Signed(auditKey, "fp") }, func(b []byte) (*Build, error) {
			v, err := Verify(b, pub)
			if err != nil {
				return nil, err
			}
			return v.Deid, nil
		}},
		{"retain", func() ([]byte, error) { return rr.Signed(auditKey, "fp") }, func(b []byte) (*Build, error) {
			v, err := VerifyRetain(b, pub)
			if err != nil {
				return nil, err
			}
			return v.Deid, nil
		}},
	} {
		b, err := c.sign()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"deid": {`)) || bytes.Index(b, []byte(`"deid": {`)) > bytes.Index(b, []byte(`"signature": {`)) {
			t.Errorf("%s: no deid member before the signature:\n%.400s", c.name, b)
		}
		got, err := c.verify(b)
		if err != nil || got == nil || *got != *build {
			t.Errorf("%s: read back %+v, %v", c.name, got, err)
		}
		edited := bytes.Replace(b, []byte(`"version": "v1.2.3"`), []byte(`"version": "v1.2.4"`), 1)
		if _, err := c.verify(edited); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: an edited version verifies: %v", c.name, err)
		}
	}
	// older documents, without the member
	o, _, err := Parse([]byte(`{"format": "deid-report/v1", "run_id": "x", "warnings": []}` + "\n"))
	if err != nil || o.Deid != nil {
		t.Errorf("older report: %+v %v", o, err)
	}
	page, err := o.HTML()
	if err != nil || !strings.Contains(string(page), "a deid that recorded no version") {
		t.Errorf("older report's page: %v", err)
	}
	or, _, err := ParseRetain([]byte(`{"format": "deid-retain-report/v1", "run_id": "x"}`))
	if err != nil || or.Deid != nil {
		t.Errorf("older retain report: %+v %v", or, err)
	}
	// the page names the build
	page, err = r.HTML()
	if err != nil || !strings.Contains(htmlText(page), "deid v1.2.3 , revision 0123abcd (modified: uncommitted changes), go1.26.8") {
		t.Errorf("page does not name the build: %v\n%s", err, htmlText(page))
	}
}

// TestPageMismatch: the explanation of a page that differs names the build
// that wrote the report instead of guessing.
func TestPageMismatch(t *testing.T) {
	cur := CurrentBuild()
	other := Build{Version: "v0.9.0", Revision: "feed", Go: "go1.25.0"}
	if s := PageMismatch(&other); !strings.Contains(s, "v0.9.0 (revision feed) go1.25.0") || !strings.Contains(s, cur.String()) {
		t.Errorf("other build: %s", s)
	}
	if s := PageMismatch(nil); !strings.Contains(s, "recorded no version") {
		t.Errorf("no build: %s", s)
	}
	if s := PageMismatch(&cur); !strings.Contains(s, "edited") || strings.Contains(s, "which renders it otherwise than") {
		t.Errorf("same build: %s", s)
	}
}

func sampleRetain() *Retain {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return &Retain{Format: RetainFormatV1, RunID: "20261101T000000Z-11111111", Outcome: "succeeded", Now: t0, StartedAt: t0, FinishedAt: t0,
		Policy: Policy{File: "<b>p.yaml</b>", Name: "p", SHA256: "00"}, Warnings: []string{},
		Datasets: []*RetainDataset{{Name: "orders", Source: "lake/<script>x</script>/*.parquet", Root: "lake", Then: "delete",
			Removed: map[string]int64{RemovedRetention: 5, RemovedErasure: 1}, Held: map[string]int64{HeldLegalHold: 2},
			FileDetails: []*RetainFile{{Location: "lake/a.parquet", Action: "rewritten", RowsIn: 10, RowsKept: 4}},
			Subjects:    ErasedSubjects{Listed: 1, Erased: 1, Fingerprints: []string{"ab"}}}},
		Destinations: []*RetainDestination{{Name: "partner", Output: "out/p", RowsErased: 3,
			Datasets: []*RetainDestinationDataset{{Dataset: "orders", Method: "re-derived from lineage", FilesScanned: 2, FilesRewritten: 1, RowsErased: 3}}}},
	}
}

// retainFixture is testdata/retain.json: the report of deid retain --report
// on the example policy and a copy of the sample lake, signed with the
// sample audit key (testdata/lake/keys/audit.key).
func retainFixture(t testing.TB) ([]byte, ed25519.PublicKey) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "retain.json"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(filepath.Join("..", "..", "testdata", "lake", "keys", "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(k)))
	if err != nil {
		t.Fatal(err)
	}
	return b, SigningKey(key).Public().(ed25519.PublicKey)
}

// TestRetainSignParse: a retain report is signed exactly as a run report:
// it verifies with the audit key's public key, fails with another key or
// any edit, and reads back equal.
func TestRetainSignParse(t *testing.T) {
	pub := SigningKey(auditKey).Public().(ed25519.PublicKey)
	r := sampleRetain()
	b, err := r.Signed(auditKey, "fp")
	if err != nil {
		t.Fatal(err)
	}
	back, err := VerifyRetain(b, pub)
	if err != nil {
		t.Fatal(err)
	}
	if back.Signature == nil || back.Signature.KeyFingerprint != "fp" || back.Datasets[0].Removed[RemovedRetention] != 5 || back.Destinations[0].RowsErased != 3 {
		t.Errorf("read back: %+v", back)
	}
	back.Signature = nil
	if !reflect.DeepEqual(back, r) {
		t.Errorf("read back differs:\n%+v\n%+v", back, r)
	}
	other := SigningKey(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	if _, err := VerifyRetain(b, other); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "signed by another key") {
		t.Errorf("other key: %v", err)
	}
	for i := 0; i < len(b); i += 97 { // any byte changed
		edited := append([]byte{}, b...)
		edited[i] ^= 0x01
		if _, err := VerifyRetain(edited, pub); err == nil {
			t.Errorf("a change of byte %d verifies", i)
		}
	}
	unsigned, err := r.JSON()
	if err != nil || !bytes.HasSuffix(unsigned, []byte("\n}\n")) || bytes.Contains(unsigned, []byte(`"signature"`)) {
		t.Errorf("unsigned JSON: %v\n%s", err, unsigned)
	}
	if _, err := VerifyRetain(unsigned, pub); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("unsigned: %v", err)
	}
	if _, sig, err := ParseRetain(unsigned); err != nil || sig != nil {
		t.Errorf("parse unsigned: %v %v", sig, err)
	}
	// the real report of deid retain --report verifies with the sample audit key
	fix, samplePub := retainFixture(t)
	if _, err := VerifyRetain(fix, samplePub); err != nil {
		t.Errorf("testdata/retain.json: %v", err)
	}
	if d, err := VerifyDocument(fix, samplePub); err != nil || d.Retain == nil || d.Kind() != "retain report" {
		t.Errorf("VerifyDocument: %+v %v", d, err)
	}
}

// TestParseDocument: render and check take any deid document and say
// clearly what a file is when it is none they read.
func TestParseDocument(t *testing.T) {
	run, _ := sampleRun().Signed(auditKey, "fp")
	ret, _ := sampleRetain().Signed(auditKey, "fp")
	ver, _ := (&Verification{Format: VerificationFormatV1, Destination: "d", Checks: []string{}, Findings: []Finding{}}).JSON()
	for _, c := range []struct {
		name, data string
		kind       string // "" for an error
		err        string
	}{
		{"run", string(run), "run report", ""},
		{"retain", string(ret), "retain report", ""},
		{"verification", string(ver), "verification", ""},
		{"manifest", `{"format": "deid-manifest/v1", "files": []}`, "", "a manifest (deid-manifest/v1), not a report"},
		{"other format", `{"format": "deid-report/v9"}`, "", `format "deid-report/v9", which this deid does not read (it reads deid-report/v1, deid-retain-report/v1, deid-verification/v1)`},
		{"no format", `{"run_id": "x"}`, "", `no "format" member`},
		{"not JSON", `PAR1`, "", "not a JSON object"},
		{"a list", `[1]`, "", "not a JSON object"},
	} {
		d, err := ParseDocument([]byte(c.data))
		switch {
		case c.kind != "" && (err != nil || d.Kind() != c.kind):
			t.Errorf("%s: %+v %v", c.name, d, err)
		case c.kind == "" && (!errors.Is(err, ErrUnknownDocument) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		case c.kind == "verification":
			if _, err := d.HTML(); err == nil || !strings.Contains(err.Error(), "has no page of its own") {
				t.Errorf("verification page: %v", err)
			}
		case c.kind != "":
			page, err := d.HTML()
			if err != nil || !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
				t.Errorf("%s page: %v", c.name, err)
			}
		}
	}
}

// TestRetainHTML: the retain report's page shows what was removed per
// dataset and why, what was held and anonymized, what left each
// destination, the warnings, the build and the signature, escapes every
// value and loads nothing.
func TestRetainHTML(t *testing.T) {
	r := sampleRetain()
	r.Deid = &Build{Version: "v1.2.3", Go: "go1.26.8"}
	r.Warnings = []string{"<script>alert('w')</script>"}
	b, _ := r.Signed(auditKey, "fpfp")
	back, _, err := ParseRetain(b)
	if err != nil {
		t.Fatal(err)
	}
	page, err := back.HTML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if strings.Contains(s, "<script") || strings.Contains(s, "<b>") {
		t.Error("markup from the report reached the page")
	}
	text := htmlText(page)
	for _, want := range []string{
		"deid retain report", "Source lake/<script>x</script>/*.parquet", "retention 5", "erasure 1", "legal_hold 2",
		"lake/a.parquet rewritten", "Destination partner", "orders re-derived from lineage 2 1 3",
		"<script>alert('w')</script>", "deid v1.2.3 , no VCS revision recorded, go1.26.8", "Audit key fingerprint fpfp",
		"Subjects: 1 listed for erasure, 1 erased now", "Report format deid-retain-report/v1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !strings.Contains(s, `content="default-src 'none'; style-src 'unsafe-inline'"`) {
		t.Error("no Content-Security-Policy")
	}
	// golden: the page of testdata/retain.json
	fix, _ := retainFixture(t)
	d, err := ParseDocument(fix)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.HTML()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "retain.html")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./pipeline/report -run RetainHTML -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("HTML differs from %s: if intended, run with -update and review the diff", golden)
	}
}

// TestReportRecordsRules: the report records what the policy states of a
// destination beyond its columns, and ForDestination keeps it.
func TestReportRecordsRules(t *testing.T) {
	r := sampleRun()
	r.Keys = []Key{{Name: "k", Fingerprint: "f", Destinations: []string{"d"}, Allow: "sample key"}}
	r.Destinations[0].KeyAllow = "one recipient"
	r.Destinations[0].Datasets[0].QuasiIdentifiers = []string{"a", "b"}
	r.Destinations[0].Datasets[0].MinK = 5
	r.Destinations[0].Datasets[0].Children = &Children{Dataset: "accounts", BirthDate: "born", Below: 14, Inclusive: true, TimeColumn: "t"}
	r.Destinations[0].Datasets[0].Columns[0].Floor = "generalized"
	r.Destinations[0].Datasets[0].Columns[0].Allow = "why"
	b, err := r.ForDestination("d").JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"allow": "sample key"`, `"key_allow": "one recipient"`, `"quasi_identifiers": [`, `"min_k": 5`,
		`"children": {`, `"inclusive": true`, `"floor": "generalized"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("report lacks %s", want)
		}
	}
	back, _, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	page, err := back.HTML()
	if err != nil {
		t.Fatal(err)
	}
	text := htmlText(page)
	for _, want := range []string{"key file readable by every user, allowed: sample key", "shares its key with another destination, allowed by the policy: one recipient",
		"Children rule of dataset x: rows of subjects under 14 (and aged 14) in full years at t are kept out; ages from dataset accounts, birth date born",
		"Quasi-identifiers of dataset x: a , b ; min_k 5", "generalized policy below floor, allowed: why"} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
}
