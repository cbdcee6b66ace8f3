package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compiledSchema compiles JSONSchema with an independent validator.
func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("policy.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// instance turns policy YAML into the JSON value a schema validator checks.
func instance(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestSchemaAcceptsExamples: the shipped policies validate against the
// JSON Schema, as checked by an independent validator.
func TestSchemaAcceptsExamples(t *testing.T) {
	s := compiledSchema(t)
	files, _ := filepath.Glob("../deploy/examples/*.yaml")
	files = append(files, "../cmd/deid/sample-policy.yaml")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(instance(t, src)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := s.Validate(instance(t, []byte(minimal))); err != nil {
		t.Errorf("minimal policy: %v", err)
	}
}

// TestSchemaRejectsBroken: policies that deid's parser rejects for their
// shape are rejected by the schema too.
func TestSchemaRejectsBroken(t *testing.T) {
	s := compiledSchema(t)
	cases := []struct{ name, old, new string }{
		{"unknown top-level key", "name: t\n", "name: t\nnmae: u\n"},
		{"version", "version: 1", "version: 2"},
		{"missing name", "name: t\n", ""},
		{"key without encoding", "k: hex:env:K", "k: env:K"},
		{"audit key without encoding", "keys:\n", "audit_key: env:A\nkeys:\n"},
		{"min_k range", "unit: day}\n", "unit: day}\n        quasi_identifiers: [at]\n        min_k: 1\n"},
		{"quasi-identifiers empty", "unit: day}\n", "unit: day}\n        quasi_identifiers: []\n"},
		{"unknown semantic type", "at: timestamp", "at: timestamps"},
		{"retention unit", "keep: 30d", "keep: 30 days"},
		{"on_null value", "on_null: keep", "on_null: drop"},
		{"purpose", "purpose: analytics", "purpose: ads"},
		{"unknown transform", "user_id: pseudonymize", "user_id: hash"},
		{"unknown parameter", "unit: day}", "units: day}"},
		{"bad parameter value", "unit: day}", "unit: week}"},
		{"transform key missing", "{transform: truncate_time, unit: day}", "{unit: day}"},
		{"erasure list format", "      on_null: keep\n", "      on_null: keep\n    erasure:\n      - list: gone.txt\n"},
		{"consent history", "      on_null: keep\n", "      on_null: keep\n    consent:\n      - {list: c.csv, history: since}\n"},
		{"children two age sources", "      on_null: keep\n", "      on_null: keep\n    children: {age_from: {birth_date: at, resident_id: user_id}}\n"},
		{"children threshold", "      on_null: keep\n", "      on_null: keep\n    children: {below: 0, age_from: {birth_date: at}}\n"},
		{"job what", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: erase, schedule: '@daily'}\n"},
		{"job without schedule", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: deidentify}\n"},
		{"job unknown key", "unit: day}\n", "unit: day}\njobs:\n  - {name: n, what: deidentify, schedule: '@daily', cron: x}\n"},
	}
	for _, c := range cases {
		if strings.Count(minimal, c.old) != 1 {
			t.Fatalf("%s: edit does not occur once", c.name)
		}
		src := strings.Replace(minimal, c.old, c.new, 1)
		if _, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex})); err == nil {
			t.Errorf("%s: deid's parser accepts it", c.name)
		}
		if err := s.Validate(instance(t, []byte(src))); err == nil {
			t.Errorf("%s: the schema accepts it", c.name)
		}
	}
}
