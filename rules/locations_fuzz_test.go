package rules

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSegments are the path segments FuzzLocationOverlap builds paths of:
// folders and links of its tree, ".", "..", and "" (a double slash).
var fuzzSegments = []string{"lake", "t", "tt", "out", "A", "l1", "l2", "l3", "up", "a", "b", ".", "..", "", "new"}

// fuzzTree makes the tree the fuzzed paths walk: folders, and links to
// them (relative, absolute, chained, and one to the tree's parent).
func fuzzTree(f *testing.F) string {
	dir, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range []string{"lake/t", "lake/tt", "out/A"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"l1": "lake", "l2": "l1/t", "l3": filepath.Join(dir, "out"), "up": "..", "a": "out/A", "b": "a", "lake/t/back": "../../l3",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			f.Fatal(err)
		}
	}
	return dir
}

// fuzzPath builds a relative path of fuzzSegments from b.
func fuzzPath(b []byte) string {
	segs := make([]string, 0, len(b))
	for _, c := range b {
		segs = append(segs, fuzzSegments[int(c)%len(fuzzSegments)])
	}
	return strings.Join(segs, "/")
}

// FuzzLocationOverlap builds a source folder and an output of random
// segments (links of a real tree, ".", "..", double and trailing slashes,
// absolute or relative, or gs:// with random buckets) and checks the policy
// check against an oracle: the paths compared as strings, as written
// (cleaned) and resolved by filepath.EvalSymlinks (longest existing prefix);
// either overlapping is an overlap. An accepted overlap, or a refused pair
// the oracle keeps apart, fails.
func FuzzLocationOverlap(f *testing.F) {
	dir := fuzzTree(f)
	f.Add([]byte{0, 1}, []byte{0}, uint8(0))         // lake/t vs lake
	f.Add([]byte{0, 1}, []byte{0, 2}, uint8(0))      // lake/t vs lake/tt
	f.Add([]byte{0, 1}, []byte{5, 1}, uint8(0))      // through l1
	f.Add([]byte{0, 1}, []byte{6}, uint8(2))         // l2, absolute
	f.Add([]byte{3, 4}, []byte{10}, uint8(0))        // out/A vs b
	f.Add([]byte{0, 1, 13, 12}, []byte{0}, uint8(4)) // lake/t//.. vs lake/
	f.Add([]byte{0, 1}, []byte{0, 1}, uint8(8))      // gs
	f.Add([]byte{0, 1}, []byte{0, 13, 1}, uint8(8|16))
	f.Add([]byte{8, 8, 0}, []byte{0, 1, 14}, uint8(1))
	f.Fuzz(func(t *testing.T, srcSegs, outSegs []byte, mode uint8) {
		if len(srcSegs) > 12 || len(outSegs) > 12 {
			return
		}
		src, out := fuzzPath(srcSegs), fuzzPath(outSegs)
		gs := mode&8 != 0
		buckets := []string{"b", "B", "b2", "b"}
		var source, output string
		switch {
		case gs:
			source = "gs://" + buckets[mode>>4&3] + "/" + src
			output = "gs://" + buckets[mode>>6&3] + "/" + out
		default:
			source, output = src, out
			if mode&1 != 0 {
				source = dir + "/" + src
			}
			if mode&2 != 0 {
				output = dir + "/" + out
			}
		}
		if mode&4 != 0 {
			output += "/"
		}
		if output == "" {
			output = "."
		}
		pattern := strings.TrimSuffix(source, "/") + "/*.parquet"
		if source == "" {
			pattern = "*.parquet"
		}
		text := fmt.Sprintf("version: 1\nname: t\ndatasets:\n  d:\n    source: %q\n    columns: {user_id: account_id}\n"+
			"destinations:\n  a:\n    purpose: analytics\n    output: %q\n    datasets: {d: {columns: {user_id: drop}}}\n", pattern, output)
		p, err := Parse(filepath.Join(dir, "p.yaml"), []byte(text), env(nil))
		if err == nil {
			err = p.CheckLocations()
		}
		refused := false
		var list ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				if e.Path == "destinations.a.output" && strings.Contains(e.Msg, "source folder") {
					refused = true
				} else {
					t.Fatalf("another problem: %v\n%s", e, text)
				}
			}
		} else if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		want := oracleOverlap(dir, pattern, output)
		if want && !refused {
			t.Fatalf("overlap accepted: source %q, output %q\n%s", pattern, output, text)
		}
		if !want && refused {
			t.Fatalf("refused without an overlap: source %q, output %q: %v", pattern, output, err)
		}
	})
}

// oracleOverlap decides independently whether the folder of pattern and
// output overlap.
func oracleOverlap(dir, pattern, output string) bool {
	folder := strings.TrimSuffix(pattern, "*.parquet")
	if strings.HasPrefix(pattern, "gs://") {
		as, bs := oracleGS(folder), oracleGS(output)
		for _, a := range as {
			for _, b := range bs {
				// a cleaned path climbing above its bucket ("/") names the
				// empty bucket, which holds no other
				if a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/") {
					return true
				}
			}
		}
		return false
	}
	if strings.HasPrefix(output, "gs://") {
		return false
	}
	abs := func(p string) string {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return filepath.Clean(p)
	}
	// the text alone overlapping is refused too, whatever links say
	a, b := abs(folder), abs(output)
	return nested(a, b) || nested(oracleReal(a), oracleReal(b))
}

// oracleGS returns the "bucket/object" forms of a gs:// location: as
// written without trailing slashes, and cleaned.
func oracleGS(loc string) []string {
	rest := strings.TrimPrefix(loc, "gs://")
	bucket, obj, _ := strings.Cut(rest, "/")
	written := "/" + bucket + "/" + strings.TrimRight(obj, "/")
	return []string{strings.TrimSuffix(written, "/"), path.Clean("/" + rest)}
}

// oracleReal resolves the links of the longest prefix of p that
// filepath.EvalSymlinks resolves, and joins the rest.
func oracleReal(p string) string {
	var rest []string
	for cur := p; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		if cur == filepath.Dir(cur) {
			return p
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
	}
}

// nested reports whether slash paths a and b are one, or one holds the other.
func nested(a, b string) bool {
	if a == b || a == "/" || b == "/" {
		return true
	}
	return strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}
