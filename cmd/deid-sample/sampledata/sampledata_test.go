package sampledata

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/lake from the generator")

// TestCommittedLakeIsGenerated: the committed sample lake is exactly what
// the generator makes from Seed, so anyone can rebuild and review it.
// Run with -update after changing the generator.
func TestCommittedLakeIsGenerated(t *testing.T) {
	files, err := Generate(Seed)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Generate(Seed)
	if err != nil {
		t.Fatal(err)
	}
	lake := filepath.Join("..", "..", "..", "testdata", "lake")
	if *update {
		os.RemoveAll(lake)
		if err := Write(lake, files); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range files {
		if !bytes.Equal(f.Data, again[i].Data) {
			t.Errorf("%s: two runs of the generator differ", f.Path)
		}
		got, err := os.ReadFile(filepath.Join(lake, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Errorf("%v (run go test ./pipeline/sampledata -update)", err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from the generator's output (run go test ./pipeline/sampledata -update)", f.Path)
		}
	}
}
