package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"
)

// goodColumns is a valid table for the bad-input policy.
func goodColumns(n int) []column {
	ids, users, ats, cities := make([]any, n), make([]any, n), make([]any, n), make([]any, n)
	for i := 0; i < n; i++ {
		ids[i] = fmt.Sprintf("ev-%d", i)
		users[i] = int64(1000 + i%7)
		ats[i] = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
		cities[i] = "杭州市"
	}
	return []column{
		{"id", arrowString, ids}, {"user_id", arrow.PrimitiveTypes.Int64, users},
		{"at", utcMillis, ats}, {"city", arrowString, cities},
	}
}

const badInputPolicy = `version: 1
name: bad
keys:
  k: hex:env:K
datasets:
  logs:
    source: in/*.parquet
    subject: user_id
    columns: {id: event_id, user_id: account_id, at: timestamp, city: city}
    retention: {time_column: at, keep: 3650d, on_null: keep}
    erasure:
      - list: ERASURE
destinations:
  out:
    purpose: analytics
    output: out
    key: k
    datasets:
      logs:
        columns: {id: keep, user_id: pseudonymize, at: keep, city: keep}
`

// TestBadInputs: every kind of bad input stops the run with a data error
// that names the file (and the line, for CSV), and nothing is published:
// no output file, no manifest, no report, no staging folder.
func TestBadInputs(t *testing.T) {
	good := func(t *testing.T, dir string) {
		writeTable(t, filepath.Join(dir, "in", "a.parquet"), 50, goodColumns(120)...)
	}
	goodList := func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "erasure.parquet")
		writeTable(t, p, 100, column{"user_id", arrow.PrimitiveTypes.Int64, []any{int64(1003), nil}})
		return p
	}
	goodBytes := func(t *testing.T) []byte {
		p := filepath.Join(t.TempDir(), "g.parquet")
		writeTable(t, p, 50, goodColumns(300)...)
		b, _ := os.ReadFile(p)
		return b
	}
	r := rand.New(rand.NewPCG(3, 3))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	cases := []struct {
		name string
		// setup writes the bad input and returns the erasure list's path
		setup func(t *testing.T, dir string) string
		// want are substrings of the error
		want []string
	}{
		{"empty file", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "in", "b.parquet"), nil, 0o644)
			return goodList(t, dir)
		}, []string{"b.parquet", "the file is empty"}},
		{"truncated file", func(t *testing.T, dir string) string {
			b := goodBytes(t)
			os.WriteFile(filepath.Join(dir, "in", "b.parquet"), b[:len(b)/2], 0o644)
			return goodList(t, dir)
		}, []string{"b.parquet", "corrupt"}},
		{"random bytes", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "in", "b.parquet"), random, 0o644)
			return goodList(t, dir)
		}, []string{"b.parquet", "corrupt"}},
		{"corrupt page", func(t *testing.T, dir string) string {
			// written by parquet-go, which stores page checksums (arrow-go
			// writes none, so damage to its uncompressed pages can go unseen)
			b := checksummedBytes(t)
			b[len(b)/3] ^= 0xff
			os.WriteFile(filepath.Join(dir, "in", "b.parquet"), b, 0o644)
			return goodList(t, dir)
		}, []string{"b.parquet", "checksum mismatch"}},
		{"unclassified column", func(t *testing.T, dir string) string {
			cols := append(goodColumns(10), column{"phone", arrowString, make([]any, 10)})
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", "phone", "not classified", "unclassified: drop"}},
		{"missing column", func(t *testing.T, dir string) string {
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, goodColumns(10)[:3]...)
			return goodList(t, dir)
		}, []string{"b.parquet", `column "city"`, "missing from the file"}},
		{"changed type", func(t *testing.T, dir string) string {
			cols := goodColumns(10)
			cols[1] = column{"user_id", arrowString, []any{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}}
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", `column "user_id"`, "type changed", "schema drift"}},
		{"time column not a timestamp", func(t *testing.T, dir string) string {
			os.Remove(filepath.Join(dir, "in", "a.parquet"))
			cols := goodColumns(10)
			cols[2] = column{"at", arrow.PrimitiveTypes.Int64, []any{int64(1), nil, nil, nil, nil, nil, nil, nil, nil, nil}}
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", `column "at"`, "not a timestamp"}},
		{"erasure list of the wrong type", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "erasure.parquet")
			writeTable(t, p, 100, column{"user_id", arrowString, []any{"1003"}})
			return p
		}, []string{"erasure.parquet", `column "user_id"`, "ids are utf8", `the subject column "user_id" of `, "a.parquet", "integer ids"}},
		{"erasure CSV with a bad line", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "erasure.csv")
			os.WriteFile(p, []byte("user_id,reason\n1003,cancelled\n\n1004,cancelled\nabc,typo\n"), 0o644)
			return p
		}, []string{"erasure.csv:5", `column "user_id"`, `"abc" in the erasure list is not an integer`, "a.parquet"}},
		{"two columns of one name", func(t *testing.T, dir string) string {
			cols := append(goodColumns(10), goodColumns(10)[3])
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", `columns "city", "city" are one name`}},
		{"two columns one name but for case", func(t *testing.T, dir string) string {
			cols := append(goodColumns(10), column{"City", arrowString, make([]any, 10)})
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", `columns "city", "City" are one name`}},
		{"three columns of one name and two of another", func(t *testing.T, dir string) string {
			cols := append(goodColumns(10), column{"CITY", arrowString, make([]any, 10)}, column{"ID", arrowString, make([]any, 10)},
				column{"City", arrowString, make([]any, 10)})
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", `columns "id", "ID"; "city", "CITY", "City" are one name`}},
		{"two columns one name but for normalization", func(t *testing.T, dir string) string {
			cols := append(goodColumns(10), column{"cit\u00e9", arrowString, make([]any, 10)}, column{"cite\u0301", arrowString, make([]any, 10)})
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", `columns "cité", "cite\u0301" are one name`}},
		{"a zero-width space makes another name, shown", func(t *testing.T, dir string) string {
			cols := append(goodColumns(10), column{"city\u200b", arrowString, make([]any, 10)})
			writeTable(t, filepath.Join(dir, "in", "b.parquet"), 50, cols...)
			return goodList(t, dir)
		}, []string{"b.parquet", `"city\u200b" are not classified`}},
		{"erasure list with two id columns", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "erasure.parquet")
			writeTable(t, p, 100, column{"user_id", arrow.PrimitiveTypes.Int64, []any{int64(1)}}, column{"USER_ID", arrow.PrimitiveTypes.Int64, []any{int64(2)}})
			return p
		}, []string{"erasure.parquet", `columns "user_id", "USER_ID" are one name`}},
		{"erasure CSV with two id columns", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "erasure.csv")
			os.WriteFile(p, []byte("user_id,reason, User_ID\n1003,cancelled,1004\n"), 0o644)
			return p
		}, []string{"erasure.csv", `columns "user_id", "User_ID" are one name`}},
		{"erasure list without the column", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "erasure.csv")
			os.WriteFile(p, []byte("uid\n1003\n"), 0o644)
			return p
		}, []string{"erasure.csv", `column "user_id"`, "no such column"}},
		{"missing erasure list", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "gone.parquet")
		}, []string{"gone.parquet", "does not exist"}},
		{"corrupt erasure list", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "erasure.parquet")
			os.WriteFile(p, random, 0o644)
			return p
		}, []string{"erasure.parquet", "corrupt"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			good(t, dir)
			list := c.setup(t, dir)
			plan := compile(t, dir, strings.Replace(badInputPolicy, "ERASURE", list, 1))
			_, err := runPlan(t, plan, 2)
			if err == nil {
				t.Fatal("the run succeeded")
			}
			if !errors.Is(err, ErrData) {
				t.Errorf("not a data error (exit code 3): %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if files := tree(t, filepath.Join(dir, "out")); len(files) != 0 {
				t.Errorf("a failed run published %v", keys(files))
			}
		})
	}
	t.Run("missing source file", func(t *testing.T) {
		dir := t.TempDir()
		plan := compile(t, dir, strings.NewReplacer("in/*.parquet", "in/none.parquet", "ERASURE", goodList(t, dir)).Replace(badInputPolicy))
		_, err := runPlan(t, plan, 1)
		if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "none.parquet") || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("error %v", err)
		}
	})
}

