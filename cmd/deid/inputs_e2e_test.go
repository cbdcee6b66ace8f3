package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
)

// End-to-end tests of what deid accepts as input (issue 14): column names
// unique under NFC and case folding and quoted in messages, a source glob
// matching nothing refused unless allow_empty: true, and id type mismatches
// between a list and the data naming both sides.

const inputsKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

var inputsEnv = []string{"INPUTS_K=" + inputsKeyHex, "INPUTS_AUDIT=" + strings.Repeat("ab", 32)}

// inputCol is one column of a test file: its name and kind ("int",
// "string" or "time").
type inputCol struct{ name, kind string }

// writeInputFile writes a small Parquet file with arrow-go: rows rows, each
// column filled by its kind (user ids 1 to 5, phones, times in October 2026).
func writeInputFile(t *testing.T, path string, rows int, cols ...inputCol) {
	t.Helper()
	mem := memory.NewGoAllocator()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		switch c.kind {
		case "int":
			fields[i] = arrow.Field{Name: c.name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}
		case "string":
			fields[i] = arrow.Field{Name: c.name, Type: arrow.BinaryTypes.String, Nullable: true}
		case "time":
			fields[i] = arrow.Field{Name: c.name, Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true}
		default:
			t.Fatalf("kind %q", c.kind)
		}
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i, c := range cols {
		for r := 0; r < rows; r++ {
			switch fb := b.Field(i).(type) {
			case *array.Int64Builder:
				fb.Append(int64(1 + r%5))
			case *array.StringBuilder:
				if c.name == "user_id" {
					fb.Append(fmt.Sprintf("u%d", 1+r%5))
				} else {
					fb.Append(fmt.Sprintf("1380013%04d", r*7+i))
				}
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(time.Date(2026, 10, 1+r%20, 8, 0, 0, 0, time.UTC).UnixMilli()))
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	writeParquetFile(t, path, rec, parquet.NewWriterProperties(parquet.WithAllocator(mem)))
}

// inputsPolicy is a policy of one dataset t (source SOURCE, columns
// COLUMNS, EXTRA dataset keys) sent to one destination writing out/.
const inputsPolicy = `version: 1
name: inputs
keys:
  k: hex:env:INPUTS_K
audit_key: hex:env:INPUTS_AUDIT
datasets:
  t:
    source: SOURCE
    subject: user_id
    columns:
COLUMNS
    retention: {time_column: at, keep: 3650d, on_null: keep}
EXTRA
destinations:
  out:
    purpose: analytics
    output: out
    key: k
    datasets:
      t: {}
`

// writeInputsPolicy writes policy.yaml in dir classifying columns (name:
// semantic type, in order) and returns its path.
func writeInputsPolicy(t *testing.T, dir, source string, columns [][2]string, extra string) string {
	t.Helper()
	var cols strings.Builder
	for _, c := range columns {
		fmt.Fprintf(&cols, "      %q: %s\n", c[0], c[1])
	}
	text := strings.NewReplacer("SOURCE", source, "COLUMNS\n", cols.String(), "EXTRA\n", extra).Replace(inputsPolicy)
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const inputsNow = "2026-11-01T00:00:00Z"

// inputsCommands are the commands that read the sources' schemas.
var inputsCommands = [][]string{
	{"validate", "-c", "policy.yaml"},
	{"plan", "-c", "policy.yaml", "--now", inputsNow},
	{"run", "-c", "policy.yaml", "--now", inputsNow},
	{"retain", "-c", "policy.yaml", "--now", inputsNow, "--dry-run"},
	{"retain", "-c", "policy.yaml", "--now", inputsNow},
}

// TestInputsDuplicateColumnNames: a data file with two columns of one name
// (exactly, or once NFC-normalized and case-folded) is a data error (exit
// 3) naming the file and the colliding names, quoted, in every command that
// reads the sources' schemas; nothing is written. Before, run published
// the first column's values under both names.
func TestInputsDuplicateColumnNames(t *testing.T) {
	cases := []struct {
		name     string
		file     []inputCol
		classify [][2]string
		want     string
	}{
		{"two phone columns", []inputCol{{"user_id", "int"}, {"at", "time"}, {"phone", "string"}, {"phone", "string"}},
			[][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"phone", "phone"}}, `columns "phone", "phone" are one name`},
		{"names differing by case", []inputCol{{"user_id", "int"}, {"at", "time"}, {"phone", "string"}, {"Phone", "string"}},
			[][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"phone", "phone"}}, `columns "phone", "Phone" are one name`},
		{"subject column in upper case", []inputCol{{"USER_ID", "int"}, {"at", "time"}, {"user_id", "int"}},
			[][2]string{{"user_id", "account_id"}, {"at", "timestamp"}}, `columns "USER_ID", "user_id" are one name`},
		{"NFC and NFD", []inputCol{{"user_id", "int"}, {"at", "time"}, {"t\u00e9l\u00e9phone", "string"}, {"te\u0301le\u0301phone", "string"}},
			[][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"t\u00e9l\u00e9phone", "phone"}}, `columns "téléphone", "te\u0301le\u0301phone" are one name`},
		{"three ways", []inputCol{{"user_id", "int"}, {"at", "time"}, {"phone", "string"}, {"PHONE", "string"}, {"Phone", "string"}},
			[][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"phone", "phone"}}, `columns "phone", "PHONE", "Phone" are one name`},
	}
	for _, c := range cases {
		for _, args := range inputsCommands {
			t.Run(c.name+"/"+commandName(args), func(t *testing.T) {
				dir := t.TempDir()
				src := filepath.Join(dir, "lake", "t", "part-0.parquet")
				writeInputFile(t, src, 20, c.file...)
				writeInputsPolicy(t, dir, "lake/t/*.parquet", c.classify, "")
				before, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				res := runDeid(t, dir, inputsEnv, args...)
				if res.code != 3 {
					t.Fatalf("exit %d, want 3 (data error)\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
				}
				for _, w := range []string{"part-0.parquet", c.want} {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("stderr does not say %s:\n%s", w, res.stderr)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
					t.Errorf("the output folder was written (%v)", err)
				}
				if after, _ := os.ReadFile(src); string(after) != string(before) {
					t.Error("the source file changed")
				}
			})
		}
	}
}

