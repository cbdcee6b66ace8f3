package rules

import (
	"fmt"
	"strings"
)

// The YAML parser reports an indentation mistake where it noticed it, which
// is often where the enclosing block started (a key indented one space too
// little deep inside datasets: is reported at the dataset's line). This file
// finds the line that is wrong by following the blocks' indentation.

// indentMistake is a line whose indentation fits no open block.
type indentMistake struct {
	line, column int
	why          string
	// firstOfBlock marks the first line of a block, indented unlike its
	// next line: the parser notices only at that next line
	firstOfBlock bool
}

// blockLevel is an open block: its indentation and whether it is a list.
type blockLevel struct {
	indent int
	list   bool
	// first is the line that opened the block and step its indentation
	// beyond the enclosing block; lines counts its lines at this level
	first, step, lines int
}

// findIndentMistake scans block-style YAML and returns the first line whose
// indentation fits no open block: a tab in the indentation, a line indented
// deeper than a value that opens no block, or a line whose indentation
// matches no enclosing block (or a list item where a key belongs, or a key
// where a list item belongs). It returns false when it finds none. Flow
// collections over several lines, block scalars (| and >) and multi-line
// quoted strings are skipped, not judged.
func findIndentMistake(text string) (indentMistake, bool) {
	lines := yamlLines(text)
	stack := []blockLevel{{indent: 0}}
	steps := map[int]int{} // how many blocks are opened with each indentation step
	opens := false         // the previous line opens a block (ends with "key:" or "-")
	scalarIndent := -1     // inside a block scalar started at this indentation
	flowDepth := 0         // inside a flow collection over several lines
	quote := byte(0)       // inside a quoted string over several lines
	for i, raw := range lines {
		ln := i + 1
		line := strings.TrimRight(raw, " \r")
		body := strings.TrimLeft(line, " ")
		indent := len(line) - len(body)
		if scalarIndent >= 0 {
			if body == "" || indent > scalarIndent {
				continue
			}
			scalarIndent = -1
		}
		if flowDepth > 0 || quote != 0 {
			flowDepth, quote = scanFlow(line, flowDepth, quote)
			continue
		}
		if body == "" || body[0] == '#' || strings.HasPrefix(body, "---") || strings.HasPrefix(body, "...") || body[0] == '%' {
			continue
		}
		if body[0] == '\t' {
			return indentMistake{line: ln, column: indent + 1, why: "a tab in the indentation (YAML indents with spaces only)"}, true
		}
		isItem := body == "-" || strings.HasPrefix(body, "- ")
		top := stack[len(stack)-1]
		switch {
		case opens && (indent > top.indent || isItem && indent == top.indent && !top.list):
			stack = append(stack, blockLevel{indent: indent, list: isItem, first: ln, step: indent - top.indent, lines: 1})
			steps[indent-top.indent]++
		case indent > top.indent:
			if parent := top.indent - top.step; top.lines == 1 && top.first > 0 && indent-parent == commonStep(steps) && top.step != indent-parent {
				// the block's first line is the odd one: the next line is
				// indented as the rest of the file is
				return indentMistake{line: top.first, column: top.indent + 1, why: fmt.Sprintf("indented %d spaces, but the next line of its block is indented %d", top.indent, indent), firstOfBlock: true}, true
			}
			return indentMistake{line: ln, column: indent + 1, why: fmt.Sprintf("indented %d spaces, deeper than the line before, whose value opens no block", indent)}, true
		default:
			j := len(stack) - 1
			for j >= 0 && (stack[j].indent > indent || stack[j].indent == indent && stack[j].list != isItem) {
				j--
			}
			if j < 0 || stack[j].indent != indent {
				if parent := top.indent - top.step; top.lines == 1 && top.first > 0 && indent > parent && indent-parent == commonStep(steps) {
					return indentMistake{line: top.first, column: top.indent + 1, why: fmt.Sprintf("indented %d spaces, but the next line of its block is indented %d", top.indent, indent), firstOfBlock: true}, true
				}
				return indentMistake{line: ln, column: indent + 1, why: fmt.Sprintf("indented %d spaces, which matches no enclosing block: those are at %s", indent, levels(stack))}, true
			}
			stack = stack[:j+1]
			stack[j].lines++
		}
		// a list item's content is a block of its own: "- key: v" opens a
		// mapping two columns further in
		rest := body
		for rest == "-" || strings.HasPrefix(rest, "- ") {
			trimmed := strings.TrimLeft(strings.TrimPrefix(rest, "-"), " ")
			if trimmed == "" {
				break
			}
			inner := indent + len(body) - len(trimmed)
			stack = append(stack, blockLevel{indent: inner, list: strings.HasPrefix(trimmed, "- ") || trimmed == "-"})
			rest = trimmed
		}
		value := lineValue(rest)
		opens = value == "" || value == "-"
		switch {
		case strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">"):
			scalarIndent, opens = indent, false
			if len(stack) > 0 && stack[len(stack)-1].indent > indent {
				scalarIndent = stack[len(stack)-1].indent
			}
		case value != "":
			flowDepth, quote = scanFlow(value, 0, 0)
		}
	}
	return indentMistake{}, false
}

