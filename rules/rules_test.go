package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const benchKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// env returns a LookupEnv over a fixed map.
func env(vars map[string]string) LookupEnv {
	return func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
}

var benchEnv = env(map[string]string{
	"DEID_BENCH_INPUT":   "/data/browsing.parquet",
	"DEID_BENCH_ERASURE": "/data/erasure.parquet",
	"DEID_BENCH_OUTPUT":  "/out",
	"DEID_BENCH_KEY":     benchKeyHex,
})

func TestReferencePolicyCompiles(t *testing.T) {
	p, err := Load("../deploy/examples/reference-policy.yaml", benchEnv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	plan, err := Compile(p, CompileOptions{Now: now, Lookup: benchEnv})
	if err != nil {
		t.Fatal(err)
	}
	ds := plan.Datasets[0]
	if ds.Source != "/data/browsing.parquet" || ds.Subject != "user_id" || len(ds.Columns) != 12 {
		t.Errorf("dataset: %+v", ds.DatasetDecl)
	}
	// WORKLOAD.md: the cut-off for the benchmark is 2025-11-01T00:00:00Z
	if want := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC); !ds.Cutoff.Equal(want) {
		t.Errorf("cutoff %s, want %s", ds.Cutoff, want)
	}
	if !ds.Retention.OnNullRemove || ds.Erasure[0].Column != "user_id" || ds.Erasure[0].Format() != "parquet" {
		t.Errorf("row rules: %+v %+v", ds.Retention, ds.Erasure[0])
	}
	dst := plan.Destinations[0]
	if dst.Key.Fingerprint() != Fingerprint(mustHex(t, benchKeyHex)) || len(plan.Keys) != 1 {
		t.Errorf("key: %v", dst.Key)
	}
	b := dst.Binding("browsing")
	if b.Columns["ip"].Params.String("variant") != "bench" || b.Columns["lat"].Params.Int("digits") != 2 {
		t.Errorf("params: %v %v", b.Columns["ip"].Params, b.Columns["lat"].Params)
	}
	if b.Columns["user_id"].Transform == nil || b.Columns["event_id"].Spec.Name != "keep" {
		t.Errorf("binding: %+v", b.Columns["user_id"])
	}

	// the retention period comes from the environment too
	long := env(map[string]string{"DEID_BENCH_INPUT": "x", "DEID_BENCH_ERASURE": "e.csv", "DEID_BENCH_OUTPUT": "o",
		"DEID_BENCH_KEY": benchKeyHex, "DEID_BENCH_RETENTION_DAYS": "1461"})
	p, err = Load("../deploy/examples/reference-policy.yaml", long)
	if err != nil {
		t.Fatal(err)
	}
	plan, err = Compile(p, CompileOptions{Now: now, Lookup: long})
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(-1461 * 86400 * time.Second); !plan.Datasets[0].Cutoff.Equal(want) {
		t.Errorf("cutoff %s, want %s", plan.Datasets[0].Cutoff, want)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	for i := 0; i+1 < len(s); i += 2 {
		var x byte
		fmt.Sscanf(s[i:i+2], "%02x", &x)
		b = append(b, x)
	}
	return b
}

// minimal is a valid policy that the error cases below modify.
const minimal = `version: 1
name: t
keys:
  k: hex:env:K
datasets:
  logs:
    source: in/*.parquet
    subject: user_id
    columns:
      user_id: account_id
      at: timestamp
    retention:
      time_column: at
      keep: 30d
      on_null: keep
destinations:
  out:
    purpose: analytics
    output: out
    key: k
    datasets:
      logs:
        columns:
          user_id: pseudonymize
          at: {transform: truncate_time, unit: day}
`

func TestMinimalPolicy(t *testing.T) {
	if _, err := Parse("p.yaml", []byte(minimal), env(nil)); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyErrors: every error the language produces names the file, line,
// column and dotted path, and says what is wrong.
func TestPolicyErrors(t *testing.T) {
	cases := []struct {
		name      string
		old, new  string // edit of minimal (old must occur once)
		line, col int
		path, msg string
	}{
		{"syntax", "name: t\n", "name: [t\n", 1, 1, "", "invalid YAML"},
		{"unknown top-level key", "name: t\n", "name: t\nnmae: u\n", 3, 1, "nmae", `unknown key "nmae" (known keys: audit_key, datasets, description, destinations, jobs, keys, name, version)`},
		{"version", "version: 1", "version: 2", 1, 10, "version", "unsupported policy version 2"},
		{"version not a number", "version: 1", "version: one", 1, 10, "version", `"one" is not an integer`},
		{"missing name", "name: t\n", "", 1, 1, "", `missing required key "name"`},
		{"bad name", "name: t\n", "name: a b\n", 2, 7, "name", "names use letters"},
		{"key without encoding", "k: hex:env:K", "k: env:K", 4, 6, "keys.k", "ENCODING:SOURCE:NAME"},
		{"key guessed encoding", "k: hex:env:K", "k: raw:env:K", 4, 6, "keys.k", "must be hex or base64"},
		{"key embedded", "k: hex:env:K", "k: hex:inline:abcd", 4, 6, "keys.k", "must be env or file"},
		{"key mapping", "k: hex:env:K", "k: {from: K, encoding: hex}", 4, 13, "keys.k.from", "must be env:VARIABLE or file:PATH"},
		{"key mapping encoding", "k: hex:env:K", "k: {from: env:K, encoding: b64}", 4, 30, "keys.k.encoding", `"b64" is not one of hex, base64`},
		{"audit key embedded", "keys:\n", "audit_key: hex:inline:abcd\nkeys:\n", 3, 12, "audit_key", "must be env or file"},
		{"audit key without encoding", "keys:\n", "audit_key: env:A\nkeys:\n", 3, 12, "audit_key", "ENCODING:SOURCE:NAME"},
		{"audit key mapping", "keys:\n", "audit_key: {from: A, encoding: hex}\nkeys:\n", 3, 19, "audit_key.from", "must be env:VARIABLE or file:PATH"},
		{"audit key shares a pseudonym key", "keys:\n", "audit_key: base64:env:K\nkeys:\n", 3, 12, "audit_key", `the audit key reads the same variable as key "k"`},
		{"audit key list", "keys:\n", "audit_key: [a]\nkeys:\n", 3, 12, "audit_key", "got a list"},
		{"quasi-identifier unknown", "unit: day}\n", "unit: day}\n        quasi_identifiers: [at, nope]\n", 26, 33, "destinations.out.datasets.logs.quasi_identifiers[1]", `column "nope" is not among the columns of dataset "logs"`},
		{"quasi-identifier twice", "unit: day}\n", "unit: day}\n        quasi_identifiers: [at, at]\n", 26, 33, "destinations.out.datasets.logs.quasi_identifiers[1]", `column "at" is listed twice`},
		{"quasi-identifier dropped", "user_id: pseudonymize\n          at: {transform: truncate_time, unit: day}\n", "user_id: drop\n          at: {transform: truncate_time, unit: day}\n        quasi_identifiers: [user_id]\n", 26, 29, "destinations.out.datasets.logs.quasi_identifiers[0]", `column "user_id" is dropped in this destination (drop)`},
		{"quasi-identifiers empty", "unit: day}\n", "unit: day}\n        quasi_identifiers: []\n", 26, 28, "destinations.out.datasets.logs.quasi_identifiers", "list at least one column"},
		{"quasi-identifiers not a list", "unit: day}\n", "unit: day}\n        quasi_identifiers: at\n", 26, 28, "destinations.out.datasets.logs.quasi_identifiers", "must be a list"},
		{"min_k range", "unit: day}\n", "unit: day}\n        quasi_identifiers: [at]\n        min_k: 1\n", 27, 16, "destinations.out.datasets.logs.min_k", "min_k 1: the smallest class size accepted is 2 to 1000"},
		{"min_k not a number", "unit: day}\n", "unit: day}\n        quasi_identifiers: [at]\n        min_k: five\n", 27, 16, "destinations.out.datasets.logs.min_k", `"five" is not an integer`},
		{"min_k without quasi-identifiers", "unit: day}\n", "unit: day}\n        min_k: 5\n", 26, 16, "destinations.out.datasets.logs.min_k", "min_k needs quasi_identifiers"},
		{"unknown dataset key", "    subject: user_id\n", "    subject: user_id\n    sorce: x\n", 9, 5, "datasets.logs.sorce", `unknown key "sorce"`},
		{"missing source", "    source: in/*.parquet\n", "", 7, 5, "datasets.logs", `missing required key "source"`},
		{"empty source", "source: in/*.parquet", "source: ''", 7, 13, "datasets.logs.source", "must not be empty"},
		{"unknown semantic type", "at: timestamp", "at: timestamps", 11, 11, "datasets.logs.columns.at", `unknown semantic type "timestamps"`},
		{"subject not a column", "subject: user_id", "subject: uid", 8, 14, "datasets.logs.subject", `subject column "uid" is not among`},
		{"bad zone", "    subject: user_id\n", "    subject: user_id\n    time_zone: Asia/Shangai\n", 9, 16, "datasets.logs.time_zone", `unknown time zone "Asia/Shangai"`},
		{"unclassified", "    subject: user_id\n", "    subject: user_id\n    unclassified: keep\n", 9, 19, "datasets.logs.unclassified", `"keep" is not one of fail, drop`},
		{"retention unit", "keep: 30d", "keep: 30 days", 14, 13, "datasets.logs.retention.keep", "unknown unit"},
		{"retention calendar without zone", "keep: 30d", "keep: 3y", 14, 13, "datasets.logs.retention.keep", "declare the dataset's time_zone"},
		{"retention zero", "keep: 30d", "keep: 0d", 14, 13, "datasets.logs.retention.keep", "is zero"},
		{"on_null missing", "      on_null: keep\n", "", 13, 7, "datasets.logs.retention", `missing required key "on_null"`},
		{"on_null value", "on_null: keep", "on_null: drop", 15, 16, "datasets.logs.retention.on_null", `"drop" is not one of keep, remove`},
		{"time column", "time_column: at", "time_column: ts", 13, 20, "datasets.logs.retention.time_column", `time column "ts" is not among`},
		{"erasure list format", "      on_null: keep\n", "      on_null: keep\n    erasure:\n      - list: gone.txt\n", 17, 15, "datasets.logs.erasure[0].list", ".parquet or .csv"},
		{"erasure not a list", "      on_null: keep\n", "      on_null: keep\n    erasure: gone.csv\n", 16, 14, "datasets.logs.erasure", "must be a list"},
		{"consent not a list", "      on_null: keep\n", "      on_null: keep\n    consent: c.csv\n", 16, 14, "datasets.logs.consent", "must be a list of consent withdrawal lists"},
		{"consent list format", "      on_null: keep\n", "      on_null: keep\n    consent:\n      - list: c.txt\n", 17, 15, "datasets.logs.consent[0].list", "consent lists are .parquet or .csv files"},
		{"consent history", "      on_null: keep\n", "      on_null: keep\n    consent:\n      - {list: c.csv, history: since}\n", 17, 32, "datasets.logs.consent[0].history", `"since" is not one of all, from_withdrawal`},
		{"consent time column", "      on_null: keep\n", "      on_null: keep\n    consent:\n      - {list: c.csv, time_column: ts}\n", 17, 36, "datasets.logs.consent[0].time_column", `time column "ts" is not among`},
		{"consent without subject", "    subject: user_id\n    columns:\n      user_id: account_id\n      at: timestamp\n    retention:\n      time_column: at\n      keep: 30d\n      on_null: keep\n", "    columns:\n      user_id: account_id\n      at: timestamp\n    consent: [{list: c.csv}]\n", 11, 14, "datasets.logs.consent", "consent needs the dataset's subject column"},
		{"children without age source", "      on_null: keep\n", "      on_null: keep\n    children: {below: 14}\n", 16, 15, "datasets.logs.children", `missing required key "age_from"`},
		{"children two age sources", "      on_null: keep\n", "      on_null: keep\n    children: {age_from: {birth_date: at, resident_id: user_id}}\n", 16, 26, "datasets.logs.children.age_from", "name exactly one of birth_date: <column> or resident_id: <column>"},
		{"children age column", "      on_null: keep\n", "      on_null: keep\n    children: {age_from: {birth_date: born}}\n", 16, 26, "datasets.logs.children.age_from", `column "born" is not among the dataset's columns`},
		{"children threshold", "      on_null: keep\n", "      on_null: keep\n    children: {below: 0, age_from: {birth_date: at}}\n", 16, 23, "datasets.logs.children.below", "the age threshold is in full years, 1 to 30"},
		{"children inclusive", "      on_null: keep\n", "      on_null: keep\n    children: {inclusive: yes please, age_from: {birth_date: at}}\n", 16, 27, "datasets.logs.children.inclusive", "is not true or false"},
		{"children destination", "      on_null: keep\n", "      on_null: keep\n    children: {destinations: [ads], age_from: {birth_date: at}}\n", 16, 31, "datasets.logs.children.destinations[0]", `no destination named "ads" (declared: out)`},
		{"children from unknown dataset", "      on_null: keep\n", "      on_null: keep\n    children: {age_from: {dataset: orders, birth_date: at}}\n", 16, 15, "datasets.logs.children.age_from.dataset", `no dataset named "orders" in datasets`},
		{"children time column", "      on_null: keep\n", "      on_null: keep\n    children: {time_column: ts, age_from: {birth_date: at}}\n", 16, 29, "datasets.logs.children.time_column", `time column "ts" is not among`},
		{"purpose", "purpose: analytics", "purpose: ads", 18, 14, "destinations.out.purpose", `"ads" is not one of training, analytics, partner_sharing, research`},
		{"destination key unknown", "    key: k\n", "    key: q\n", 20, 10, "destinations.out.key", `no key named "q" in keys: (declared: k)`},
		{"keyed transform without key", "    key: k\n", "", 23, 20, "destinations.out.datasets.logs.columns.user_id", "pseudonymize needs a key"},
		{"unknown dataset in destination", "      logs:\n        columns:", "      log:\n        columns:", 22, 7, "destinations.out.datasets.log", `no dataset named "log"`},
		{"unknown column", "          at: {", "          ts: keep\n          at: {", 25, 11, "destinations.out.datasets.logs.columns.ts", `column "ts" is not among the columns of dataset "logs"`},
		{"below floor", "user_id: pseudonymize", "user_id: keep", 24, 20, "destinations.out.datasets.logs.columns.user_id", `keep leaves this account_id column raw, below what purpose analytics requires for direct_identifier columns (pseudonym): use a stronger treatment (the default is pseudonymize) or state why with allow: "<reason>"`},
		{"partner gets a pseudonym", "purpose: analytics", "purpose: partner_sharing", 24, 20, "destinations.out.datasets.logs.columns.user_id", `pseudonymize leaves this account_id column pseudonym, below what purpose partner_sharing requires for direct_identifier columns (removed): use a stronger treatment (the default is drop)`},
		{"allow above floor", "user_id: pseudonymize", "user_id: {transform: pseudonymize, allow: because}", 24, 53, "destinations.out.datasets.logs.columns.user_id.allow", "pseudonymize meets the floor of purpose analytics for direct_identifier columns: remove allow"},
		{"allow empty", "user_id: pseudonymize", "user_id: {transform: keep, allow: ''}", 24, 45, "destinations.out.datasets.logs.columns.user_id.allow", "must not be empty"},
		{"default needs a key", "    key: k\n    datasets:\n      logs:\n        columns:\n          user_id: pseudonymize\n", "    datasets:\n      logs:\n        columns:\n", 21, 7, "destinations.out.datasets.logs.columns.user_id", "the analytics default for account_id columns is pseudonymize, which needs a key"},
		{"bare null treatment", "user_id: pseudonymize", "user_id: null", 24, 20, "destinations.out.datasets.logs.columns.user_id", `a bare null (or nothing) is YAML's empty value; for the null transform write it in quotes, "null"`},
		{"unknown transform", "user_id: pseudonymize", "user_id: hash", 24, 20, "destinations.out.datasets.logs.columns.user_id", `unknown transform "hash"`},
		{"unknown parameter", "unit: day}", "units: day}", 25, 42, "destinations.out.datasets.logs.columns.at.units", `truncate_time has no parameter "units" (parameters: unit, zone)`},
		{"bad parameter value", "unit: day}", "unit: week}", 25, 48, "destinations.out.datasets.logs.columns.at.unit", `"week" is not one of second, minute, hour, day`},
		{"transform key missing", "{transform: truncate_time, unit: day}", "{unit: day}", 25, 15, "destinations.out.datasets.logs.columns.at", `missing required key "transform"`},
		{"duplicate key", "      at: timestamp\n", "      at: timestamp\n      at: date\n", 12, 7, "datasets.logs.columns.at", "duplicate key \"at\" (first at line 11)"},
		{"list where a value goes", "output: out", "output: [a, b]", 19, 13, "destinations.out.output", "must be a single value, got a list"},
		{"merge key", "  out:\n    purpose", "  out:\n    <<: {}\n    purpose", 18, 5, "destinations.out", "merge keys"},
		{"unset variable", "source: in/*.parquet", "source: ${LAKE}/x.parquet", 7, 13, "datasets.logs.source", "environment variable LAKE is not set"},
		{"bad variable", "source: in/*.parquet", "source: ${1X}", 7, 13, "datasets.logs.source", "invalid variable reference ${1X}"},
		{"unterminated variable", "source: in/*.parquet", "source: ${LAKE", 7, 13, "datasets.logs.source", "unterminated ${"},
		{"yaml tag", "source: in/*.parquet", "source: !env LAKE", 7, 13, "datasets.logs.source", "YAML tag !env is not supported"},
		{"key name", "  k: hex:env:K", "  k y: hex:env:K", 4, 3, `keys."k y"`, `key name "k y": use letters, digits, '_' and '-'`},
		{"key mapping variable", "k: hex:env:K", "k: {from: env:1X, encoding: hex}", 4, 13, "keys.k.from", `key variable "1X" is not a valid environment variable name`},
		{"dataset name", "  logs:\n    source", "  l.o.g.s:\n    source", 6, 3, `datasets."l.o.g.s"`, `dataset name "l.o.g.s": use letters, digits, '_' and '-'`},
		{"root outside source", "    subject: user_id\n", "    subject: user_id\n    root: elsewhere\n", 9, 11, "datasets.logs.root", `root "elsewhere" does not contain the source "in/*.parquet"`},
		{"erasure without subject", "    subject: user_id\n    columns:\n      user_id: account_id\n      at: timestamp\n    retention:\n      time_column: at\n      keep: 30d\n      on_null: keep\n", "    columns:\n      user_id: account_id\n      at: timestamp\n    erasure: [{list: gone.csv}]\n", 11, 14, "datasets.logs.erasure", "erasure needs the dataset's subject column: add subject: <column>"},
		{"consent history without time", "    retention:\n      time_column: at\n      keep: 30d\n      on_null: keep\n", "    consent:\n      - {list: c.csv, history: from_withdrawal}\n", 13, 9, "datasets.logs.consent[0]", "history: from_withdrawal needs the event time: add time_column: <column> (or a retention rule)"},
		{"children from another dataset without subject", "    subject: user_id\n    columns:\n      user_id: account_id\n      at: timestamp\n    retention:\n      time_column: at\n      keep: 30d\n      on_null: keep\n", "    columns:\n      user_id: account_id\n      at: timestamp\n    children: {age_from: {dataset: logs, birth_date: at}}\n", 11, 26, "datasets.logs.children.age_from.dataset", `taking ages from another dataset joins on subjects: add subject: <column> to dataset "logs"`},
		{"children unknown_age not a mapping", "      on_null: keep\n", "      on_null: keep\n    children: {unknown_age: keep, age_from: {birth_date: at}}\n", 16, 29, "datasets.logs.children.unknown_age", `must be a mapping, unknown_age: {keep: "why rows of unknown age may go to partners"}, got a single value`},
		{"children unknown_age without reason", "      on_null: keep\n", "      on_null: keep\n    children: {unknown_age: {}, age_from: {birth_date: at}}\n", 16, 29, "datasets.logs.children.unknown_age", `missing required key "keep"`},
		{"children unknown_age empty reason", "      on_null: keep\n", "      on_null: keep\n    children: {unknown_age: {keep: \"\"}, age_from: {birth_date: at}}\n", 16, 36, "datasets.logs.children.unknown_age.keep", "must not be empty"},
		{"children unknown_age without a partner", "      on_null: keep\n", "      on_null: keep\n    children: {unknown_age: {keep: why}, age_from: {birth_date: at}}\n", 16, 29, "datasets.logs.children.unknown_age", "rows of unknown age are removed only from partner_sharing destinations, and this rule excludes children from none: remove unknown_age"},
		{"children not a mapping", "      on_null: keep\n", "      on_null: keep\n    children: 14\n", 16, 15, "datasets.logs.children", "must be a mapping of keys, got a single value"},
		{"children destinations not a list", "      on_null: keep\n", "      on_null: keep\n    children: {destinations: out, age_from: {birth_date: at}}\n", 16, 30, "datasets.logs.children.destinations", "must be a list, got a single value"},
		{"columns not a mapping", "        columns:\n          user_id: pseudonymize\n          at: {transform: truncate_time, unit: day}\n", "        columns: [user_id]\n", 23, 18, "destinations.out.datasets.logs.columns", "must be a mapping, got a list"},
		{"key not a name", "      at: timestamp\n", "      at: timestamp\n      [x]: date\n", 12, 7, "datasets.logs.columns", "keys must be plain names"},
		{"destination name", "  out:\n    purpose", "  o/ut:\n    purpose", 17, 3, `destinations."o/ut"`, `destination name "o/ut": use letters, digits, '_' and '-'`},
		{"treatment a list", "user_id: pseudonymize", "user_id: [pseudonymize]", 24, 20, "destinations.out.datasets.logs.columns.user_id", "must be a transform name or a mapping with transform: and its parameters, got a list"},
		{"required parameter", "at: {transform: truncate_time, unit: day}", "at: {transform: bucket}", 25, 15, "destinations.out.datasets.logs.columns.at", `bucket: parameter "bounds" is required`},
		{"jobs not a list", "unit: day}\n", "unit: day}\njobs: nightly\n", 26, 7, "jobs", "must be a list of jobs"},
		{"job schedule fields", "unit: day}\n", "unit: day}\njobs:\n  - name: nightly\n    what: deidentify\n    schedule: '0 3 * *'\n", 29, 15, "jobs[0].schedule", `schedule "0 3 * *": expected 5 to 6 fields, found 4`},
		{"job schedule range", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: deidentify, schedule: '0 25 * * *'}\n", 27, 43, "jobs[0].schedule", "above maximum"},
		{"job schedule zone", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: deidentify, schedule: 'CRON_TZ=Asia/Shangai 0 3 * * *'}\n", 27, 43, "jobs[0].schedule", "provided bad location Asia/Shangai"},
		{"job what", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: erase, schedule: '@daily'}\n", 27, 21, "jobs[0].what", `"erase" is not one of deidentify, retain, both`},
		{"job destination", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: both, destinations: [out, ads], schedule: '@daily'}\n", 27, 47, "jobs[0].destinations[1]", `no destination named "ads" (declared: out)`},
		{"job name twice", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: retain, schedule: '@daily'}\n  - {name: n, what: deidentify, schedule: '@hourly'}\n", 28, 12, "jobs[1].name", `job "n" is already declared at line 27`},
		{"job missing schedule", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: retain}\n", 27, 5, "jobs[0]", `missing required key "schedule"`},
		{"integer list parameter", "at: {transform: truncate_time, unit: day}", "at: {transform: age_band, bands: 5}", 25, 44, "destinations.out.datasets.logs.columns.at.bands", "must be a list, got a single value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(minimal, c.old) != 1 {
				t.Fatalf("edit %q does not occur exactly once", c.old)
			}
			src := strings.Replace(minimal, c.old, c.new, 1)
			_, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
			if err == nil {
				t.Fatalf("no error for:\n%s", src)
			}
			if !errors.Is(err, ErrPolicy) {
				t.Errorf("error does not match ErrPolicy: %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T", err)
			}
			for _, e := range list {
				if e.File == "policy.yaml" && e.Line == c.line && e.Column == c.col && e.Path == c.path && strings.Contains(e.Msg, c.msg) {
					return
				}
			}
			t.Errorf("want policy.yaml:%d:%d: %s: ...%s...\ngot:\n%v", c.line, c.col, c.path, c.msg, err)
		})
	}
}

