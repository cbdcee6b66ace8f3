package main

import (
	"fmt"
	"strings"

	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
	"github.com/deidproject/deid/transforms/detect"
)

// transformTable renders the transform registry as docs/reference/transforms.md's Markdown
// table, so the documentation is generated from the code it describes.
func transformTable() string {
	var b strings.Builder
	b.WriteString("| transform | takes | leaves | parameters (default) | what it does | example |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, s := range transforms.Registry() {
		var kinds []string
		for _, k := range s.Inputs {
			kinds = append(kinds, k.String())
		}
		if len(kinds) == 0 {
			kinds = []string{"any"}
		}
		var params []string
		for _, p := range s.Params {
			d := "required"
			switch v := p.Default.(type) {
			case nil:
			case []int64, []float64, []string:
				d = strings.Join(strings.Fields(strings.Trim(fmt.Sprint(v), "[]")), ", ")
			default:
				d = fmt.Sprint(v)
			}
			txt := fmt.Sprintf("`%s` %s (%s): %s", p.Name, p.Kind, d, strings.TrimSuffix(p.Doc, "."))
			if len(p.Enum) > 0 && p.Kind == transforms.ParamString {
				txt += "; one of " + strings.Join(p.Enum, ", ")
			}
			params = append(params, txt)
		}
		if s.Keyed {
			params = append(params, "needs the destination's key")
		}
		if s.Subject {
			params = append(params, "needs the dataset's subject column")
		}
		if len(params) == 0 {
			params = []string{"–"}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", s.Name, strings.Join(kinds, ", "), s.Result,
			cell(strings.Join(params, "<br>")), cell(s.Summary), cell(s.Example))
	}
	return b.String()
}

// detectorTable renders the detector registry.
func detectorTable() string {
	var b strings.Builder
	b.WriteString("| detector | token | matches | example |\n|---|---|---|---|\n")
	for _, d := range detect.All() {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", d.Name, d.Token, cell(d.Summary), cell(d.Example))
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// purposeTable renders each purpose's promises and floors per category.
func purposeTable() string {
	var b strings.Builder
	cats := []rules.Category{rules.DirectIdentifier, rules.DeviceIdentifier, rules.QuasiIdentifier, rules.FreeText, rules.RecordID, rules.Attribute}
	b.WriteString("| purpose | for | promises kept (reading aid) |")
	for _, c := range cats {
		fmt.Fprintf(&b, " floor: %s |", strings.ReplaceAll(string(c), "_", " "))
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(cats)) + "\n")
	for _, p := range rules.AllPurposes() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |", p.Name, cell(p.Summary), cell(p.Promises))
		for _, c := range cats {
			fmt.Fprintf(&b, " %s |", p.Floor(&rules.SemanticType{Category: c}))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// defaultsTable renders every semantic type with its category and each
// purpose's default treatment.
func defaultsTable() string {
	var b strings.Builder
	ps := rules.AllPurposes()
	b.WriteString("| semantic type | category | ")
	for _, p := range ps {
		fmt.Fprintf(&b, "%s | ", p.Name)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(ps)) + "\n")
	for _, st := range rules.SemanticTypes() {
		cat := string(st.Category)
		if st.Coarse {
			cat += " (coarse)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | ", st.Name, cat)
		for _, p := range ps {
			fmt.Fprintf(&b, "`%s` | ", cell(p.Default(&st).String()))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// cliReference renders docs/reference/cli.md: every command's help, as
// deid COMMAND --help prints it, from helpTexts and the flag sets.
func cliReference() string {
	var b strings.Builder
	b.WriteString("# Command-line reference\n\n")
	b.WriteString("<!-- generated from cmd/deid/help.go and the commands' flags by go test ./cmd/deid -run CLIReference -update; do not edit -->\n\n")
	b.WriteString("Every command prints this text with `deid COMMAND --help` (on stderr) or `deid help COMMAND` (on stdout).\n")
	b.WriteString("Flags take one dash or two (`-c`, `--workers`); a flag's value follows it (`--now 2026-11-01T00:00:00Z`).\n")
	b.WriteString("Shell completion: `deid completion bash|zsh|fish`.\n\n")
	b.WriteString("| command | what it does |\n|---|---|\n")
	for _, h := range helpTexts {
		fmt.Fprintf(&b, "| [`deid %s`](#%s) | %s |\n", h.name, "deid-"+strings.ReplaceAll(h.name, " ", "-"), cell(h.summary))
	}
	b.WriteString("\n## Exit status\n\nEvery command exits with one of these; each command's help lists those it can return.\n\n")
	b.WriteString("| code | meaning | what to do |\n|---|---|---|\n")
	for _, c := range []int{exitOK, exitOther, exitPolicy, exitData, exitCheck} {
		fmt.Fprintf(&b, "| %d | %s | %s |\n", c, cell(strings.Join(strings.Fields(exitMeanings[c]), " ")), cell(exitAdvice[c]))
	}
	for _, h := range helpTexts {
		var help strings.Builder
		printHelp(&help, h, commandFlags(h.name))
		fmt.Fprintf(&b, "\n## deid %s\n\n```\n%s```\n", h.name, help.String())
	}
	return b.String()
}