// checksummedBytes is a valid file for the bad-input policy written by
// parquet-go, with page CRCs.
func checksummedBytes(t *testing.T) []byte {
	type row struct {
		ID     string    `parquet:"id"`
		UserID int64     `parquet:"user_id"`
		At     time.Time `parquet:"at,timestamp(millisecond)"`
		City   string    `parquet:"city"`
	}
	rows := make([]row, 3000)
	for i := range rows {
		rows[i] = row{fmt.Sprintf("ev-%d", i), int64(1000 + i%7), time.Date(2026, 10, 1, 0, 0, i, 0, time.UTC), "杭州市"}
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows, parquet.PageBufferSize(2048)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBadCorpusInPipeline: each malformed file of parquet-testing's bad_data
// fails a run with an error naming it and publishes nothing, never a panic.
// Each file gets a policy that classifies all its columns, so the data is
// really decoded. ARROW-GH-43605 is valid (see parquetio's TestBadCorpus).
func TestBadCorpusInPipeline(t *testing.T) {
	files, _ := filepath.Glob("../../shared/corpus/parquet-testing-bad/*.parquet")
	if len(files) == 0 {
		t.Skip("corpus not found beside the checkout")
	}
	for _, src := range files {
		name := filepath.Base(src)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b, _ := os.ReadFile(src)
			os.MkdirAll(filepath.Join(dir, "in"), 0o755)
			os.WriteFile(filepath.Join(dir, "in", name), b, 0o644)
			cols, treat := "{x: non_personal}", "{x: keep}"
			if pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b))); err == nil {
				var c, tr []string
				for _, f := range pf.Schema().Fields() {
					c = append(c, f.Name()+": non_personal")
					tr = append(tr, f.Name()+": keep")
				}
				cols, treat = "{"+strings.Join(c, ", ")+"}", "{"+strings.Join(tr, ", ")+"}"
			}
			text := `version: 1
name: corpus
datasets:
  d:
    source: in/*.parquet
    columns: ` + cols + `
destinations:
  out:
    purpose: research
    output: out
    datasets:
      d:
        columns: ` + treat + "\n"
			_, err := runPlan(t, compile(t, dir, text), 2)
			if name == "ARROW-GH-43605.parquet" {
				if err != nil {
					t.Fatalf("valid file refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrData) || !strings.Contains(err.Error(), name) {
				t.Fatalf("error %v: want a data error naming %s", err, name)
			}
			if files := tree(t, filepath.Join(dir, "out")); len(files) != 0 {
				t.Errorf("published %v", keys(files))
			}
		})
	}
}
