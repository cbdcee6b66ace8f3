package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The HTML form of a report: one self-contained page (inline CSS and SVG, no
// script, no external request: a Content-Security-Policy forbids them) that
// an auditor reads in any browser, offline, or prints. It is a rendering of
// the report's data: every value comes from the Run, html/template escapes
// every value, and nothing is recomputed except the layout of the charts.

//go:embed report.html.tmpl
var htmlTemplate string

// commonTemplate defines what the pages share: the style sheet, the
// headline and the build that wrote a document.
//
//go:embed common.html.tmpl
var commonTemplate string

//go:embed retain.html.tmpl
var retainHTMLTemplate string

var pageTemplate = template.Must(template.Must(template.New("report").Funcs(template.FuncMap{
	"bars":         bars,
	"sizeBars":     sizeBars,
	"pct":          func(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) },
	"params":       paramsText,
	"num":          num,
	"bytes":        byteSize,
	"when":         func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"seconds":      func(s float64) string { return fmt.Sprintf("%.2f s", s) },
	"add":          func(a, b int) int { return a + b },
	"mul":          func(a, b int) int { return a * b },
	"total":        total,
	"riskSeverity": RiskSeverity,
}).Parse(htmlTemplate)).Parse(commonTemplate))

// retainPage is the page of a retain report, in the same style.
var retainPage = template.Must(template.Must(pageTemplate.Clone()).New("retain").Parse(retainHTMLTemplate))

// HTML renders the report as a self-contained HTML page.
func (r *Run) HTML() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("render the report as HTML: %w", err)
	}
	return b.Bytes(), nil
}

// HTML renders the retain report as a self-contained HTML page, in the
// style of a run report's: what was removed per dataset and why, what was
// anonymized, held and isolated, what left each destination's published
// outputs, the warnings, the build that wrote it and its signature.
func (r *Retain) HTML() ([]byte, error) {
	var b bytes.Buffer
	if err := retainPage.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("render the retain report as HTML: %w", err)
	}
	return b.Bytes(), nil
}

// bar is one bar of a horizontal bar chart.
type bar struct {
	Label string
	Value int64
	// Width is the bar's length in chart units (0-300); Y its top.
	Width, Y int
}

// bars lays out counts by reason as bars, largest first (ties by name),
// scaled to the largest.
func bars(m map[string]int64) []bar {
	var out []bar
	var max int64
	for k, v := range m {
		out = append(out, bar{Label: k, Value: v})
		if v > max {
			max = v
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Value != out[j].Value {
			return out[i].Value > out[j].Value
		}
		return out[i].Label < out[j].Label
	})
	for i := range out {
		out[i].Y = i * 24
		if max > 0 {
			out[i].Width = int(out[i].Value * 300 / max)
		}
		if out[i].Value > 0 && out[i].Width < 2 {
			out[i].Width = 2
		}
	}
	return out
}

// sizeBars lays out rows by class size in the order of RiskBuckets.
func sizeBars(m map[string]int64) []bar {
	var max int64
	for _, v := range m {
		if v > max {
			max = v
		}
	}
	out := make([]bar, len(RiskBuckets))
	for i, b := range RiskBuckets {
		out[i] = bar{Label: "k " + b.Label, Value: m[b.Label], Y: i * 24}
		if max > 0 {
			out[i].Width = int(m[b.Label] * 300 / max)
		}
		if out[i].Value > 0 && out[i].Width < 2 {
			out[i].Width = 2
		}
	}
	return out
}

func total(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

// paramsText shows a transform's parameters as "name: value" pairs.
func paramsText(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %v", k, p[k])
	}
	return strings.Join(parts, ", ")
}

// num writes an integer with thin spaces between thousands.
func num(n int64) string { return GroupDigits(n, "\u202f") }

// GroupDigits writes n with sep between groups of three digits: 2,000 with
// sep ",".
func GroupDigits(n int64, sep string) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// byteSize writes a size in bytes, KiB or MiB.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
