package rules

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrPolicy is matched (errors.Is) by every error that a policy's content
// causes: syntax, unknown keys, bad values, unset variables, bad keys. The
// command line maps it to exit code 2.
var ErrPolicy = errors.New("policy error")

// Error is one problem in a policy, located in its file.
type Error struct {
	File   string // the policy file
	Line   int    // 1-based; 0 when the problem has no position
	Column int    // 1-based
	Path   string // dotted path of the offending node, e.g. destinations.partner.columns.phone
	Msg    string // what is wrong and, where it helps, how to fix it
}

// Error formats the problem as file:line:column: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every policy error match ErrPolicy.
func (e *Error) Is(target error) bool { return target == ErrPolicy }

// Position returns "file:line:column" for messages that point back into the
// policy from elsewhere (a data error about a column, say).
func (e *Error) Position() string {
	if e.Line == 0 {
		return e.File
	}
	return fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
}

// ErrorList is every problem found in a policy, in file order.
type ErrorList []*Error

// Error lists the problems one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	if len(l) > 1 {
		return fmt.Sprintf("%d problems in the policy:\n  %s", len(l), strings.Join(lines, "\n  "))
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Is makes the list match ErrPolicy.
func (l ErrorList) Is(target error) bool { return target == ErrPolicy }

// sorted returns the list ordered by position, duplicates removed.
func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
	out := l[:0]
	for i, e := range l {
		if i > 0 && *e == *l[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Pos is a position in a policy file, kept in the plan so that errors found
// while running (a column type a transform cannot take) point back to the
// line that asked for it.
type Pos struct {
	File         string
	Line, Column int
}

// String formats the position as file:line:column.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}
