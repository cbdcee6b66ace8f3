package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deidproject/deid/pipeline/internal/testmem"
)

// TestEmptySourceIsAnError: a source glob that matches no file stops
// validate, plan, run and the freezing of a sharded run's inputs with a
// data error naming the dataset and its
// pattern, before anything is written, unless the dataset says
// allow_empty: true.
func TestEmptySourceIsAnError(t *testing.T) {
	commands := map[string]func(t *testing.T, dir, policy string) error{
		"validate": func(t *testing.T, dir, policy string) error {
			_, err := Validate(context.Background(), compile(t, dir, policy), Options{Mem: testmem.New(t)})
			return err
		},
		"plan": func(t *testing.T, dir, policy string) error {
			_, err := Plan(context.Background(), compile(t, dir, policy), Options{Mem: testmem.New(t), ScratchDir: t.TempDir()})
			return err
		},
		"run": func(t *testing.T, dir, policy string) error {
			_, err := runPlan(t, compile(t, dir, policy), 1)
			return err
		},
		"freeze the inputs of a sharded run": func(t *testing.T, dir, policy string) error {
			_, err := ListInputs(context.Background(), compile(t, dir, policy), Options{Mem: testmem.New(t)}, "run-1")
			return err
		},
	}
	sources := []string{"in/*.parquet", "in/**/*.parquet", "in/dt=*/part-*.parquet", "nowhere/*.parquet"}
	for name, command := range commands {
		for _, source := range sources {
			t.Run(name+" "+source, func(t *testing.T) {
				dir := t.TempDir()
				os.MkdirAll(filepath.Join(dir, "in", "dt=2026-10-01"), 0o755)
				os.WriteFile(filepath.Join(dir, "in", "notes.txt"), []byte("not a table"), 0o644)
				list := filepath.Join(dir, "erasure.csv")
				os.WriteFile(list, []byte("user_id\n1\n"), 0o644)
				policy := strings.NewReplacer("in/*.parquet", source, "ERASURE", list).Replace(badInputPolicy)
				err := command(t, dir, policy)
				if !errors.Is(err, ErrData) || !errors.Is(err, ErrNoInput) {
					t.Fatalf("want a data error for the empty source, got %v", err)
				}
				for _, want := range []string{source, `dataset "logs"`, "matches no file", "allow_empty: true"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
					t.Errorf("the output folder was written: %v", tree(t, filepath.Join(dir, "out")))
				}
			})
		}
		t.Run(name+" allow_empty", func(t *testing.T) {
			dir := t.TempDir()
			list := filepath.Join(dir, "erasure.csv")
			os.WriteFile(list, []byte("user_id\n1\n"), 0o644)
			policy := strings.NewReplacer("    subject: user_id\n", "    subject: user_id\n    allow_empty: true\n", "ERASURE", list).Replace(badInputPolicy)
			if err := command(t, dir, policy); err != nil {
				t.Errorf("allow_empty: true, got %v", err)
			}
		})
	}
}

// TestVerifyDuplicateColumns: a published file with two columns of one
// name (exactly, or once NFC-normalized and case-folded) is a schema
// finding naming them: verify would otherwise check one in place of the
// other.
func TestVerifyDuplicateColumns(t *testing.T) {
	cases := []struct {
		name, dup, want string
	}{
		{"exact", "query", `columns "query", "query" are one name`},
		{"case", "QUERY", `columns "query", "QUERY" are one name`},
		{"title case", "Query", `columns "query", "Query" are one name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, out, _, _ := verifyJob(t)
			names, cols := readColumns(t, out)
			var planted []column
			for _, n := range names {
				typ := arrow.DataType(arrow.BinaryTypes.String)
				if n == "at" {
					typ = utcMillis
				}
				planted = append(planted, column{n, typ, cols[n]})
			}
			planted = append(planted, column{c.dup, arrow.BinaryTypes.String, cols["query"]})
			os.Remove(out)
			writeTable(t, out, 100, planted...)
			res, _ := verifyFindings(t, plan, false)
			found := false
			for _, f := range res.Destinations[0].Findings {
				found = found || f.Check == "schema" && f.File == out && strings.Contains(f.Msg, c.want)
			}
			if !found {
				t.Errorf("no schema finding %q: %v", c.want, res.Destinations[0].Findings)
			}
		})
	}
}
