package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestVerifyFindsRawShortIDs runs the example policy on a copy of the
// sample lake, then rewrites one published file of training, which
// pseudonymizes user_id, with user_id replaced (a) by the source's raw
// 5-digit account ids, (b) by random hex of the wrong length. deid verify,
// with and without --strict, exits 4 naming the file and column: the raw
// ids as short whole values of the source column "device.user_id" and as
// values not of the pseudonym's form, the wrong hex as the latter only;
// the other destinations stay clean, and so does the file once restored.
// Before, values shorter than 6 bytes were never compared and nothing
// checked a pseudonym's form: both gave 0 findings. (Rewriting a published
// file also breaks its report chain; only verify is tested here.)
func TestVerifyFindsRawShortIDs(t *testing.T) {
	dir := linksWorkdir(t)
	policy := filepath.Join("deploy", "examples", "policy.yaml")
	if res := runDeid(t, dir, nil, "run", "-c", policy, "--now", sampleNow, "--progress", "never"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	verify := func(t *testing.T, wantCode int) []string {
		t.Helper()
		var outs []string
		for _, args := range [][]string{nil, {"--strict"}} {
			res := runDeid(t, dir, nil, append([]string{"verify", "-c", policy}, args...)...)
			if res.code != wantCode {
				t.Errorf("verify %v: exit %d, want %d\n%s%s", args, res.code, wantCode, res.stdout, res.stderr)
			}
			for _, d := range []string{"analytics", "partner_ads", "research"} {
				clean := false
				for _, line := range strings.Split(res.stdout, "\n") {
					clean = clean || strings.HasPrefix(line, "destination "+d+": ") && strings.HasSuffix(line, "): 0 findings")
				}
				if !clean || strings.Contains(res.stdout, "FINDING "+d+":") {
					t.Errorf("verify %v: destination %s, untouched, is not clean:\n%s", args, d, res.stdout)
				}
			}
			outs = append(outs, res.stdout)
		}
		return outs
	}
	verify(t, exitOK)

	rel := filepath.Join("device", "dt=2026-10-30", "part-0.parquet")
	published := filepath.Join(dir, "out", "example", "training", rel)
	original, err := os.ReadFile(published)
	if err != nil {
		t.Fatal(err)
	}
	sch, cols := readParquetColumns(t, published)
	uid := sch.FieldIndices("user_id")
	if len(uid) != 1 || cols[uid[0]].DataType().ID() != arrow.STRING {
		t.Fatalf("training's device file has no string user_id column: %v", sch)
	}
	rows := cols[uid[0]].Len()
	if v := cols[uid[0]].(*array.String).Value(0); len(v) != 32 {
		t.Fatalf("training's user_id is not pseudonymized: a value of %d bytes", len(v))
	}
	// the raw ids: the source file's user_id values, in order
	srcSch, src := readParquetColumns(t, filepath.Join(dir, "testdata", "lake", rel))
	rawIDs := src[srcSch.FieldIndices("user_id")[0]].(*array.Int64)
	if rawIDs.Len() < rows {
		t.Fatalf("the source has %d rows, the output %d", rawIDs.Len(), rows)
	}
	distinct := map[int64]bool{}
	where := filepath.ToSlash(filepath.Join("training", rel)) + `, row group 0, column "user_id": `
	cases := []struct {
		name  string
		value func(i int) (string, bool) // false: NULL
		want  []string
		not   string
	}{
		{"raw account ids", func(i int) (string, bool) {
			if rawIDs.IsNull(i) {
				return "", false
			}
			distinct[rawIDs.Value(i)] = true
			return strconv.FormatInt(rawIDs.Value(i), 10), true
		}, []string{
			"values not of the pseudonym's form (32 lowercase hex characters), the first at row 0 of the file (from 0), of 5 bytes",
			`distinct raw values of source identifier column "device.user_id" as whole values shorter than 6 characters`,
		}, ""},
		{"random hex of the wrong length", func(i int) (string, bool) {
			s := sha256.Sum256([]byte(fmt.Sprint(i)))
			return hex.EncodeToString(s[:15]), true
		}, []string{"values not of the pseudonym's form (32 lowercase hex characters), the first at row 0 of the file (from 0), of 30 bytes"},
			"identifier:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := array.NewStringBuilder(memory.DefaultAllocator)
			for i := 0; i < rows; i++ {
				if v, ok := c.value(i); ok {
					b.Append(v)
				} else {
					b.AppendNull()
				}
			}
			planted := append([]arrow.Array(nil), cols...)
			planted[uid[0]] = b.NewArray()
			rec := array.NewRecordBatch(sch, planted, int64(rows))
			os.Remove(published)
			writeParquetFile(t, published, rec, nil)
			rec.Release()
			for i, out := range verify(t, exitCheck) {
				t.Logf("strict %v:\n%s", i == 1, out)
				for _, w := range c.want {
					found := false
					for _, line := range strings.Split(out, "\n") {
						found = found || strings.HasPrefix(line, "FINDING training: ") && strings.Contains(line, where) && strings.Contains(line, w)
					}
					if !found {
						t.Errorf("verify (strict %v) lacks a finding at %q saying %q:\n%s", i == 1, where, w, out)
					}
				}
				if c.not != "" && strings.Contains(out, c.not) {
					t.Errorf("verify (strict %v): an unexpected %s finding:\n%s", i == 1, c.not, out)
				}
				for id := range distinct {
					if strings.Contains(out, strconv.FormatInt(id, 10)) {
						t.Errorf("verify (strict %v) shows raw id %d:\n%s", i == 1, id, out)
					}
				}
			}
		})
	}
	if len(distinct) < 10 {
		t.Errorf("only %d distinct raw ids planted", len(distinct))
	}
	// the file restored, every destination is clean again
	if err := os.WriteFile(published, original, 0o644); err != nil {
		t.Fatal(err)
	}
	verify(t, exitOK)
}

// readParquetColumns reads a Parquet file with arrow-go, each column as one
// array.
func readParquetColumns(t *testing.T, path string) (*arrow.Schema, []arrow.Array) {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var cols []arrow.Array
	for i := 0; i < int(tbl.NumCols()); i++ {
		a, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, a)
	}
	return tbl.Schema(), cols
}
