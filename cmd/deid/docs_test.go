package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated files: README.md's generated sections and testdata/golden")

// TestReadmeGeneratedSections: the README's transform and detector tables
// are generated from the registries. Run `go test ./cmd/deid -run Readme
// -update` after changing a transform or detector.
func TestReadmeGeneratedSections(t *testing.T) {
	path := filepath.Join(repoRoot(t), "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, sec := range []struct{ name, body string }{
		{"transforms", transformTable()},
		{"detectors", detectorTable()},
		{"purposes", purposeTable()},
		{"defaults", defaultsTable()},
	} {
		begin, end := "<!-- generated:"+sec.name+" -->\n", "<!-- end:"+sec.name+" -->"
		i, j := strings.Index(text, begin), strings.Index(text, end)
		if i < 0 || j < i {
			t.Fatalf("README.md lacks the markers %q and %q", strings.TrimSpace(begin), end)
		}
		if got := text[i+len(begin) : j]; got != sec.body {
			if !*update {
				t.Errorf("README.md's %s table is out of date: run go test ./cmd/deid -run Readme -update", sec.name)
				continue
			}
			text = text[:i+len(begin)] + sec.body + text[j:]
		}
	}
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