// lineValue returns what follows the line's key (the text after "key:"), or
// the whole line when it has no key; comments are left out.
func lineValue(body string) string {
	body = stripComment(body)
	if body == "-" {
		return "-"
	}
	if k := keyEnd(body); k >= 0 {
		return strings.TrimSpace(body[k+1:])
	}
	return strings.TrimSpace(body)
}

// keyEnd returns the index of the ':' that ends a plain or quoted key at the
// start of body, or -1.
func keyEnd(body string) int {
	i := 0
	if body != "" && (body[0] == '"' || body[0] == '\'') {
		q := body[0]
		for i = 1; i < len(body); i++ {
			if body[i] == '\\' && q == '"' {
				i++
				continue
			}
			if body[i] == q {
				break
			}
		}
		i++
	}
	if body != "" && (body[0] == '{' || body[0] == '[') {
		return -1
	}
	for ; i < len(body); i++ {
		if body[i] == ':' && (i+1 == len(body) || body[i+1] == ' ') {
			return i
		}
	}
	return -1
}

// stripComment removes a trailing " #..." outside quotes.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case q != 0:
			if c == '\\' && q == '"' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " ")
		}
	}
	return s
}

// scanFlow follows brackets and quotes through s, starting inside depth
// flow collections and quote, and returns where s leaves them.
func scanFlow(s string, depth int, quote byte) (int, byte) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && (i == 0 || strings.IndexByte(" [{,:", s[i-1]) >= 0):
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return depth, 0
		case c == '{' || c == '[':
			depth++
		case (c == '}' || c == ']') && depth > 0:
			depth--
		}
	}
	if depth == 0 && quote == '\'' {
		quote = 0 // an apostrophe in a plain scalar
	}
	return depth, quote
}

// commonStep returns the indentation step most blocks are opened with.
func commonStep(steps map[int]int) int {
	best, n := 0, 0
	for step, c := range steps {
		if c > n || c == n && step < best {
			best, n = step, c
		}
	}
	return best
}

// levels lists the open blocks' indentations, for the message.
func levels(stack []blockLevel) string {
	var out []string
	seen := map[int]bool{}
	for _, l := range stack {
		if !seen[l.indent] {
			seen[l.indent] = true
			out = append(out, fmt.Sprint(l.indent))
		}
	}
	return strings.Join(out, ", ") + " spaces"
}

// yamlLines splits text at YAML's line breaks: "\r\n", "\n" and a lone "\r"
// each end a line, so the lines here are numbered as the parser numbers them.
func yamlLines(text string) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	return strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n")
}
