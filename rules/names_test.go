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
