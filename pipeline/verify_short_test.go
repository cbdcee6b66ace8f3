package pipeline

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/deidproject/deid/pipeline/verify"
	"github.com/deidproject/deid/rules"
)

// shortPolicy's source holds short identifiers: 5-digit account ids, 3-
// character device codes and 4-digit phone extensions (kept raw on
// purpose), besides amounts and event ids that share the account ids'
// values.
const shortPolicy = `version: 1
name: short
keys:
  k: hex:env:K
datasets:
  acct:
    source: SRC/acct/*.parquet
    columns:
      user_id: account_id
      code: device_id
      ext: phone
      amount: amount
      event_id: event_id
destinations:
  analytics:
    purpose: analytics
    output: OUT
    key: k
    datasets:
      acct:
        columns:
          user_id: pseudonymize
          code: pseudonymize
          ext: {transform: keep, allow: "internal extensions, not personal"}
          amount: keep
          event_id: keep
`

const shortUsers = 40

func shortID(i int) string   { return strconv.Itoa(10001 + i%shortUsers) }
func shortCode(i int) string { return fmt.Sprintf("c%02d", i%shortUsers) }
func shortExt(i int) string  { return strconv.Itoa(8001 + i%shortUsers) }

// shortJob runs shortPolicy on a source of 3·shortUsers rows and returns
// the plan and its one output file.
func shortJob(t *testing.T) (*rules.Plan, string) {
	t.Helper()
	dir := t.TempDir()
	var users, codes, exts, amounts, events []any
	for i := 0; i < 3*shortUsers; i++ {
		users, codes, exts = append(users, int64(10001+i%shortUsers)), append(codes, shortCode(i)), append(exts, shortExt(i))
		amounts, events = append(amounts, int64(10001+i)), append(events, strconv.Itoa(10001+i))
	}
	writeTable(t, filepath.Join(dir, "acct", "part-0.parquet"), 50,
		column{"user_id", arrow.PrimitiveTypes.Int64, users}, column{"code", arrow.BinaryTypes.String, codes},
		column{"ext", arrow.BinaryTypes.String, exts}, column{"amount", arrow.PrimitiveTypes.Int64, amounts},
		column{"event_id", arrow.BinaryTypes.String, events})
	text := strings.NewReplacer("SRC", dir, "OUT", filepath.Join(dir, "out")).Replace(shortPolicy)
	plan := compile(t, dir, text)
	if _, err := runPlan(t, plan, 1); err != nil {
		t.Fatal(err)
	}
	return plan, filepath.Join(dir, "out", "acct", "part-0.parquet")
}

