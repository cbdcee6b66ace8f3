package report

import (
	"fmt"
	"strings"
)

// A report's page leads with a headline: the worst of what the run, deid
// verify and the re-identification risk measure found, so that a page
// never says "Every check passed." above a failure or a risky class. The
// headline is derived from recorded data only, like the rest of the page.

// Severity ranks a finding shown in a page's headline; a headline takes the
// worst severity of its reasons.
type Severity int

const (
	// SeverityPassed: the run succeeded, its report is signed, deid verify
	// checked its outputs and found nothing, every measured dataset's
	// smallest class is at least the threshold, and there is no warning.
	SeverityPassed Severity = iota
	// SeverityNotice: nothing is wrong, but not everything was checked: the
	// outputs are not verified yet, the report is not signed, or it is a dry
	// run.
	SeverityNotice
	// SeverityWarning: nothing failed, but something needs a look: the run
	// recorded warnings, rows kept because their age is unknown, or a
	// dataset's re-identification risk is below the threshold the policy
	// does not enforce (without min_k: a class smaller than 5, k = 1 rows
	// alone in their class).
	SeverityWarning
	// SeverityFailed: the run failed, deid verify found a problem, or a
	// dataset has a class below its min_k.
	SeverityFailed
)

// String names the severity: passed, notice, warning or failed (the CSS
// class of the page's headline).
func (s Severity) String() string {
	switch s {
	case SeverityPassed:
		return "passed"
	case SeverityNotice:
		return "notice"
	case SeverityWarning:
		return "warning"
	}
	return "failed"
}

// Reason is one thing a headline says, with its severity.
type Reason struct {
	Severity Severity
	Text     string
}

// Headline is what a page leads with: its severity, the worst of its
// reasons', a title saying it, and the reasons, worst first.
type Headline struct {
	Severity Severity
	Title    string
	Reasons  []Reason
}

// headlineTitles are the titles by severity.
var headlineTitles = map[Severity]string{
	SeverityPassed:  "Every check passed.",
	SeverityNotice:  "Nothing failed, but not everything was checked.",
	SeverityWarning: "Nothing failed, but there are warnings to read.",
	SeverityFailed:  "Something failed.",
}

func newHeadline(reasons []Reason, passed string) Headline {
	h := Headline{Severity: SeverityPassed}
	var sorted []Reason
	for s := SeverityFailed; s >= SeverityPassed; s-- {
		for _, r := range reasons {
			if r.Severity == s {
				sorted = append(sorted, r)
				h.Severity = max(h.Severity, s)
			}
		}
	}
	h.Reasons = sorted
	h.Title = headlineTitles[h.Severity]
	if h.Severity == SeverityPassed {
		h.Title = passed
	}
	return h
}

// RiskSeverity ranks one dataset's re-identification risk: failed when a
// class is below the policy's min_k, a warning when one is below the
// threshold (5 without min_k), in particular a row alone in its class;
// passed otherwise, and for a dataset without rows.
func RiskSeverity(r *Risk) Severity {
	switch {
	case r.Rows == 0:
		return SeverityPassed
	case r.MinK > 0 && r.K < int64(r.MinK):
		return SeverityFailed
	case r.UniqueRows > 0 || r.K < int64(r.Threshold) || r.ClassesBelow > 0:
		return SeverityWarning
	}
	return SeverityPassed
}

// riskReason says what one dataset's risk is.
func riskReason(r *Risk) string {
	s := fmt.Sprintf("dataset %q: re-identification risk: k = %d", r.Dataset, r.K)
	if r.MinK > 0 && r.K < int64(r.MinK) {
		s += fmt.Sprintf(", below the policy's min_k %d", r.MinK)
	}
	if r.UniqueRows > 0 {
		s += fmt.Sprintf("; %s of %s rows are alone in their class", GroupDigits(r.UniqueRows, ","), GroupDigits(r.Rows, ","))
	}
	if r.ClassesBelow > 0 {
		s += fmt.Sprintf("; %s rows (%.1f %%) are in %s classes smaller than %d", GroupDigits(r.RowsBelow, ","), 100*r.ShareBelow(),
			GroupDigits(r.ClassesBelow, ","), r.Threshold)
	}
	if r.MinK == 0 {
		s += " (the policy sets no min_k, so deid run does not suppress them)"
	}
	return s
}

// Headline is what the run report's page leads with (see Severity).
func (r *Run) Headline() Headline {
	var rs []Reason
	add := func(s Severity, format string, args ...any) {
		rs = append(rs, Reason{s, fmt.Sprintf(format, args...)})
	}
	if r.Outcome != "succeeded" {
		add(SeverityFailed, "the run %s: %s", r.Outcome, r.Error)
	}
	if v := r.Verification; v != nil {
		if n := len(v.Findings); n > 0 {
			checks := []string{}
			for _, f := range v.Findings {
				if !containsString(checks, f.Check) {
					checks = append(checks, f.Check)
				}
			}
			add(SeverityFailed, "deid verify found %d problems (%s)", n, strings.Join(checks, ", "))
		}
		for _, k := range v.Risk {
			if s := RiskSeverity(k); s > SeverityPassed {
				add(s, "%s", riskReason(k))
			}
		}
	} else if r.Command == "run" {
		add(SeverityNotice, "the outputs are not verified yet (deid verify -c policy.yaml checks them and adds its result to this page)")
	}
	if n := len(r.Warnings); n > 0 {
		add(SeverityWarning, "%d warnings (below)", n)
	}
	for _, d := range r.Destinations {
		if d.AgeUnknown > 0 {
			add(SeverityWarning, "destination %q: %s rows were kept because their age could not be told", d.Name, GroupDigits(d.AgeUnknown, ","))
		}
	}
	if r.Command == "plan" {
		add(SeverityNotice, "a dry run (deid plan): nothing was written")
	}
	if r.Signature == nil {
		add(SeverityNotice, "the report is not signed")
	}
	return newHeadline(rs, headlineTitles[SeverityPassed])
}

// Headline is what the retain report's page leads with (see Severity).
func (r *Retain) Headline() Headline {
	var rs []Reason
	add := func(s Severity, format string, args ...any) {
		rs = append(rs, Reason{s, fmt.Sprintf(format, args...)})
	}
	if r.Outcome != "succeeded" {
		add(SeverityFailed, "the retain run %s: %s", r.Outcome, r.Error)
	}
	if n := len(r.Warnings); n > 0 {
		add(SeverityWarning, "%d warnings (below)", n)
	}
	if r.DryRun {
		add(SeverityNotice, "a dry run (deid retain --dry-run): nothing was changed")
	}
	if r.Signature == nil {
		add(SeverityNotice, "the report is not signed")
	}
	return newHeadline(rs, "Retain succeeded, with nothing to warn about.")
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