// TestAllErrorsReported: problems in several places are all reported, in
// file order, not just the first.
func TestAllErrorsReported(t *testing.T) {
	src := strings.NewReplacer("version: 1", "version: 3", "keep: 30d", "keep: forever", "purpose: analytics", "purpose: ads").Replace(minimal)
	_, err := Parse("p.yaml", []byte(src), env(nil))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	if list[0].Line != 1 || list[1].Line != 14 || list[2].Line != 18 {
		t.Errorf("not in file order: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "3 problems in the policy:") {
		t.Errorf("message: %v", err)
	}
}

func TestEnvSubstitution(t *testing.T) {
	lookup := env(map[string]string{"A": "x", "EMPTY": "", "YAML": "a: [1, 2]\nb: {c"})
	cases := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "x", ""},
		{"pre-${A}-post", "pre-x-post", ""},
		{"${A}${A}", "xx", ""},
		{"${MISSING:-def}", "def", ""},
		{"${EMPTY:-def}", "def", ""},
		{"${EMPTY}", "", ""},
		{"${A:-def}", "x", ""},
		{"${MISSING:-}", "", ""},
		{"$$A and $$", "$A and $", ""},
		{"$A $", "$A $", ""},
		{"${YAML}", "a: [1, 2]\nb: {c", ""},
		{"${MISSING}", "", "MISSING is not set"},
		{"${A", "", "unterminated"},
		{"${}", "", "invalid variable reference"},
		{"${A-B}", "", "invalid variable reference"},
	}
	for _, c := range cases {
		got, err := expandEnv(c.in, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestEnvCannotInjectYAML: a variable holding YAML stays one string value.
func TestEnvCannotInjectYAML(t *testing.T) {
	evil := "x\n    unclassified: drop\n    columns: {}"
	p, err := Parse("p.yaml", []byte(strings.Replace(minimal, "source: in/*.parquet", "source: ${SRC}", 1)),
		env(map[string]string{"SRC": evil}))
	if err != nil {
		t.Fatal(err)
	}
	ds := p.Datasets[0]
	if ds.Source != evil || ds.Unclassified != "fail" || len(ds.Columns) != 2 {
		t.Errorf("injected: source=%q unclassified=%s columns=%d", ds.Source, ds.Unclassified, len(ds.Columns))
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key32 := mustHex(t, benchKeyHex)
	b64 := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // the same 32 bytes
	cases := []struct {
		name string
		ref  KeyRef
		env  map[string]string
		want []byte
		err  string
	}{
		{"hex env", KeyRef{"env", "K", "hex"}, map[string]string{"K": benchKeyHex}, key32, ""},
		{"hex env upper", KeyRef{"env", "K", "hex"}, map[string]string{"K": strings.ToUpper(benchKeyHex)}, key32, ""},
		{"base64 env", KeyRef{"env", "K", "base64"}, map[string]string{"K": b64}, key32, ""},
		{"hex file, one newline", KeyRef{"file", write("a.key", benchKeyHex+"\n"), "hex"}, nil, key32, ""},
		{"hex file, no newline", KeyRef{"file", write("b.key", benchKeyHex), "hex"}, nil, key32, ""},
		{"hex file, two newlines", KeyRef{"file", write("c.key", benchKeyHex+"\n\n"), "hex"}, nil, nil, "not valid hex"},
		{"hex file, CRLF", KeyRef{"file", write("d.key", benchKeyHex+"\r\n"), "hex"}, nil, nil, "not valid hex"},
		{"base64 read as hex is refused, not guessed", KeyRef{"env", "K", "hex"}, map[string]string{"K": b64}, nil, "not valid hex"},
		{"short", KeyRef{"env", "K", "hex"}, map[string]string{"K": benchKeyHex[:62]}, nil, "31 bytes, at least 32"},
		{"all zero", KeyRef{"env", "K", "hex"}, map[string]string{"K": strings.Repeat("0", 64)}, nil, "all bytes are zero"},
		{"unset", KeyRef{"env", "K", "hex"}, nil, nil, `environment variable "K" is not set`},
		{"missing file", KeyRef{"file", filepath.Join(dir, "none.key"), "hex"}, nil, nil, "no such file"},
		{"odd hex", KeyRef{"env", "K", "hex"}, map[string]string{"K": benchKeyHex + "a"}, nil, "not valid hex"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := loadKey("k", c.ref, dir, env(c.env), "")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				if v := c.env["K"]; v != "" && len(v) > 8 && strings.Contains(err.Error(), v[:16]) {
					t.Errorf("error quotes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(k.Secret()) != string(c.want) {
				t.Errorf("secret differs")
			}
		})
	}
	// 64 hex characters are also valid base64 (48 bytes): the stated encoding
	// decides, so the same text gives a different key, never a guessed one.
	asB64, err := loadKey("k", KeyRef{"env", "K", "base64"}, dir, env(map[string]string{"K": benchKeyHex}), "")
	if err != nil || len(asB64.Secret()) != 48 {
		t.Errorf("hex text read as base64: %v", err)
	}
}

// TestKeyNeverPrinted: every way a key can be formatted shows only its
// fingerprint.
func TestKeyNeverPrinted(t *testing.T) {
	k, err := loadKey("bench", KeyRef{"env", "K", "hex"}, "", env(map[string]string{"K": benchKeyHex}), "")
	if err != nil {
		t.Fatal(err)
	}
	raw := string(k.Secret())
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %q", k, k, k, k, k, k), fmt.Sprintf("%v", struct{ K *Key }{k})} {
		if strings.Contains(s, benchKeyHex[:16]) || strings.Contains(s, raw) || strings.Contains(s, "0001020304") {
			t.Errorf("key material in %q", s)
		}
	}
	j, _ := k.MarshalJSON()
	if string(j) != `{"name":"bench","fingerprint":"`+k.Fingerprint()+`"}` {
		t.Errorf("JSON: %s", j)
	}
	if len(k.Fingerprint()) != 16 {
		t.Errorf("fingerprint %q", k.Fingerprint())
	}
}

func TestFingerprintDefinition(t *testing.T) {
	// HMAC-SHA256(000102…1f, "deid key fingerprint v1"), first 8 bytes, computed
	// independently with: printf 'deid key fingerprint v1' | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f
	if got := Fingerprint(mustHex(t, benchKeyHex)); got != benchKeyFingerprint {
		t.Errorf("fingerprint %s, want %s", got, benchKeyFingerprint)
	}
}

func TestDurations(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in     string
		fixed  time.Duration
		months int
		before time.Time
		err    string
	}{
		{"365d", 365 * 86400 * time.Second, 0, now.Add(-365 * 86400 * time.Second), ""},
		{"36h", 36 * time.Hour, 0, now.Add(-36 * time.Hour), ""},
		{"2w", 14 * 24 * time.Hour, 0, now.Add(-14 * 24 * time.Hour), ""},
		{"90min", 90 * time.Minute, 0, now.Add(-90 * time.Minute), ""},
		{"3y", 0, 36, time.Date(2023, 3, 31, 12, 0, 0, 0, time.UTC), ""},
		{"1mo", 0, 1, time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC), ""}, // 31 Feb normalizes to 3 Mar
		{"1y6mo", 0, 18, time.Date(2024, 10, 1, 12, 0, 0, 0, time.UTC), ""},
		{"1y1d", 24 * time.Hour, 12, time.Date(2025, 3, 30, 12, 0, 0, 0, time.UTC), ""},
		{"", 0, 0, time.Time{}, "empty"},
		{"d", 0, 0, time.Time{}, "expected a number"},
		{"5", 0, 0, time.Time{}, "unknown unit"},
		{"5 d", 0, 0, time.Time{}, "unknown unit"},
		{"-5d", 0, 0, time.Time{}, "expected a number"},
		{"0y", 0, 0, time.Time{}, "is zero"},
		{"99999999999d", 0, 0, time.Time{}, "too large"},
	}
	for _, c := range cases {
		d, err := ParseDuration(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || d.Fixed != c.fixed || d.Months != c.months {
			t.Errorf("%q = %+v, %v", c.in, d, err)
			continue
		}
		if got := d.Before(now, time.UTC); !got.Equal(c.before) {
			t.Errorf("%q before %s = %s, want %s", c.in, now, got, c.before)
		}
	}
	// a calendar year in Shanghai starts at local midnight
	sh, _ := time.LoadLocation("Asia/Shanghai")
	d, _ := ParseDuration("1y")
	nowSh := time.Date(2026, 1, 1, 0, 0, 0, 0, sh)
	if got := d.Before(nowSh, sh); !got.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, sh)) {
		t.Errorf("1y before %s = %s", nowSh, got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(minimal)
	data, _ := os.ReadFile("../deploy/examples/reference-policy.yaml")
	f.Add(string(data))
	f.Add("version: 1\nname: x\n")
	f.Add("a: &x [*x]")
	f.Add(minimal + "jobs:\n  - {name: n, what: both, destinations: [out], schedule: 'CRON_TZ=Asia/Shanghai 0 3 * * *'}\n")
	f.Add(retainPolicy) // retention then/anonymize, on_null fallback, legal minimum, holds
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Parse("f.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("error not a policy error: %v", err)
			}
			return
		}
		if p.Name == "" || len(p.Datasets) == 0 || len(p.Destinations) == 0 {
			t.Fatalf("accepted an incomplete policy: %+v", p)
		}
	})
}

