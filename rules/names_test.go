package rules

import (
	"strings"
	"testing"
)

// TestAnyColumnName: a quoted YAML key is a name, whatever YAML would make
// of it unquoted (a merge key, null, a boolean, a number), and names with
// invisible characters or dots are kept exactly; both the dataset's
// classification and the destination's treatment find the column.
func TestAnyColumnName(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"merge key", `"<<"`, "<<"},
		{"merge key, single quotes", `'<<'`, "<<"},
		{"merge key, tagged", `!!str <<`, "<<"},
		{"null", `"null"`, "null"},
		{"null, unquoted", `null`, "null"},
		{"true", `"true"`, "true"},
		{"a number", `"1"`, "1"},
		{"zero-width space", `"phone\u200b"`, "phone\u200b"},
		{"a dot", `"a.b"`, "a.b"},
		{"a space", `"a b"`, "a b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(minimal, "      at: timestamp\n", "      at: timestamp\n      "+c.yaml+": phone\n", 1)
			src = strings.Replace(src, "          at: {transform: truncate_time, unit: day}\n",
				"          at: {transform: truncate_time, unit: day}\n          "+c.yaml+": pseudonymize\n", 1)
			p, err := Parse("policy.yaml", []byte(src), env(nil))
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			if p.Datasets[0].Column(c.want) == nil {
				t.Errorf("column %q not declared: %v", c.want, p.Datasets[0].Columns)
			}
			found := false
			for _, tr := range p.Destinations[0].Datasets[0].Columns {
				found = found || tr.Column == c.want && tr.Transform.Name == "pseudonymize"
			}
			if !found {
				t.Errorf("column %q has no pseudonymize treatment", c.want)
			}
		})
	}
	// paths quote such names
	src := strings.Replace(minimal, "      at: timestamp\n", "      at: timestamp\n      \"a.b\": phones\n", 1)
	_, err := Parse("policy.yaml", []byte(src), env(nil))
	wantPolicyError(t, err, 12, 14, `datasets.logs.columns."a.b"`, `unknown semantic type "phones"`)
	// an unquoted << is still YAML's merge key, refused with how to name
	// such a column
	src = strings.Replace(minimal, "      at: timestamp\n", "      at: timestamp\n      <<: phone\n", 1)
	_, err = Parse("policy.yaml", []byte(src), env(nil))
	wantPolicyError(t, err, 12, 7, "datasets.logs.columns", `merge keys (<<) are not supported: write the keys out (a column named << is written "<<")`)
}

// TestNamesQuotedInErrors: the policy's own errors quote the names they
// mention, so that names differing by an invisible character show apart.
func TestNamesQuotedInErrors(t *testing.T) {
	cases := []struct {
		name     string
		old, new string
		want     string
	}{
		{"unknown column", "          at: {", "          \"ts\\u200b\": keep\n          at: {", `column "ts\u200b" is not among the columns of dataset "logs"`},
		{"keyed without key", "    key: k\n", "", `pseudonymize needs a key: give destination "out" a key:`},
		{"unknown key", "    key: k\n", "    key: \"k\\u200b\"\n", `no key named "k\u200b"`},
		{"subject not a column", "subject: user_id", "subject: \"user_id\\u200b\"", `subject column "user_id\u200b" is not among`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(minimal, c.old) != 1 {
				t.Fatalf("%q does not occur once", c.old)
			}
			_, err := Parse("policy.yaml", []byte(strings.Replace(minimal, c.old, c.new, 1)), env(nil))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestSchemaKeyFormsAndColumnNames: the JSON Schema accepts what the parser
// accepts for keys (the {ref, allow} and {from, encoding, allow} forms, a
// destination's {name, allow}) and for column names (any quoted name), and
// refuses a key mapping with an unknown field.
func TestSchemaKeyFormsAndColumnNames(t *testing.T) {
	s := compiledSchema(t)
	accepted := map[string][2]string{
		"ref and allow":           {"k: hex:env:K", `k: {ref: hex:env:K, allow: "sample"}`},
		"from, encoding, allow":   {"k: hex:env:K", `k: {from: env:K, encoding: hex, allow: "sample"}`},
		"audit key ref and allow": {"keys:\n", "audit_key: {ref: hex:env:A, allow: sample}\nkeys:\n"},
		"destination key mapping": {"    key: k\n", "    key: {name: k, allow: \"one recipient\"}\n"},
		"odd column names": {"      at: timestamp\n",
			"      at: timestamp\n      \"<<\": phone\n      \"null\": phone\n      \"1\": phone\n      \"a.b\": phone\n      \"phone\\u200b\": phone\n"},
	}
	for name, e := range accepted {
		src := strings.Replace(minimal, e[0], e[1], 1)
		if err := s.Validate(instance(t, []byte(src))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	refused := map[string][2]string{
		"unknown key field":         {"k: hex:env:K", "k: {ref: hex:env:K, reason: x}"},
		"empty allow":               {"k: hex:env:K", "k: {ref: hex:env:K, allow: ''}"},
		"destination key no name":   {"    key: k\n", "    key: {allow: x}\n"},
		"destination key bad field": {"    key: k\n", "    key: {name: k, why: x}\n"},
	}
	for name, e := range refused {
		src := strings.Replace(minimal, e[0], e[1], 1)
		if err := s.Validate(instance(t, []byte(src))); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
		if _, err := Parse("policy.yaml", []byte(src), env(nil)); err == nil {
			t.Errorf("%s: the parser accepts it", name)
		}
	}
}
