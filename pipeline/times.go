package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// This file records what the row rules' clocks met: wall-clock times in a
// daylight-saving gap or overlap (counted per dataset), and rules that
// remove every row of a dataset or destination (a warning: a retention of
// minutes where months were meant, an erasure list of everyone).

// addLocalCounts adds a batch's nonexistent and ambiguous wall-clock times
// to the dataset's report.
func (r *runner) addLocalCounts(ds *rules.Dataset, c transforms.LocalCounts) {
	dsr := r.datasetReport(ds)
	r.rep.Lock()
	dsr.NonexistentLocalTime += c.Nonexistent
	dsr.AmbiguousLocalTime += c.Ambiguous
	r.rep.Unlock()
}

// warnEmptied adds a warning to the report for every dataset whose row
// rules removed every row read, and every destination whose own row rules
// (consent, children, min_k) removed every row its datasets kept.
func (r *runner) warnEmptied() {
	type warning struct {
		msg string
		of  []string // the destinations it concerns
	}
	var warns []warning
	defer func() { // Warn takes the report's lock
		for _, w := range warns {
			r.rep.WarnFor(w.msg, w.of...)
		}
	}()
	r.rep.Lock()
	defer r.rep.Unlock()
	kept := map[string]int64{}
	for _, d := range r.rep.Datasets {
		kept[d.Name] = d.RowsKept
		if d.RowsIn == 0 || d.RowsKept != 0 {
			continue
		}
		ds := r.plan.Policy.Dataset(d.Name)
		warns = append(warns, warning{EmptiedWarning("dataset", d.Name, d.Removed, d.RowsIn, RuleNames(ds)), readersOf(r.plan, d.Name)})
	}
	for _, d := range r.rep.Destinations {
		var in int64
		for _, t := range d.Datasets {
			in += kept[t.Dataset]
		}
		if in == 0 || d.RowsOut != 0 || total(d.Removed) < in {
			continue
		}
		warns = append(warns, warning{EmptiedWarning("destination", d.Name, d.Removed, in, RuleNames(nil)), []string{d.Name}})
	}
}

// RuleNames names the dataset's row rules as a warning shows them, by the
// reason a report counts their removals under (ds may be nil: the rules of
// destinations only).
func RuleNames(ds *rules.DatasetDecl) map[string]string {
	names := map[string]string{
		transforms.ReasonErasure.String():    "erasure",
		transforms.ReasonConsent.String():    "consent withdrawals",
		transforms.ReasonChild.String():      "the children rule",
		transforms.ReasonSmallClass.String(): "min_k",
	}
	if ds == nil || ds.Retention == nil {
		return names
	}
	rt := ds.Retention
	names[transforms.ReasonRetention.String()] = "retention keep " + rt.Keep.String()
	names[transforms.ReasonNullTime.String()] = "retention on_null (NULL " + rt.TimeColumn + ")"
	names[transforms.ReasonFutureTime.String()] = "retention on_null (" + rt.TimeColumn + " after now + future_skew " + rt.Skew().String() + ")"
	return names
}

// EmptiedWarning words the warning that the row rules of a dataset or a
// destination (what) named name removed every one of its rows (of rows
// read), removed counting them by reason; names name the rules by reason
// (the reason itself when missing). One rule reads
//
//	dataset "orders": retention keep 6min removes every row (2,000 of 2,000)
//
// and several list their shares.
func EmptiedWarning(what, name string, removed map[string]int64, rows int64, names map[string]string) string {
	var parts []string
	var only string
	for _, reason := range sortedReasons(removed) {
		n := removed[reason]
		if n == 0 {
			continue
		}
		rule := names[reason]
		if rule == "" {
			rule = reason
		}
		only = rule
		parts = append(parts, fmt.Sprintf("%s %s", rule, thousands(n)))
	}
	switch len(parts) {
	case 0:
		return fmt.Sprintf("%s %q: its row rules remove every row (%s)", what, name, thousands(rows))
	case 1:
		return fmt.Sprintf("%s %q: %s removes every row (%s of %s)", what, name, only, thousands(removed[firstNonZero(removed)]), thousands(rows))
	}
	return fmt.Sprintf("%s %q: its row rules remove every row (%s of %s)", what, name, strings.Join(parts, ", "), thousands(rows))
}

// sortedReasons orders reasons as they are counted: the row rules of every
// destination first, then those of one destination, then any other.
func sortedReasons(m map[string]int64) []string {
	var out []string
	seen := map[string]bool{}
	all := append(append(transforms.Reasons(), transforms.DestinationReasons()...), transforms.ReasonSmallClass)
	for _, r := range all {
		if _, ok := m[r.String()]; ok {
			out = append(out, r.String())
			seen[r.String()] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func firstNonZero(m map[string]int64) string {
	for _, k := range sortedReasons(m) {
		if m[k] != 0 {
			return k
		}
	}
	return ""
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// thousands writes n with commas between groups of three digits: 2,000.
func thousands(n int64) string { return report.GroupDigits(n, ",") }
