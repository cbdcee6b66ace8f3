package main

import (
	"encoding/json"
	"testing"
)

// TestSchemaCommand: deid schema prints a JSON Schema document naming the
// registries' transforms and purposes, and exits 0; arguments are a usage
// error (exit 2).
func TestSchemaCommand(t *testing.T) {
	res := runDeid(t, t.TempDir(), nil, "schema")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" || doc["properties"] == nil {
		t.Errorf("unexpected document head: %v", doc["$schema"])
	}
	if res := runDeid(t, t.TempDir(), nil, "schema", "extra"); res.code != 2 {
		t.Errorf("extra argument: exit %d", res.code)
	}
}
