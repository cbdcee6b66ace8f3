package rules

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/transforms"
)

// TestPurposeDefaultsMeetFloors: every purpose has a default for every
// semantic type, the default is a registered transform whose parameters
// validate, and it meets the purpose's own floor without an allow.
func TestPurposeDefaultsMeetFloors(t *testing.T) {
	for _, p := range AllPurposes() {
		for _, st := range SemanticTypes() {
			def, ok := p.defaults[st.Name]
			if !ok {
				t.Errorf("%s: no default for %s", p.Name, st.Name)
				continue
			}
			spec, err := transforms.Lookup(def.Transform)
			if err != nil {
				t.Errorf("%s/%s: %v", p.Name, st.Name, err)
				continue
			}
			if _, err := spec.Validate(def.Params); err != nil {
				t.Errorf("%s/%s: %s: %v", p.Name, st.Name, def, err)
			}
			if !p.Meets(&st, spec) {
				t.Errorf("%s/%s: default %s (%s) is below the floor %s", p.Name, st.Name, def, spec.Result, p.Floor(&st))
			}
		}
	}
}

// TestFloors states the floors the purposes promise, independently of the
// table in purposes.go (reading aid promises 1-3).
func TestFloors(t *testing.T) {
	keep, _ := transforms.Lookup("keep")
	drop, _ := transforms.Lookup("drop")
	pseudo, _ := transforms.Lookup("pseudonymize")
	scrub, _ := transforms.Lookup("scrub")
	cases := []struct {
		purpose, semantic string
		spec              *transforms.Spec
		meets             bool
	}{
		{"partner_sharing", "account_id", pseudo, false}, // promise 2: not even a pseudonym
		{"partner_sharing", "imei", pseudo, false},
		{"partner_sharing", "account_id", drop, true},
		{"partner_sharing", "free_text", scrub, false},
		{"partner_sharing", "ip", keep, false},
		{"partner_sharing", "city", keep, true}, // coarse already
		{"partner_sharing", "order_id", keep, false},
		{"partner_sharing", "amount", keep, true},
		{"research", "phone", keep, false}, // promise 3
		{"research", "phone", pseudo, true},
		{"research", "latitude", keep, false},
		{"research", "free_text", keep, false},
		{"training", "resident_id", keep, false}, // promise 1
		{"training", "imei", pseudo, true},
		{"training", "free_text", scrub, true},
		{"training", "ip", keep, true},
		{"analytics", "email", keep, false},
		{"analytics", "item_text", keep, true},
	}
	for _, c := range cases {
		p, err := LookupPurpose(c.purpose)
		if err != nil {
			t.Fatal(err)
		}
		st, err := LookupSemanticType(c.semantic)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Meets(st, c.spec); got != c.meets {
			t.Errorf("%s %s %s: meets %v, want %v", c.purpose, c.semantic, c.spec.Name, got, c.meets)
		}
	}
}

// TestDefaultsApply: a destination that names no treatment for a column gets
// its purpose's default, marked as such; an allow becomes a plan warning.
func TestDefaultsApply(t *testing.T) {
	src := strings.Replace(minimal, "          user_id: pseudonymize\n", "", 1)
	src = strings.Replace(src, "          at: {transform: truncate_time, unit: day}\n",
		"          at: {transform: keep, allow: \"hourly seasonality study\"}\n", 1)
	src = strings.Replace(src, "purpose: analytics", "purpose: research", 1)
	p, err := Parse("p.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(p, CompileOptions{Lookup: env(map[string]string{"K": benchKeyHex})})
	if err != nil {
		t.Fatal(err)
	}
	b := plan.Destinations[0].Binding("logs")
	if u := b.Columns["user_id"]; u == nil || u.Spec.Name != "pseudonymize" || !u.Default {
		t.Errorf("user_id: %+v", u)
	}
	if at := b.Columns["at"]; at.Default || at.Allow != "hourly seasonality study" {
		t.Errorf("at: %+v", at)
	}
	if len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], `dataset "logs", column "at" gets keep, below the research floor for quasi_identifier columns; allowed at p.yaml:24:15: hourly seasonality study`) {
		t.Errorf("warnings: %q", plan.Warnings)
	}
}

// TestExamplePoliciesLoad: every shipped example policy loads, floors
// included (allows stated where they are crossed).
func TestExamplePoliciesLoad(t *testing.T) {
	vars := env(map[string]string{"DEID_BENCH_INPUT": "in.parquet", "DEID_BENCH_ERASURE": "e.parquet",
		"DEID_BENCH_OUTPUT": "out", "DEID_BENCH_KEY": benchKeyHex})
	files, _ := filepath.Glob("../deploy/examples/*.yaml")
	if len(files) < 2 {
		t.Fatalf("example policies: %v", files)
	}
	for _, f := range files {
		if _, err := Load(f, vars); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestExamplePolicyUsesEveryTransform: deploy/examples/policy.yaml, the
// built-in policy of `deid run`, shows every transform of the registry at
// least once (the bench-only variants aside, which are parameters), and
// every purpose.
func TestExamplePolicyUsesEveryTransform(t *testing.T) {
	p, err := Load("../deploy/examples/policy.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(p, CompileOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Lookup: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	used, purposes := map[string]bool{}, map[string]bool{}
	for _, d := range plan.Destinations {
		purposes[d.Purpose] = true
		for _, b := range d.Bindings {
			for _, c := range b.Columns {
				used[c.Spec.Name] = true
			}
		}
	}
	for _, s := range transforms.Registry() {
		if !used[s.Name] {
			t.Errorf("the example policy never uses transform %s", s.Name)
		}
	}
	for _, pu := range Purposes {
		if !purposes[pu] {
			t.Errorf("the example policy has no destination for purpose %s", pu)
		}
	}
}
