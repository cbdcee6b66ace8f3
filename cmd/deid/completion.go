package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// completionCmd prints a shell completion script generated from the
// commands, their help texts and their flag sets.
func completionCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		return parseFlags(flag.NewFlagSet("deid completion", flag.ContinueOnError), args, stderr)
	}
	if len(args) != 1 {
		return usageError("deid completion needs one shell: bash, zsh or fish")
	}
	switch args[0] {
	case "bash":
		_, err := io.WriteString(stdout, bashCompletion())
		return err
	case "zsh":
		_, err := io.WriteString(stdout, "# zsh completion for deid: source <(deid completion zsh) in ~/.zshrc\n"+
			"(( ${+functions[compdef]} )) || { autoload -Uz compinit && compinit; }\n"+
			"autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion())
		return err
	case "fish":
		_, err := io.WriteString(stdout, fishCompletion())
		return err
	}
	return usageError("deid completion %q: use bash, zsh or fish", args[0])
}

// completionFlag is one flag as completion offers it.
type completionFlag struct {
	name   string // without dashes
	usage  string
	isBool bool
}

// dashed spells the flag as its help does: -c, --workers.
func (f completionFlag) dashed() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

// completedFlags returns the flags of the command typed as name, sorted.
func completedFlags(name string) []completionFlag {
	fs := commandFlags(name)
	if fs == nil {
		return nil
	}
	var out []completionFlag
	fs.VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		out = append(out, completionFlag{name: f.Name, usage: f.Usage, isBool: ok && b.IsBoolFlag()})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// completionWords returns the top-level commands and report's
// subcommands.
func completionWords() (top, report []string) {
	for _, c := range commands() {
		top = append(top, c.name)
	}
	for _, h := range helpTexts {
		if sub, ok := strings.CutPrefix(h.name, "report "); ok {
			report = append(report, sub)
		}
	}
	return top, report
}

func bashCompletion() string {
	top, report := completionWords()
	var b strings.Builder
	b.WriteString(`# bash completion for deid: source <(deid completion bash)
# (_deid_reply filters itself: zsh's bashcompinit compgen does not)
_deid_reply() {
    local cur=$1 w
    shift
    COMPREPLY=()
    for w in "$@"; do
        [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
    done
}
_deid() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmd
    local -a words
    if [[ $COMP_CWORD -eq 1 ]]; then
        _deid_reply "$cur" ` + strings.Join(top, " ") + `
        return
    fi
    cmd=${COMP_WORDS[1]}
    if [[ $cmd == report ]]; then
        if [[ $COMP_CWORD -eq 2 ]]; then
            _deid_reply "$cur" ` + strings.Join(report, " ") + `
            return
        fi
        cmd="report ${COMP_WORDS[2]}"
    fi
    case $cmd in
    help)
        if [[ $COMP_CWORD -eq 3 && ${COMP_WORDS[2]} == report ]]; then
            _deid_reply "$cur" ` + strings.Join(report, " ") + `
        elif [[ $COMP_CWORD -eq 2 ]]; then
            _deid_reply "$cur" ` + strings.Join(top, " ") + `
        else
            COMPREPLY=()
        fi
        return ;;
    completion)
        _deid_reply "$cur" bash zsh fish
        return ;;
`)
	for _, h := range helpTexts {
		var words []string
		for _, f := range completedFlags(h.name) {
			words = append(words, f.dashed())
		}
		if len(words) > 0 {
			fmt.Fprintf(&b, "    %q) words=(%s) ;;\n", h.name, strings.Join(words, " "))
		}
	}
	b.WriteString(`    esac
    if [[ $cur == -* ]]; then
        _deid_reply "$cur" "${words[@]}"
    else
        local -a files
        local f
        while IFS= read -r f; do
            files+=("$f")
        done < <(compgen -f -- "$cur")
        _deid_reply "$cur" "${files[@]}"
    fi
}
complete -o filenames -o bashdefault -F _deid deid
`)
	return b.String()
}

func fishCompletion() string {
	top, report := completionWords()
	var b strings.Builder
	b.WriteString("# fish completion for deid: deid completion fish > ~/.config/fish/completions/deid.fish\ncomplete -c deid -f\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "complete -c deid -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	inReport := "__fish_seen_subcommand_from report"
	noSub := inReport + "; and not __fish_seen_subcommand_from " + strings.Join(report, " ")
	for _, h := range helpTexts {
		sub, ok := strings.CutPrefix(h.name, "report ")
		if ok {
			fmt.Fprintf(&b, "complete -c deid -n %s -a %s -d %s\n", fishQuote(noSub), sub, fishQuote(h.summary))
		}
	}
	fmt.Fprintf(&b, "complete -c deid -n %s -a %s\n", fishQuote("__fish_seen_subcommand_from help"), fishQuote(strings.Join(top, " ")))
	fmt.Fprintf(&b, "complete -c deid -n %s -a %s\n", fishQuote("__fish_seen_subcommand_from completion"), fishQuote("bash zsh fish"))
	// report check DIR|FILE and report render FILE take a path
	fmt.Fprintf(&b, "complete -c deid -n %s -F\n", fishQuote(inReport+"; and __fish_seen_subcommand_from check render"))
	for _, h := range helpTexts {
		cond := "__fish_seen_subcommand_from " + h.name
		if sub, ok := strings.CutPrefix(h.name, "report "); ok {
			cond = inReport + "; and __fish_seen_subcommand_from " + sub
		}
		for _, f := range completedFlags(h.name) {
			opt := "-l " + f.name
			if len(f.name) == 1 {
				opt = "-s " + f.name
			}
			if !f.isBool {
				opt += " -r -F"
			}
			fmt.Fprintf(&b, "complete -c deid -n %s %s -d %s\n", fishQuote(cond), opt, fishQuote(firstSentence(f.usage)))
		}
	}
	return b.String()
}

// fishQuote quotes s for fish: single quotes, with \ and ' escaped.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// firstSentence shortens a flag's usage for a completion menu.
func firstSentence(s string) string {
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
