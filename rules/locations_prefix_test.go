package rules

import (
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

// TestSourceFolderIsWhatGlobLists: the folder the overlap check protects is
// the one storage.Glob lists, for every kind of pattern; if the two drifted,
// an output could sit in the folder that is read.
func TestSourceFolderIsWhatGlobLists(t *testing.T) {
	for _, p := range []string{
		"lake/t/*.parquet", "lake/**/*.parquet", "/lake/t/dt=*/*.parquet", "*.parquet", "/*.parquet",
		"lake/t/part-0.parquet", "lake/t[12]/x.parquet", "lake/a?/x", "./lake/t/*", "../lake/t/*",
		"gs://b/lake/t/*.parquet", "gs://b/*.parquet", "gs://b/**", "gs://b/a/b/c.parquet", "lake//t/*",
	} {
		got, want := sourceFolder(p), storage.FixedPrefix(p)
		if strings.TrimSuffix(got, "/") != strings.TrimSuffix(want, "/") && !(got == "/" && want == "/") {
			t.Errorf("%q: the overlap check protects %q, Glob lists %q", p, got, want)
		}
	}
}
