package main

import (
	"strings"
	"testing"
)

// TestPolicyKeysTable: the generated table of the policy's keys reaches
// keys at every depth and through every form (mappings of names and of
// columns, lists, alternatives), once each, with what they accept.
func TestPolicyKeysTable(t *testing.T) {
	table, err := policyKeysTable()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `version` | yes | `1` |",
		"| `datasets.<name>.source` | yes |",
		"| `datasets.<name>.columns.<column>.type` | yes | one of ",
		"| `datasets.<name>.retention.on_null.fallback` | yes |",
		"| `datasets.<name>.erasure[].list` | yes | a Parquet or CSV file |",
		"| `datasets.<name>.children.age_from.resident_id` |  |",
		"| `destinations.<name>.datasets.<name>.min_k` |  | an integer from 2 to 1000",
		"| `destinations.<name>.purpose` | yes | one of `training`, `analytics`, `partner_sharing`, `research` |",
		"| `keys.<name>.from` | yes |",
		"| `jobs[].schedule` | yes | cron:",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		key := strings.Split(line, "|")[1]
		if seen[key] {
			t.Errorf("key %s listed twice", key)
		}
		seen[key] = true
		if strings.Contains(line, "see below") {
			t.Errorf("a key the walker cannot describe: %s", line)
		}
	}
}
