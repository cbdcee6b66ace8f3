package rules

import (
	"sort"
	"strconv"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// FoldName is the form under which two column names are the same name:
// Unicode NFC (a precomposed "é" equals "e" plus a combining accent), then
// full case folding (Phone equals phone, Straße equals STRASSE), then NFC
// again. It does not apply compatibility folding (NFKC): a full-width
// "ｐhone" stays a name apart from "phone", as do names that differ by an
// invisible character such as a zero-width space; errors quote every name
// (Go %q) so those differences show.
func FoldName(name string) string {
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(name)))
}

// CollidingNames returns the groups of names that are the same name under
// FoldName (exact repeats included), each group in the order given, groups
// ordered by their first name's position; nil when every name is unique.
func CollidingNames(names []string) [][]string {
	byKey := map[string][]int{}
	for i, n := range names {
		k := FoldName(n)
		byKey[k] = append(byKey[k], i)
	}
	var groups [][]int
	for _, idx := range byKey {
		if len(idx) > 1 {
			groups = append(groups, idx)
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i][0] < groups[j][0] })
	var out [][]string
	for _, g := range groups {
		var group []string
		for _, i := range g {
			group = append(group, names[i])
		}
		out = append(out, group)
	}
	return out
}

// QuoteName quotes a name for a message like Go's %q, so that invisible
// characters show (a zero-width space is "\u200b"). A name that Unicode
// normalization would change (NFKC: a decomposed "e\u0301", a full-width
// "\uff50") is quoted with every non-ASCII character escaped, so that it
// does not look like the name it would be normalized to.
func QuoteName(name string) string {
	if norm.NFKC.IsNormalString(name) {
		return strconv.Quote(name)
	}
	return strconv.QuoteToASCII(name)
}

// QuoteNames formats names for a message, each quoted by QuoteName:
// "a", "b".
func QuoteNames(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = QuoteName(n)
	}
	return strings.Join(quoted, ", ")
}