// commandName names a command of inputsCommands in a subtest's name.
func commandName(args []string) string {
	if args[len(args)-1] == "--dry-run" {
		return args[0] + " --dry-run"
	}
	return args[0]
}

// TestInputsNamesQuoted: names that differ by an invisible character or a
// full-width letter are other names, not collisions, and messages quote
// them so the difference shows.
func TestInputsNamesQuoted(t *testing.T) {
	cases := []struct {
		name, column, want string
	}{
		{"zero-width space", "phone\u200b", `"phone\u200b"`},
		{"trailing space", "phone ", `"phone "`},
		{"full-width letter", "\uff50hone", `"\uff50hone"`},
		{"decomposed accent", "te\u0301l", `"te\u0301l"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeInputFile(t, filepath.Join(dir, "lake", "t", "part-0.parquet"), 5,
				inputCol{"user_id", "int"}, inputCol{"at", "time"}, inputCol{"phone", "string"}, inputCol{c.column, "string"})
			writeInputsPolicy(t, dir, "lake/t/*.parquet", [][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"phone", "phone"}}, "")
			res := runDeid(t, dir, inputsEnv, "run", "-c", "policy.yaml", "--now", inputsNow)
			if res.code != 3 || !strings.Contains(res.stderr, "column(s) "+c.want+" are not classified") {
				t.Errorf("exit %d, want 3 and the unclassified column quoted as %s:\n%s", res.code, c.want, res.stderr)
			}
			if strings.Contains(res.stderr, "one name") {
				t.Errorf("%q is another name than phone, not a collision:\n%s", c.column, res.stderr)
			}
		})
	}
}

// TestInputsEmptySource: a source glob matching no file is a data error
// (exit 3) in validate, plan and run, naming the dataset and its pattern,
// and nothing is written: no output, no manifest, no new report. With
// allow_empty: true the same commands succeed.
func TestInputsEmptySource(t *testing.T) {
	cols := [][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"phone", "phone"}}
	sources := []string{"lake/t/*.parquet", "lake/t/dt=*/*.parquet", "lake/**/*.parquet", "lake/missing/*.parquet"}
	for _, source := range sources {
		for _, args := range inputsCommands[:3] {
			t.Run(source+"/"+args[0], func(t *testing.T) {
				dir := t.TempDir()
				os.MkdirAll(filepath.Join(dir, "lake", "t", "dt=2026-10-01"), 0o755)
				os.WriteFile(filepath.Join(dir, "lake", "t", "README.txt"), []byte("not a table\n"), 0o644)
				writeInputsPolicy(t, dir, source, cols, "")
				res := runDeid(t, dir, inputsEnv, args...)
				if res.code != 3 {
					t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
				}
				for _, w := range []string{`dataset "t"`, source, "matches no file", "allow_empty: true"} {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("stderr does not say %s:\n%s", w, res.stderr)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
					t.Errorf("the output folder was written (%v)", err)
				}
			})
		}
	}
	t.Run("after a run, no new report", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "lake", "t", "part-0.parquet")
		writeInputFile(t, src, 10, inputCol{"user_id", "int"}, inputCol{"at", "time"}, inputCol{"phone", "string"})
		writeInputsPolicy(t, dir, "lake/t/*.parquet", cols, "")
		if res := runDeid(t, dir, inputsEnv, "run", "-c", "policy.yaml", "--now", inputsNow); res.code != 0 {
			t.Fatalf("first run: exit %d\n%s", res.code, res.stderr)
		}
		before := hashes(t, filepath.Join(dir, "out"))
		os.Remove(src)
		res := runDeid(t, dir, inputsEnv, "run", "-c", "policy.yaml", "--now", "2026-11-02T00:00:00Z")
		if res.code != 3 || !strings.Contains(res.stderr, "matches no file") {
			t.Fatalf("exit %d, want 3:\n%s", res.code, res.stderr)
		}
		after := hashes(t, filepath.Join(dir, "out"))
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the failed run changed the output folder:\nbefore %v\nafter  %v", before, after)
		}
	})
	for _, args := range inputsCommands[:3] {
		t.Run("allow_empty/"+args[0], func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "lake", "t"), 0o755)
			writeInputsPolicy(t, dir, "lake/t/*.parquet", cols, "    allow_empty: true\n")
			if res := runDeid(t, dir, inputsEnv, args...); res.code != 0 {
				t.Errorf("exit %d, want 0 with allow_empty: true\n%s", res.code, res.stderr)
			}
		})
	}
}

// TestInputsListTypeMismatch: an erasure, consent or legal hold list whose
// ids are not of the subject column's type is a data error that names the
// list, its column, and the data file whose subject column it was compared
// with, in plan, run and retain.
func TestInputsListTypeMismatch(t *testing.T) {
	cases := []struct {
		name     string
		subject  string // the data's subject column kind
		list     string // the list's file name
		write    func(t *testing.T, path string)
		commands [][]string
		want     string
	}{
		{"CSV of words against integer ids", "int", "erasure.csv", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("user_id\n3\nabc\n"), 0o644)
		}, [][]string{inputsCommands[1], inputsCommands[2], inputsCommands[4]}, `"abc" in the erasure list is not an integer id`},
		{"Parquet strings against integer ids", "int", "erasure.parquet", func(t *testing.T, p string) {
			writeInputFile(t, p, 2, inputCol{"user_id", "string"})
		}, [][]string{inputsCommands[1], inputsCommands[2], inputsCommands[4]}, "the erasure list's ids are utf8"},
		{"Parquet integers against string ids", "string", "erasure.parquet", func(t *testing.T, p string) {
			writeInputFile(t, p, 2, inputCol{"user_id", "int"})
		}, [][]string{inputsCommands[1], inputsCommands[2], inputsCommands[4]}, "the erasure list's ids are int64"},
		{"hold list of words against integer ids", "int", "hold.csv", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("user_id\nabc\n"), 0o644)
		}, [][]string{inputsCommands[3], inputsCommands[4]}, `"abc" in the legal hold list is not an integer id`},
		{"consent list of words against integer ids", "int", "consent.csv", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("user_id,purpose,withdrawn_at\nabc,analytics,2026-10-01T00:00:00Z\n"), 0o644)
		}, [][]string{inputsCommands[1], inputsCommands[2]}, `"abc" in the consent list is not an integer id`},
		{"consent Parquet strings against integer ids", "int", "consent.parquet", func(t *testing.T, p string) {
			writeInputFile(t, p, 2, inputCol{"user_id", "string"}, inputCol{"purpose", "string"}, inputCol{"withdrawn_at", "time"})
		}, [][]string{inputsCommands[1], inputsCommands[2]}, "the consent list's ids are utf8"},
	}
	for _, c := range cases {
		for _, args := range c.commands {
			t.Run(c.name+"/"+commandName(args), func(t *testing.T) {
				dir := t.TempDir()
				writeInputFile(t, filepath.Join(dir, "lake", "t", "part-0.parquet"), 10,
					inputCol{"user_id", c.subject}, inputCol{"at", "time"}, inputCol{"phone", "string"})
				list := filepath.Join(dir, "lists", c.list)
				os.MkdirAll(filepath.Dir(list), 0o755)
				c.write(t, list)
				key := "erasure"
				switch {
				case strings.HasPrefix(c.list, "hold"):
					key = "holds"
				case strings.HasPrefix(c.list, "consent"):
					key = "consent"
				}
				writeInputsPolicy(t, dir, "lake/t/*.parquet", [][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {"phone", "phone"}},
					"    "+key+":\n      - list: lists/"+c.list+"\n")
				res := runDeid(t, dir, inputsEnv, args...)
				if res.code != 3 {
					t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
				}
				for _, w := range []string{c.list, `column "user_id"`, c.want, `the subject column "user_id" of `, filepath.Join("lake", "t", "part-0.parquet")} {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("stderr does not say %s:\n%s", w, res.stderr)
					}
				}
			})
		}
	}
}

// TestInputsVerifyDuplicateColumnNames: verify reads the sources (their
// identifiers, their subject column's type): a source that has two
// columns of one name by then is a data error naming them, not a check
// run on the wrong column.
func TestInputsVerifyDuplicateColumnNames(t *testing.T) {
	cases := []struct {
		name, dup, want string
	}{
		{"exact", "phone", `columns "phone", "phone" are one name`},
		{"case", "PHONE", `columns "phone", "PHONE" are one name`},
		{"NFD", "phon\u0065\u0301", `columns "phoné", "phone\u0301" are one name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "lake", "t", "part-0.parquet")
			first := "phone"
			if c.name == "NFD" {
				first = "phon\u00e9"
			}
			writeInputFile(t, src, 10, inputCol{"user_id", "int"}, inputCol{"at", "time"}, inputCol{first, "string"})
			writeInputsPolicy(t, dir, "lake/t/*.parquet", [][2]string{{"user_id", "account_id"}, {"at", "timestamp"}, {first, "phone"}},
				"    erasure:\n      - list: lists/erase.csv\n")
			os.MkdirAll(filepath.Join(dir, "lists"), 0o755)
			os.WriteFile(filepath.Join(dir, "lists", "erase.csv"), []byte("user_id\n99\n"), 0o644)
			if res := runDeid(t, dir, inputsEnv, "run", "-c", "policy.yaml", "--now", inputsNow); res.code != 0 {
				t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
			}
			writeInputFile(t, src, 10, inputCol{"user_id", "int"}, inputCol{"at", "time"}, inputCol{first, "string"}, inputCol{c.dup, "string"})
			res := runDeid(t, dir, inputsEnv, "verify", "-c", "policy.yaml", "--now", inputsNow)
			if res.code != 3 || !strings.Contains(res.stderr, "part-0.parquet") || !strings.Contains(res.stderr, c.want) {
				t.Errorf("verify: exit %d, want 3 and %s:\n%s%s", res.code, c.want, res.stdout, res.stderr)
			}
		})
	}
}