// benchKeyFingerprint was computed with openssl (see TestFingerprintDefinition).
const benchKeyFingerprint = "8f0f1667feffabbf"

// TestCompileErrors: errors found when the plan is compiled (keys loaded,
// destinations selected) name the file, line, column and path too.
func TestCompileErrors(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		env       map[string]string
		dests     []string
		line, col int
		path, msg string
	}{
		{"short key", map[string]string{"K": benchKeyHex[:62]}, nil, 4, 3, "keys.k", "31 bytes, at least 32"},
		{"zero key", map[string]string{"K": strings.Repeat("0", 64)}, nil, 4, 3, "keys.k", "all bytes are zero"},
		{"unset key", nil, nil, 4, 3, "keys.k", `environment variable "K" is not set`},
		{"unknown destination", map[string]string{"K": benchKeyHex}, []string{"ads"}, 0, 0, "destinations", `no destination named "ads"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(minimal), env(c.env))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Compile(p, CompileOptions{Now: now, Lookup: env(c.env), Destinations: c.dests})
			var list ErrorList
			if !errors.As(err, &list) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("error %v is not a policy ErrorList", err)
			}
			for _, e := range list {
				if e.File == "policy.yaml" && e.Line == c.line && e.Column == c.col && e.Path == c.path && strings.Contains(e.Msg, c.msg) {
					return
				}
			}
			t.Errorf("want policy.yaml:%d:%d: %s: ...%s...\ngot:\n%v", c.line, c.col, c.path, c.msg, err)
		})
	}
}

// TestAuditKey: the audit key loads like other keys, is compiled into the
// plan, and is refused when it has a pseudonym key's bytes or cannot load.
func TestAuditKey(t *testing.T) {
	const other = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
	cases := []struct {
		name, ref string
		env       map[string]string
		err       string
	}{
		{"loads", "hex:env:A", map[string]string{"K": benchKeyHex, "A": other}, ""},
		{"mapping form", "{from: env:A, encoding: hex}", map[string]string{"K": benchKeyHex, "A": other}, ""},
		{"same bytes as a pseudonym key", "hex:env:A", map[string]string{"K": benchKeyHex, "A": benchKeyHex}, `policy.yaml:3:12: audit_key: the audit key has the same bytes as key "k"`},
		{"unset", "hex:env:A", map[string]string{"K": benchKeyHex}, `policy.yaml:3:12: audit_key: key "audit_key": environment variable "A" is not set`},
		{"weak", "hex:env:A", map[string]string{"K": benchKeyHex, "A": "abcd"}, "2 bytes, at least 32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(minimal, "keys:\n", "audit_key: "+c.ref+"\nkeys:\n", 1)
			p, err := Parse("policy.yaml", []byte(src), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Compile(p, CompileOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Lookup: env(c.env)})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrPolicy) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if plan.AuditKey == nil || plan.AuditKey.Fingerprint() != Fingerprint(mustHex(t, other)) {
				t.Errorf("audit key %v", plan.AuditKey)
			}
			for _, k := range plan.Keys {
				if k.Name() == "audit_key" {
					t.Error("the audit key is listed among the pseudonym keys")
				}
			}
		})
	}
	p, err := Parse("policy.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := LoadAuditKey(p, env(nil)); k != nil || err != nil {
		t.Errorf("no audit key declared: %v %v", k, err)
	}
}

// TestQuasiIdentifiersCompile: a binding's quasi-identifiers and min_k reach
// the plan.
func TestQuasiIdentifiersCompile(t *testing.T) {
	src := strings.Replace(minimal, "unit: day}\n", "unit: day}\n        quasi_identifiers: [at, user_id]\n        min_k: 5\n", 1)
	p, err := Parse("policy.yaml", []byte(src), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(p, CompileOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Lookup: env(map[string]string{"K": benchKeyHex})})
	if err != nil {
		t.Fatal(err)
	}
	b := plan.Destinations[0].Binding("logs")
	if strings.Join(b.QuasiIdentifiers, ",") != "at,user_id" || b.MinK != 5 {
		t.Errorf("binding: %v %d", b.QuasiIdentifiers, b.MinK)
	}
}