// writeNoRowGroups writes a Parquet file of cols' schema and no row group.
func writeNoRowGroups(t *testing.T, path string, cols []column) {
	t.Helper()
	var fields []arrow.Field
	for _, c := range cols {
		fields = append(fields, arrow.Field{Name: c.name, Type: c.typ, Nullable: true})
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(arrow.NewSchema(fields, nil), f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyShortIdentifiersAndForm plants, in the output of shortPolicy,
// short raw ids, values not of the pseudonym's form, NULLs and chance
// matches, and checks each finding (check, column, row group) and its
// count, and that nothing else is found: a short raw value is an
// identifier finding only in the output column of its own identifier
// column and once verify.MinShortDistinct distinct ones are there; a value not of
// the pseudonym's form is a pseudonym finding whatever it is.
func TestVerifyShortIdentifiersAndForm(t *testing.T) {
	const rows, rg = 60, 30 // two row groups
	pseudo := func(v string) string { return pseudonym(t, testKeyHex, v) }
	each := func(f func(i int) any) []any {
		out := make([]any, rows)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	cleanUsers := each(func(i int) any { return pseudo(shortID(i)) })
	cleanCodes := each(func(i int) any { return pseudo(shortCode(i)) })
	nulls := each(func(int) any { return nil })
	str, i64 := arrow.DataType(arrow.BinaryTypes.String), arrow.DataType(arrow.PrimitiveTypes.Int64)
	type want map[findingKey]int64
	cases := []struct {
		name      string
		rows      int // rows of the planted file; rows unless set
		user      []any
		userType  arrow.DataType
		code, ext []any
		want      want // without --strict
		strict    want // with --strict, when it differs
		msg       string
	}{
		{name: "clean: pseudonyms, and amounts and event ids equal to the account ids", want: want{}},
		{name: "raw ids, threshold distinct", user: each(func(i int) any { return shortID(i % verify.MinShortDistinct) }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg,
				{"identifier", "user_id", 0}: verify.MinShortDistinct, {"identifier", "user_id", 1}: verify.MinShortDistinct},
			msg: fmt.Sprintf("%d distinct raw values of source identifier column \"acct.user_id\" as whole values shorter than 6 characters (%d in the destination's column; %d or more are a finding)", verify.MinShortDistinct, verify.MinShortDistinct, verify.MinShortDistinct)},
		{name: "raw ids, threshold-1 distinct", user: each(func(i int) any { return shortID(i % (verify.MinShortDistinct - 1)) }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg}},
		{name: "threshold distinct over two row groups", user: each(func(i int) any { return shortID(i%(verify.MinShortDistinct/2) + i/rg*(verify.MinShortDistinct/2)) }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg,
				{"identifier", "user_id", 0}: verify.MinShortDistinct / 2, {"identifier", "user_id", 1}: verify.MinShortDistinct - verify.MinShortDistinct/2}},
		{name: "raw ids as integers", userType: i64, user: each(func(i int) any { return int64(10001 + i) }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg,
				{"identifier", "user_id", 0}: rg, {"identifier", "user_id", 1}: shortUsers - rg},
			msg: "30 values of type int64 where the policy writes pseudonyms (32 lowercase hex characters), the first at row 0 of the file (from 0)"},
		{name: "one raw id", user: each(func(i int) any {
			if i == 37 {
				return shortID(4)
			}
			return pseudo(shortID(i))
		}), want: want{{"pseudonym", "user_id", 1}: 1},
			msg: "1 values not of the pseudonym's form (32 lowercase hex characters), the first at row 37 of the file (from 0), of 5 bytes"},
		{name: "short string ids", code: each(func(i int) any { return shortCode(i) }),
			want: want{{"pseudonym", "code", 0}: rg, {"pseudonym", "code", 1}: rg, {"identifier", "code", 0}: rg, {"identifier", "code", 1}: rg}},
		{name: "short ids of another column are no match", code: each(func(i int) any { return shortID(i) }),
			want: want{{"pseudonym", "code", 0}: rg, {"pseudonym", "code", 1}: rg}},
		{name: "all NULL", user: nulls, code: nulls, want: want{}},
		{name: "pseudonyms and NULLs", user: each(func(i int) any {
			if i%3 == 0 {
				return nil
			}
			return pseudo(shortID(i))
		}), want: want{}},
		{name: "right length, not hex", user: each(func(i int) any { return "g" + pseudo(shortID(i))[1:] }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg}},
		{name: "upper case", user: each(func(i int) any { return strings.ToUpper(pseudo(shortID(i))) }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg}},
		{name: "random hex of the wrong length", user: each(func(i int) any { return hex.EncodeToString([]byte(fmt.Sprintf("%015d", i))) }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg},
			msg:  "30 values not of the pseudonym's form (32 lowercase hex characters), the first at row 0 of the file (from 0), of 30 bytes"},
		{name: "invalid UTF-8", user: each(func(i int) any {
			if i%2 == 0 {
				return "\xff" + pseudo(shortID(i))[1:]
			}
			return "\xff\xfe"
		}), want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg}},
		{name: "empty strings", user: each(func(int) any { return "" }),
			want: want{{"pseudonym", "user_id", 0}: rg, {"pseudonym", "user_id", 1}: rg}},
		{name: "empty file", rows: -1, want: want{}},
		{name: "raw extensions kept on purpose", ext: each(func(i int) any { return shortExt(i) }),
			want:   want{},
			strict: want{{"identifier", "ext", 0}: rg, {"identifier", "ext", 1}: rg}},
	}
	plan, out := shortJob(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := rows
			if c.rows < 0 {
				n = 0
			}
			user, userType, code, ext := c.user, c.userType, c.code, c.ext
			if user == nil {
				user = cleanUsers
			}
			if userType == nil {
				userType = str
			}
			if code == nil {
				code = cleanCodes
			}
			if ext == nil {
				ext = nulls
			}
			amounts := each(func(i int) any { return int64(10001 + i%shortUsers) })
			events := each(func(i int) any { return shortID(i) })
			os.Remove(out)
			cols := []column{{"user_id", userType, user[:n]}, {"code", str, code[:n]}, {"ext", str, ext[:n]},
				{"amount", i64, amounts[:n]}, {"event_id", str, events[:n]}}
			if n == 0 {
				writeNoRowGroups(t, out, cols)
			} else {
				writeTable(t, out, rg, cols...)
			}
			for _, strict := range []bool{false, true} {
				w := c.want
				if strict && c.strict != nil {
					w = c.strict
				}
				res, err := verify.Outputs(context.Background(), plan, verify.Options{BatchSize: 16, Strict: strict})
				if err != nil {
					t.Fatal(err)
				}
				d := res.Destinations[0]
				got := map[findingKey]int64{}
				msgs := map[string]bool{}
				for _, f := range d.Findings {
					got[findingKey{f.Check, f.Column, f.RowGroup}] = f.Values
					msgs[f.Msg] = true
					// the finding without its file's path: the test's temporary
					// folder has random digits, which may spell an id
					shown := strings.ReplaceAll(f.String(), f.File, "FILE")
					for i := 0; i < shortUsers; i++ {
						for _, raw := range []string{shortID(i), shortCode(i), shortExt(i)} {
							if strings.Contains(shown, raw) {
								t.Errorf("a finding shows raw value %q: %s", raw, f)
							}
						}
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(map[findingKey]int64(w)) {
					t.Errorf("strict=%v: findings %v, want %v\n%v", strict, got, w, d.Findings)
				}
				if c.msg != "" && !msgs[c.msg] {
					t.Errorf("strict=%v: no finding says %q: %v", strict, c.msg, d.Findings)
				}
				if d.Rows != int64(n) || res.OK() != (len(w) == 0) {
					t.Errorf("strict=%v: %d rows checked, OK %v", strict, d.Rows, res.OK())
				}
			}
		})
	}
}
