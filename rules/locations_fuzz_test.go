package rules

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
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

// fuzzOther is the second location FuzzLocationOverlap puts beside the
// source folder, the output and the policy file: kind%6 picks it.
var fuzzOther = []string{"none", "root", "list", "key", "audit key", "output"}

// fuzzLoc is one location of a fuzzed policy: the marker its problem
// carries ("(datasets.d.source)") and its text as written, resolved from
// the policy's folder.
type fuzzLoc struct{ marker, loc string }

// FuzzLocationOverlap builds a policy of random locations and checks the
// policy check against an oracle. The locations are a source folder, an
// output (destination a), the policy file, and by kind a root above the
// source, an erasure list, a key file, an audit key file or a second output
// (destination b), made of random segments (links of a real tree, ".",
// "..", double and trailing slashes, absolute or relative, or gs:// with
// random buckets; key files are local). The oracle compares the paths as
// strings, cleaned, and resolved by filepath.EvalSymlinks (longest existing
// prefix): an output nested with a location as written is refused by
// Parse, else one nested once resolved by CheckLocations. The problems must
// be exactly the oracle's, each on its output.
func FuzzLocationOverlap(f *testing.F) {
	dir := fuzzTree(f)
	f.Add([]byte{0, 1}, []byte{0}, uint8(0), []byte{}, uint8(0))         // lake/t vs lake
	f.Add([]byte{0, 1}, []byte{0, 2}, uint8(0), []byte{}, uint8(0))      // lake/t vs lake/tt
	f.Add([]byte{0, 1}, []byte{5, 1}, uint8(0), []byte{}, uint8(0))      // through l1
	f.Add([]byte{0, 1}, []byte{6}, uint8(2), []byte{}, uint8(0))         // l2, absolute
	f.Add([]byte{3, 4}, []byte{10}, uint8(0), []byte{}, uint8(0))        // out/A vs b
	f.Add([]byte{0, 1, 13, 12}, []byte{0}, uint8(4), []byte{}, uint8(0)) // lake/t//.. vs lake/
	f.Add([]byte{0, 1}, []byte{0, 1}, uint8(8), []byte{}, uint8(0))      // gs
	f.Add([]byte{0, 1}, []byte{0, 13, 1}, uint8(8|16), []byte{}, uint8(0))
	f.Add([]byte{8, 8, 0}, []byte{0, 1, 14}, uint8(1), []byte{}, uint8(0))
	f.Add([]byte{0, 1}, []byte{3}, uint8(0), []byte{1}, uint8(1))        // root lake vs out
	f.Add([]byte{0, 1}, []byte{5, 2}, uint8(0), []byte{1}, uint8(1))     // root lake vs l1/tt
	f.Add([]byte{0, 1}, []byte{3}, uint8(0), []byte{3, 14}, uint8(2))    // list out/new
	f.Add([]byte{0, 1}, []byte{3}, uint8(8), []byte{3, 14}, uint8(2|8))  // gs list
	f.Add([]byte{0, 1}, []byte{3}, uint8(0), []byte{3, 4, 14}, uint8(3)) // key out/A/new
	f.Add([]byte{0, 1}, []byte{9}, uint8(0), []byte{3, 4, 14}, uint8(3)) // key through a
	f.Add([]byte{0, 1}, []byte{3}, uint8(2), []byte{7, 14}, uint8(4))    // audit key l3/new
	f.Add([]byte{0, 1}, []byte{3}, uint8(8), []byte{3}, uint8(4))        // gs output, local key
	f.Add([]byte{0, 1}, []byte{3, 4}, uint8(0), []byte{10}, uint8(5))    // outputs out/A and b
	f.Add([]byte{0, 1}, []byte{3}, uint8(8), []byte{3, 13}, uint8(5|16)) // gs outputs
	f.Add([]byte{0, 1}, []byte{12}, uint8(0), []byte{}, uint8(0))        // .. holds the policy
	f.Add([]byte{0, 1}, []byte{8, 8}, uint8(8), []byte{}, uint8(0))      // up/up, gs source
	f.Fuzz(func(t *testing.T, srcSegs, outSegs []byte, mode uint8, otherSegs []byte, kind uint8) {
		if len(srcSegs) > 12 || len(outSegs) > 12 || len(otherSegs) > 12 {
			return
		}
		pol := fuzzPolicy(dir, srcSegs, outSegs, mode, otherSegs, kind)
		p, err := Parse(filepath.Join(dir, "p.yaml"), []byte(pol.text), env(nil))
		wantLex, wantRes := pol.oracle(dir)
		want, how := wantLex, "Parse"
		if err == nil {
			err, want, how = p.CheckLocations(), wantRes, "CheckLocations"
		}
		got := pol.refused(t, err)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s refused %q, the oracle %q\n%v\n%s", how, got, want, err, pol.text)
		}
	})
}

// fuzzPol is a fuzzed policy: its text, its outputs and what they must
// keep apart from.
type fuzzPol struct {
	text    string
	outputs []fuzzLoc // destinations a and b
	reads   []fuzzLoc
}

