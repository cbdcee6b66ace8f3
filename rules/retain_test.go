package rules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// retainPolicy is a valid policy with every retain addition; the error
// cases below edit it.
const retainPolicy = `version: 1
name: r
keys:
  k: hex:env:K
datasets:
  orders:
    source: in/*.parquet
    subject: user_id
    time_zone: Asia/Shanghai
    columns:
      order_id: order_id
      user_id: account_id
      created_at: timestamp
      completed_at: timestamp
      phone: phone
      amount: amount
      province: province
    retention:
      time_column: completed_at
      keep: 3y
      on_null: {fallback: created_at, keep: 1y}
      then: anonymize
      anonymize:
        amount: keep
        province: keep
        completed_at: {transform: truncate_time, unit: day}
    legal_minimum: {keep: 3y, basis: PRC E-Commerce Law art. 31}
    holds:
      - list: holds.csv
destinations:
  out:
    purpose: partner_sharing
    output: out
    key: k
    datasets:
      orders:
`

func TestRetainPolicy(t *testing.T) {
	p, err := Parse("/p/policy.yaml", []byte(retainPolicy), env(map[string]string{"K": benchKeyHex}))
	if err != nil {
		t.Fatal(err)
	}
	ds := p.Dataset("orders")
	r := ds.Retention
	if r.Then != ThenAnonymize || r.OnNullRemove || r.OnNullFallback == nil || r.OnNullFallback.TimeColumn != "created_at" || r.OnNullFallback.Keep.String() != "1y" {
		t.Errorf("retention: %+v", r)
	}
	var cols []string
	for _, a := range r.Anonymize {
		cols = append(cols, a.Column)
	}
	if strings.Join(cols, ",") != "completed_at,amount,province" && strings.Join(cols, ",") != "amount,province,completed_at" {
		t.Errorf("anonymize columns %v", cols)
	}
	if ds.LegalMinimum == nil || ds.LegalMinimum.Basis != "PRC E-Commerce Law art. 31" || len(ds.Holds) != 1 || ds.Holds[0].List != "/p/holds.csv" || ds.Holds[0].Column != "user_id" {
		t.Errorf("legal minimum %+v holds %+v", ds.LegalMinimum, ds.Holds)
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	plan, err := CompileRetain(p, now)
	if err != nil {
		t.Fatal(err)
	}
	rd := plan.Datasets[0]
	sh, _ := time.LoadLocation("Asia/Shanghai")
	if want := now.In(sh).AddDate(-3, 0, 0).UTC(); !rd.Cutoff.Equal(want) || !rd.LegalCutoff.Equal(want) {
		t.Errorf("cutoff %s legal %s, want %s", rd.Cutoff, rd.LegalCutoff, want)
	}
	if want := now.In(sh).AddDate(-1, 0, 0).UTC(); !rd.FallbackCutoff.Equal(want) {
		t.Errorf("fallback cutoff %s, want %s", rd.FallbackCutoff, want)
	}
	if !rd.Anonymizes() || len(rd.Anonymize) != 3 || rd.Anonymize[0].Transform == nil {
		t.Errorf("anonymize: %+v", rd.Anonymize)
	}
	// then defaults to delete
	del := strings.Replace(strings.Replace(retainPolicy, "      then: anonymize\n", "", 1), "      anonymize:\n        amount: keep\n        province: keep\n        completed_at: {transform: truncate_time, unit: day}\n", "", 1)
	p, err = Parse("p.yaml", []byte(del), env(map[string]string{"K": benchKeyHex}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Dataset("orders").Retention.Then != ThenDelete {
		t.Errorf("default then %q", p.Dataset("orders").Retention.Then)
	}
	if _, err := CompileRetain(&Policy{}, now); !errors.Is(err, ErrNothingToRetain) {
		t.Errorf("empty policy: %v", err)
	}
}

// TestRetainPolicyErrors: each new policy error names file, line, column and
// path.
func TestRetainPolicyErrors(t *testing.T) {
	cases := []struct {
		name      string
		old, new  string
		line, col int
		path, msg string
	}{
		{"retention below legal minimum", "keep: 3y\n", "keep: 2y\n", 20, 13, "datasets.orders.retention.keep", "2y is shorter than the legal minimum of 3y (PRC E-Commerce Law art. 31, line 27)"},
		{"365d is below one year", "keep: 3y\n", "keep: 1095d\n", 20, 13, "datasets.orders.retention.keep", "1095d is shorter than the legal minimum of 3y"},
		{"legal minimum without retention", "    holds:\n", "    holds:\n", 0, 0, "", ""}, // placeholder replaced below
		{"legal minimum unit", "{keep: 3y, basis", "{keep: 3 years, basis", 27, 27, "datasets.orders.legal_minimum.keep", "unknown unit"},
		{"legal minimum basis missing", "{keep: 3y, basis: PRC E-Commerce Law art. 31}", "{keep: 3y}", 27, 20, "datasets.orders.legal_minimum", `missing required key "basis"`},
		{"then value", "then: anonymize", "then: archive", 22, 13, "datasets.orders.retention.then", `"archive" is not one of delete, anonymize`},
		{"anonymize without columns", "      anonymize:\n        amount: keep\n        province: keep\n        completed_at: {transform: truncate_time, unit: day}\n", "", 22, 13, "datasets.orders.retention.then", "then: anonymize needs anonymize:"},
		{"anonymize with delete", "then: anonymize", "then: delete", 24, 9, "datasets.orders.retention.anonymize", "only used with then: anonymize"},
		{"anonymize keeps an identifier", "amount: keep", "phone: keep", 24, 16, "datasets.orders.retention.anonymize.phone", "anonymized rows keep no identifier"},
		{"anonymize keeps a masked identifier", "amount: keep", "phone: mask", 24, 16, "datasets.orders.retention.anonymize.phone", "mask leaves this direct_identifier column generalized"},
		{"anonymize keyed", "amount: keep", "amount: pseudonymize", 24, 17, "datasets.orders.retention.anonymize.amount", "keyed value can be linked back"},
		{"anonymize unknown column", "amount: keep", "price: keep", 24, 9, "datasets.orders.retention.anonymize.price", `column "price" is not among`},
		{"anonymize allow", "amount: keep", "amount: {transform: keep, allow: why}", 24, 17, "datasets.orders.retention.anonymize.amount", "allow: has no floor"},
		{"anonymize bad parameter", "unit: day}", "unit: week}", 26, 56, "datasets.orders.retention.anonymize.completed_at.unit", `"week" is not one of`},
		{"fallback column", "fallback: created_at", "fallback: opened_at", 21, 27, "datasets.orders.retention.on_null.fallback", `fallback time column "opened_at" is not among`},
		{"fallback keep", "created_at, keep: 1y}", "created_at, keep: soon}", 21, 45, "datasets.orders.retention.on_null.keep", "soon"},
		{"fallback missing keep", "{fallback: created_at, keep: 1y}", "{fallback: created_at}", 21, 16, "datasets.orders.retention.on_null", `missing required key "keep"`},
		{"hold list format", "list: holds.csv", "list: holds.txt", 29, 15, "datasets.orders.holds[0].list", "legal hold lists are .parquet or .csv files"},
		{"holds without subject", "    subject: user_id\n", "", 28, 7, "datasets.orders.holds", "legal holds name subjects: add subject: <column> to the dataset"},
		{"legal minimum in years without zone", "    time_zone: Asia/Shanghai\n", "", 26, 27, "datasets.orders.legal_minimum.keep", "3y uses months or years, whose length depends on the calendar: declare the dataset's time_zone"},
		{"holds not a list", "    holds:\n      - list: holds.csv\n", "    holds: holds.csv\n", 28, 12, "datasets.orders.holds", "must be a list of legal hold lists"},
	}
	// a legal minimum needs a retention rule
	noRetention := strings.Replace(retainPolicy, retainPolicy[strings.Index(retainPolicy, "    retention:"):strings.Index(retainPolicy, "    legal_minimum")], "", 1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(retainPolicy, c.old, c.new, 1)
			line, col, path, msg := c.line, c.col, c.path, c.msg
			if c.name == "legal minimum without retention" {
				src, line, col, path, msg = noRetention, 18, 20, "datasets.orders.legal_minimum", `add retention: to dataset "orders"`
			} else if strings.Count(retainPolicy, c.old) != 1 {
				t.Fatalf("edit %q does not occur exactly once", c.old)
			}
			_, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("want a policy error, got %v", err)
			}
			var list ErrorList
			errors.As(err, &list)
			for _, e := range list {
				if e.File == "policy.yaml" && e.Line == line && e.Column == col && e.Path == path && strings.Contains(e.Msg, msg) {
					return
				}
			}
			t.Errorf("want policy.yaml:%d:%d: %s: ...%s...\ngot:\n%v", line, col, path, msg, err)
		})
	}
}

