package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckOutsideReads: a file a command line names for deid to write is
// refused (ErrPolicy) when it is, or lies inside, a location the policy
// reads, however it is spelled and through links; a file beside them is
// accepted.
func TestCheckOutsideReads(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"lake/t", "lake/tt", "lists", "reports"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"linked": filepath.Join(dir, "lake", "t"), "erasure-link.csv": filepath.Join(dir, "lists", "erasure.csv")} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	p := locPolicy{source: "lake/t/*.parquet", root: "lake", erasure: "lists/erasure.csv", outputs: []string{"out"}}
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte(p.render()), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := Load(file, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, target string
		want         string // "" accepts
	}{
		{"a source file", "lake/t/part-0.parquet", "lies inside the source folder"},
		{"a new file in the source folder", "lake/t/report.json", "lies inside the source folder"},
		{"the source folder", "lake/t", "is the source folder"},
		{"spelled another way", "lake/tt/../t/./part-0.parquet", "lies inside the source folder"},
		{"inside the root", "lake/tt/report.json", "lies inside the root"},
		{"the erasure list", "lists/erasure.csv", "is the erasure list"},
		{"through a link to the source folder", "linked/report.json", "the source folder"},
		{"through a link to the list", "erasure-link.csv", "is the erasure list"},
		{"the policy file", "p.yaml", "is the policy file"},
		{"beside the list", "lists/report.json", ""},
		{"a folder of its own", "reports/retain.json", ""},
		{"a folder above everything", ".", "contains"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := pol.CheckOutsideReads("--report", filepath.Join(dir, tc.target))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--report") {
				t.Fatalf("got %v, want ErrPolicy saying %q", err, tc.want)
			}
		})
	}
}
