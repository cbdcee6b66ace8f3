package rules

import (
	"strings"
	"testing"
	"time"
)

// TestChildrenUnknownAge: a children rule removes rows of unknown age from
// partner_sharing destinations only, unless unknown_age.keep says why they
// may stay; the reason is then a warning of the compiled plan, which the
// run's report carries.
func TestChildrenUnknownAge(t *testing.T) {
	partner := strings.Replace(strings.Replace(minimal, "purpose: analytics", "purpose: partner_sharing", 1),
		"          user_id: pseudonymize\n", "          user_id: drop\n", 1)
	for _, tc := range []struct {
		name, children string
		removes        bool
	}{
		{"partner, no reason", "    children: {age_from: {birth_date: at}}\n", true},
		{"partner, reason", "    children: {age_from: {birth_date: at}, unknown_age: {keep: \"ages are checked upstream\"}}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(partner, "      on_null: keep\n", "      on_null: keep\n"+tc.children, 1)
			p, err := Parse("p.yaml", []byte(src), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			c := p.Dataset("logs").Children
			if got := c.RemovesUnknown(PartnerSharing); got != tc.removes {
				t.Errorf("RemovesUnknown(partner_sharing) = %v, want %v", got, tc.removes)
			}
			if c.RemovesUnknown("analytics") || c.RemovesUnknown("training") || c.RemovesUnknown("research") {
				t.Error("rows of unknown age are removed from a destination inside the platform")
			}
			plan, err := Compile(p, CompileOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Lookup: env(map[string]string{"K": strings.Repeat("ab", 32)})})
			if err != nil {
				t.Fatal(err)
			}
			warned := false
			for _, w := range plan.Warnings {
				warned = warned || strings.Contains(w, "ages are checked upstream") && strings.Contains(w, `destination "out"`) && strings.Contains(w, "p.yaml:")
			}
			if warned == tc.removes {
				t.Errorf("warnings %q: want the reason named %v", plan.Warnings, !tc.removes)
			}
		})
	}
}