func TestShorterSomewhere(t *testing.T) {
	d := func(s string) Duration {
		v, err := ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	cases := []struct {
		a, b    string
		shorter bool
	}{
		{"3y", "3y", false}, {"36mo", "3y", false}, {"1096d", "3y", false}, {"1095d", "3y", true},
		{"365d", "1y", true}, {"366d", "1y", false}, {"4y", "3y", false}, {"2y", "3y", true}, {"30d", "1mo", true}, {"31d", "1mo", false},
	}
	for _, c := range cases {
		if got := ShorterSomewhere(d(c.a), d(c.b), sh); got != c.shorter {
			t.Errorf("%s shorter than %s: %v, want %v", c.a, c.b, got, c.shorter)
		}
	}
}

// TestRetainSchema: the JSON Schema accepts the retain additions and rejects
// their broken shapes, like the parser.
func TestRetainSchema(t *testing.T) {
	s := compiledSchema(t)
	if err := s.Validate(instance(t, []byte(retainPolicy))); err != nil {
		t.Fatalf("retain policy: %v", err)
	}
	for _, c := range []struct{ name, old, new string }{
		{"then value", "then: anonymize", "then: archive"},
		{"fallback missing keep", "{fallback: created_at, keep: 1y}", "{fallback: created_at}"},
		{"legal minimum basis missing", "{keep: 3y, basis: PRC E-Commerce Law art. 31}", "{keep: 3y}"},
		{"legal minimum unit", "{keep: 3y, basis", "{keep: 3 years, basis"},
		{"hold list format", "list: holds.csv", "list: holds.txt"},
		{"anonymize unknown transform", "amount: keep", "amount: hash"},
	} {
		src := strings.Replace(retainPolicy, c.old, c.new, 1)
		if _, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex})); err == nil {
			t.Errorf("%s: deid's parser accepts it", c.name)
		}
		if err := s.Validate(instance(t, []byte(src))); err == nil {
			t.Errorf("%s: the schema accepts it", c.name)
		}
	}
}
