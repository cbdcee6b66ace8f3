package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIndentationMistakesAtTheirLine: a YAML indentation mistake is reported
// at the line that is wrong, not where the parser noticed it (often where
// the enclosing block started), and the parser's message is kept.
func TestIndentationMistakesAtTheirLine(t *testing.T) {
	cases := []struct {
		name      string
		old, new  string // edit of minimal
		line, col int
		parser    string // the parser's message, kept
		why       string
	}{
		{"column key one space too little", "      at: timestamp\n", "     at: timestamp\n", 11, 6, "did not find expected key", "matches no enclosing block"},
		{"column key one space too far", "      at: timestamp\n", "       at: timestamp\n", 11, 8, "mapping values are not allowed in this context", "deeper than the line before"},
		{"a tab", "      at: timestamp\n", "\tat: timestamp\n", 11, 1, "found a tab character that violates indentation", "a tab in the indentation"},
		{"spaces then a tab", "      at: timestamp\n", "    \tat: timestamp\n", 11, 5, "", "a tab in the indentation"},
		{"dataset key too little", "      keep: 30d\n", "     keep: 30d\n", 14, 6, "did not find expected key", "matches no enclosing block"},
		{"destination key too little", "    output: out\n", "   output: out\n", 19, 4, "did not find expected key", "matches no enclosing block"},
		{"destination key too far", "    output: out\n", "     output: out\n", 19, 6, "mapping values are not allowed", "deeper than the line before"},
		{"treatment too little", "          at: {", "         at: {", 25, 10, "did not find expected key", "matches no enclosing block"},
		{"first line of a block too little", "          user_id: pseudonymize\n", "         user_id: pseudonymize\n", 24, 10, "", "indented 9 spaces, but the next line of its block is indented 10"},
		{"first line of a block too far", "          user_id: pseudonymize\n", "           user_id: pseudonymize\n", 24, 12, "", "indented 11 spaces, but the next line of its block is indented 10"},
		{"keys entry too little", "  k: hex:env:K\n", "  k: hex:env:K\n k2: hex:env:K2\n", 5, 2, "did not find expected key", "matches no enclosing block"},
		{"list item too little", "    subject: user_id\n", "    subject: user_id\n    erasure:\n      - list: a.csv\n     - list: b.csv\n", 11, 6, "did not find expected key", "matches no enclosing block"},
		{"list item too far", "    subject: user_id\n", "    subject: user_id\n    erasure:\n      - list: a.csv\n       - list: b.csv\n", 11, 8, "did not find expected '-' indicator", "indented 7 spaces, which matches no enclosing block: those are at 0, 2, 4, 6, 8 spaces"},
		{"a key where a list item belongs", "    subject: user_id\n", "    subject: user_id\n    erasure:\n      - list: a.csv\n      column: x\n", 11, 7, "did not find expected '-' indicator", "matches no enclosing block"},
		{"after a comment and a block scalar", "name: t\n", "name: t\ndescription: |\n  text\n\n  # not a comment\n", 0, 0, "", ""}, // valid: no error
	}
	// the same line whatever the line breaks: YAML ends a line at "\r\n",
	// "\n" or a lone "\r" alike
	for _, c := range cases {
		for breakName, lineBreak := range map[string]string{"LF": "\n", "CRLF": "\r\n", "CR": "\r"} {
			t.Run(c.name+"/"+breakName, func(t *testing.T) {
				if strings.Count(minimal, c.old) != 1 {
					t.Fatalf("%q does not occur once", c.old)
				}
				src := strings.ReplaceAll(strings.Replace(minimal, c.old, c.new, 1), "\n", lineBreak)
				checkIndentCase(t, src, c.line, c.col, c.parser, c.why)
			})
		}
	}
}

// checkIndentCase parses src and checks its one error's position and
// message (or that it parses, when line is 0).
func checkIndentCase(t *testing.T, src string, line, col int, parser, why string) {
	t.Helper()
	_, err := Parse("policy.yaml", []byte(src), env(nil))
	if line == 0 {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || !errors.Is(err, ErrPolicy) {
		t.Fatalf("want one policy error, got %v", err)
	}
	e := list[0]
	if e.Line != line || e.Column != col {
		t.Errorf("at %d:%d, want %d:%d: %s\n%q", e.Line, e.Column, line, col, e.Msg, src)
	}
	if !strings.HasPrefix(e.Msg, "invalid YAML: "+parser) || !strings.Contains(e.Msg, why) {
		t.Errorf("message %q, want the parser's %q and %q", e.Msg, parser, why)
	}
}

// TestFindIndentMistakeAcceptsValidYAML: the scanner finds no mistake in
// valid policies, whatever their style.
func TestFindIndentMistakeAcceptsValidYAML(t *testing.T) {
	for name, src := range map[string]string{
		"minimal":                       minimal,
		"list at its key's indentation": "a:\n- x\n- y: 1\n  z: 2\nb: 3\n",
		"nested lists":                  "a:\n  - - x\n    - y\n  - z\n",
		"multi-line flow":               "a: {b: 1,\n  c: 2}\nd: [1,\n    2]\ne: 1\n",
		"block scalar":                  "a: |\n    x\n      y\n\n    z\nb: >-\n  w\nc: 1\n",
		"comments":                      "a:\n  # here\n    # deeper\n  b: 1 # trailing\n# end\n",
		"quoted keys":                   "a:\n  \"x: y\": 1\n  'z': 2\n",
		"item with a block":             "a:\n  - b:\n      c: 1\n    d: 2\n",
	} {
		if m, ok := findIndentMistake(src); ok {
			t.Errorf("%s: mistake at line %d: %s\n%s", name, m.line, m.why, src)
		}
	}
	// and none in the repository's own YAML (policies, Kubernetes and Cloud
	// Run manifests with policies embedded as block scalars)
	var files []string
	for _, g := range []string{"../deploy/*/*.yaml", "../cmd/deid/*.yaml", "../cmd/deid/testdata/*.yaml", "testdata/*.yaml"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("only %d YAML files found", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := findIndentMistake(string(b)); ok {
			t.Errorf("%s: mistake at line %d: %s", f, m.line, m.why)
		}
	}
}

// FuzzSyntaxErrorPosition: whatever the text, a policy that does not parse
// gives one positioned error inside the text, never a panic.
func FuzzSyntaxErrorPosition(f *testing.F) {
	f.Add(minimal)
	f.Add(strings.Replace(minimal, "      at: timestamp\n", "     at: timestamp\n", 1))
	f.Add("a:\n\t- b\n  - 'c\n d: [\n")
	f.Add("- - -\n  -\n -\n")
	f.Add("\"\r")
	f.Add("a:\r  b: 1\r c: 2\r")
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse("p.yaml", []byte(src), env(nil))
		var list ErrorList
		if err == nil || !errors.As(err, &list) || !strings.HasPrefix(list[0].Msg, "invalid YAML") {
			return
		}
		// lines as YAML counts them: a lone "\r" ends a line too
		if n := len(yamlLines(src)); list[0].Line > n {
			t.Errorf("line %d of a %d-line text", list[0].Line, n)
		}
	})
}
