package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/parquetio"
)

var update = flag.Bool("update", false, "rewrite the generated files: docs/'s generated pages and sections and testdata/golden")

// TestReadmeGeneratedSections: the tables of transforms, detectors,
// purposes and defaults in docs/reference are generated from the
// registries. Run `go test ./cmd/deid -run Readme -update` after changing
// a transform, detector, purpose or semantic type.
func TestReadmeGeneratedSections(t *testing.T) {
	for _, sec := range []struct{ file, name, body string }{
		{"docs/reference/transforms.md", "transforms", transformTable()},
		{"docs/reference/detectors.md", "detectors", detectorTable()},
		{"docs/reference/policy.md", "purposes", purposeTable()},
		{"docs/reference/policy.md", "defaults", defaultsTable()},
		{"docs/reference/policy.md", "keys", generated(t, policyKeysTable)},
		{"docs/design/architecture.md", "imports", importsTable(t)},
		{"docs/design/architecture.md", "layout-rules", layoutRulesList()},
		{"docs/design/parquet.md", "support-matrix", supportMatrixTable()},
	} {
		path := filepath.Join(repoRoot(t), sec.file)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		begin, end := "<!-- generated:"+sec.name+" -->\n", "<!-- end:"+sec.name+" -->"
		i, j := strings.Index(text, begin), strings.Index(text, end)
		if i < 0 || j < i {
			t.Fatalf("%s lacks the markers %q and %q", sec.file, strings.TrimSpace(begin), end)
		}
		if got := text[i+len(begin) : j]; got != sec.body {
			if !*update {
				t.Errorf("%s's %s table is out of date: run go test ./cmd/deid -run Readme -update", sec.file, sec.name)
				continue
			}
			text = text[:i+len(begin)] + sec.body + text[j:]
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// generated returns what f returns, failing the test on an error.
func generated(t *testing.T, f func() (string, error)) string {
	t.Helper()
	s, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// markdownFiles returns README.md and every Markdown file under docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	mdFence   = regexp.MustCompile("(?ms)^```.*?^```")
	urlScheme = regexp.MustCompile(`^[a-z]+:`)
)

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown text.
func headingAnchors(text string) map[string]bool {
	text = mdFence.ReplaceAllString(text, "")
	out := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(text, -1) {
		out[githubAnchor(m[1])] = true
	}
	return out
}

// githubAnchor is GitHub's anchor of a heading: lower case, characters
// other than letters, digits, spaces, '-' and '_' dropped, spaces as '-'.
func githubAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocsLinksResolve: every relative link in README.md and docs/ names
// a file of the repository, and every #anchor a heading of its page.
func TestDocsLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t)
	if len(files) < 10 {
		t.Fatalf("found only %d Markdown files", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, m := range mdLink.FindAllStringSubmatch(mdFence.ReplaceAllString(string(b), ""), -1) {
			target := m[1]
			if urlScheme.MatchString(target) {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			page := f
			if path != "" {
				page = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
				if r, err := filepath.Rel(root, page); err != nil || strings.HasPrefix(r, "..") {
					t.Errorf("%s: link %q leaves the repository", rel, target)
					continue
				}
				if _, err := os.Stat(page); err != nil {
					t.Errorf("%s: link %q: no such file", rel, target)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			pb, err := os.ReadFile(page)
			if err != nil || !headingAnchors(string(pb))[anchor] {
				t.Errorf("%s: link %q: no heading with that anchor", rel, target)
			}
		}
	}
}

// TestDocsIndexListsEveryPage: docs/README.md links every page of docs/.
func TestDocsIndexListsEveryPage(t *testing.T) {
	root := repoRoot(t)
	index, err := os.ReadFile(filepath.Join(root, "docs", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range markdownFiles(t) {
		rel, _ := filepath.Rel(filepath.Join(root, "docs"), f)
		if strings.HasPrefix(rel, "..") || rel == "README.md" {
			continue
		}
		if !strings.Contains(string(index), "("+filepath.ToSlash(rel)+")") {
			t.Errorf("docs/README.md does not link %s", rel)
		}
	}
}

// TestReadmeShort: the README stays a front page; the rest is in docs/.
func TestReadmeShort(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 200 {
		t.Errorf("README.md has %d lines: move the detail to docs/", n)
	}
}

// TestReadmeFirstPolicy runs the README's first policy as the README
// says: validate, run, verify and report check pass on the browsing
// sample.
func TestReadmeFirstPolicy(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- first-policy[^>]*-->\n```yaml\n(.*?)```\n<!-- end:first-policy -->").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md lacks the first policy between its markers")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "testdata"), 0o755)
	copyTree(t, filepath.Join(root, "testdata", "sample"), filepath.Join(dir, "testdata", "sample"))
	os.WriteFile(filepath.Join(dir, "first.yaml"), m[1], 0o644)
	env := []string{"DEID_ANALYTICS_KEY=" + strings.Repeat("5a", 32)}
	for _, args := range [][]string{
		{"validate", "-c", "first.yaml"},
		{"run", "-c", "first.yaml", "--now", sampleNow, "--progress", "never"},
		{"verify", "-c", "first.yaml"},
		{"report", "check", "out/first/analytics", "--unsigned"},
	} {
		if res := runDeid(t, dir, env, args...); res.code != 0 {
			t.Errorf("deid %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		}
	}
}

// supportMatrixTable is docs/design/parquet.md's table of the lean reader's
// support matrix, from parquetio.SupportMatrix.
func supportMatrixTable() string {
	var b strings.Builder
	b.WriteString("| physical type | read as (Arrow) | encodings | codecs | pages |\n|---|---|---|---|---|\n")
	for _, r := range parquetio.SupportMatrix() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Physical, strings.Join(r.Arrow, ", "),
			strings.Join(r.Encodings, ", "), strings.Join(r.Codecs, ", "), strings.Join(r.Pages, ", "))
	}
	return b.String()
}