// fuzzPolicy builds the policy of one fuzz input.
func fuzzPolicy(dir string, srcSegs, outSegs []byte, mode uint8, otherSegs []byte, kind uint8) fuzzPol {
	buckets := []string{"b", "B", "b2", "b"}
	gs := mode&8 != 0
	place := func(segs []byte, abs bool, bucket uint8, trailing bool) string {
		p := fuzzPath(segs)
		switch {
		case gs:
			p = "gs://" + buckets[bucket&3] + "/" + p
		case abs:
			p = dir + "/" + p
		}
		if trailing {
			p += "/"
		}
		if p == "" {
			p = "."
		}
		return p
	}
	source := place(srcSegs, mode&1 != 0, mode>>4, false)
	output := place(outSegs, mode&2 != 0, mode>>6, mode&4 != 0)
	pattern := strings.TrimSuffix(source, "/") + "/*.parquet"
	if fuzzPath(srcSegs) == "" && !gs && mode&1 == 0 {
		pattern = "*.parquet"
	}
	pol := fuzzPol{
		outputs: []fuzzLoc{{"(destinations.a.output)", output}},
		reads:   []fuzzLoc{{"(datasets.d.source)", strings.TrimSuffix(pattern, "*.parquet")}, {"the policy file", filepath.Join(dir, "p.yaml")}},
	}
	var extra, dsExtra, second string
	other := place(otherSegs, kind&8 != 0, kind>>4, false)
	switch fuzzOther[int(kind)%len(fuzzOther)] {
	case "root":
		// a prefix of the source's segments, when the rest climbs no ".."
		segs := strings.Split(strings.TrimSuffix(pattern, "/*.parquet"), "/")
		root := strings.Join(segs[:min(len(otherSegs), len(segs))], "/")
		if root != "" && underRoot(resolvePath(dir, root), resolvePath(dir, pattern)) {
			dsExtra = fmt.Sprintf("    root: %q\n", root)
			pol.reads = append(pol.reads, fuzzLoc{"(datasets.d.root)", root})
		}
	case "list":
		other += ".csv" // lists are .csv or .parquet files
		dsExtra = fmt.Sprintf("    erasure: [{list: %q}]\n", other)
		pol.reads = append(pol.reads, fuzzLoc{"(datasets.d.erasure[0].list)", other})
	case "key", "audit key":
		key := place(otherSegs, kind&8 != 0, 0, false)
		if gs {
			key = fuzzPath(otherSegs) // key files are local
			if key == "" {
				key = "."
			}
		}
		if int(kind)%len(fuzzOther) == 3 {
			extra = fmt.Sprintf("keys:\n  k: %q\n", "hex:file:"+key)
			pol.reads = append(pol.reads, fuzzLoc{"(keys.k)", key})
		} else {
			extra = fmt.Sprintf("audit_key: %q\n", "hex:file:"+key)
			pol.reads = append(pol.reads, fuzzLoc{"(audit_key)", key})
		}
	case "output":
		second = fmt.Sprintf("  b:\n    purpose: analytics\n    output: %q\n    datasets: {d: {columns: {user_id: drop}}}\n", other)
		pol.outputs = append(pol.outputs, fuzzLoc{"(destinations.b.output)", other})
	}
	pol.text = fmt.Sprintf("version: 1\nname: t\n%sdatasets:\n  d:\n    source: %q\n    subject: user_id\n%s    columns: {user_id: account_id}\n"+
		"destinations:\n  a:\n    purpose: analytics\n    output: %q\n    datasets: {d: {columns: {user_id: drop}}}\n%s",
		extra, pattern, dsExtra, output, second)
	return pol
}

// oracle returns the problems the policy must have, as "a (datasets.d.source)"
// (destination, then the marker of what its output overlaps): compared as
// written, and once links are resolved.
func (pol fuzzPol) oracle(dir string) (lexical, resolved []string) {
	for i, o := range pol.outputs {
		dst := string(rune('a' + i))
		others := append(pol.reads[:len(pol.reads):len(pol.reads)], pol.outputs[:i]...)
		for _, r := range others {
			lex, res := oracleOverlap(dir, r.loc, o.loc)
			if lex {
				lexical = append(lexical, dst+" "+r.marker)
			}
			if res {
				resolved = append(resolved, dst+" "+r.marker)
			}
		}
	}
	sort.Strings(lexical)
	sort.Strings(resolved)
	return lexical, resolved
}

// refused returns the problems err holds, as oracle writes them; any other
// problem fails the test.
func (pol fuzzPol) refused(t *testing.T, err error) []string {
	t.Helper()
	var got []string
	var list ErrorList
	if err != nil && !errors.As(err, &list) {
		t.Fatalf("%v\n%s", err, pol.text)
	}
	markers := append(pol.reads[:len(pol.reads):len(pol.reads)], pol.outputs...)
	for _, e := range list {
		dst, ok := strings.CutPrefix(e.Path, "destinations.")
		dst, ok2 := strings.CutSuffix(dst, ".output")
		found := ""
		for _, m := range markers {
			if strings.Contains(e.Msg, m.marker) && !strings.HasPrefix(e.Msg, "cannot tell") {
				found = m.marker
			}
		}
		if !ok || !ok2 || found == "" {
			t.Fatalf("another problem: %v\n%s", e, pol.text)
		}
		got = append(got, dst+" "+found)
	}
	sort.Strings(got)
	return got
}

// oracleOverlap decides independently whether location other (a folder
// with a trailing slash or a file) and output overlap: as written
// (cleaned), and once links are resolved.
func oracleOverlap(dir, other, output string) (lexical, resolved bool) {
	if strings.HasPrefix(other, "gs://") {
		if !strings.HasPrefix(output, "gs://") {
			return false, false
		}
		as, bs := oracleGS(other), oracleGS(output)
		for _, a := range as {
			for _, b := range bs {
				// a cleaned path climbing above its bucket ("/") names the
				// empty bucket, which holds no other
				if a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/") {
					return true, true
				}
			}
		}
		return false, false
	}
	if strings.HasPrefix(output, "gs://") {
		return false, false
	}
	abs := func(p string) string {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return filepath.Clean(p)
	}
	a, b := abs(other), abs(output)
	return nested(a, b), nested(oracleReal(a), oracleReal(b))
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
