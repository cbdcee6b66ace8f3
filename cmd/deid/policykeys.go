package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/deidproject/deid/rules"
)

// policyKeysTable renders docs/reference/policy.md's table of every key of
// the policy language, walked from rules.JSONSchema (the schema deid schema
// prints, built from the parser's registries): its dotted path (<name> for
// a name the policy chooses, <column> for a column, [] for a list's
// items), whether it is required and what it accepts.
func policyKeysTable() (string, error) {
	raw, err := rules.JSONSchema()
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| key | required | accepts |\n|---|---|---|\n")
	walkKeys(&b, "", doc, map[string]bool{})
	return b.String(), nil
}

// walkKeys writes a row for every property of object schema s under path,
// then the properties of those that are objects themselves; a key is
// written once (seen), and a column's treatment is one row (see
// docs/reference/transforms.md for each transform's parameters).
func walkKeys(b *strings.Builder, path string, s map[string]any, seen map[string]bool) {
	if treatment(s) {
		return
	}
	for _, alt := range objectForms(s) {
		props, _ := alt["properties"].(map[string]any)
		required := map[string]bool{}
		if r, ok := alt["required"].([]any); ok {
			for _, k := range r {
				required[k.(string)] = true
			}
		}
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			p := props[k].(map[string]any)
			req := ""
			if required[k] {
				req = "yes"
			}
			key := strings.TrimPrefix(path+"."+k, ".")
			row(b, seen, key, req, p)
			walkKeys(b, key, p, seen)
			if child, sub := children(p); child != nil {
				ck := key + "." + sub
				if sub == "[]" {
					ck = key + sub
				}
				row(b, seen, ck, "", child)
				walkKeys(b, ck, child, seen)
			}
		}
	}
}

// row writes key's row, unless it was written.
func row(b *strings.Builder, seen map[string]bool, key, required string, s map[string]any) {
	if seen[key] {
		return
	}
	seen[key] = true
	fmt.Fprintf(b, "| `%s` | %s | %s |\n", key, required, cell(accepts(s)))
}

// treatment reports whether s is a column's treatment: a transform's name
// or {transform: NAME, its parameters, allow}.
func treatment(s map[string]any) bool {
	alts, _ := s["oneOf"].([]any)
	for _, a := range alts {
		forms, _ := a.(map[string]any)["oneOf"].([]any)
		for _, f := range forms {
			props, _ := f.(map[string]any)["properties"].(map[string]any)
			if _, ok := props["transform"]; ok {
				return true
			}
		}
	}
	return false
}

// objectForms returns the object schemas among s and its alternatives
// (oneOf, allOf), those with properties.
func objectForms(s map[string]any) []map[string]any {
	var out []map[string]any
	if _, ok := s["properties"]; ok {
		out = append(out, s)
	}
	for _, k := range []string{"oneOf", "allOf"} {
		alts, _ := s[k].([]any)
		for _, a := range alts {
			if m, ok := a.(map[string]any); ok {
				out = append(out, objectForms(m)...)
			}
		}
	}
	return out
}

// children returns the schema of the values of a mapping or the items of a
// list, with the path segment that stands for them, or nil.
func children(s map[string]any) (map[string]any, string) {
	if items, ok := s["items"].(map[string]any); ok {
		return items, "[]"
	}
	if v, ok := s["additionalProperties"].(map[string]any); ok {
		if pn, _ := s["propertyNames"].(map[string]any); pn != nil && pn["pattern"] == nil {
			return v, "<column>"
		}
		return v, "<name>"
	}
	return nil, ""
}

// accepts describes in words what a schema accepts.
func accepts(s map[string]any) string {
	if treatment(s) {
		return "a transform's name (`keep`, `drop`, `pseudonymize`, …), or `{transform: NAME, its parameters, allow: why}`: see [the transforms](transforms.md)"
	}
	var parts []string
	if d, ok := s["description"].(string); ok && s["oneOf"] == nil && s["enum"] == nil {
		parts = append(parts, d)
		if s["type"] == "string" && s["pattern"] == nil {
			return d
		}
	}
	switch {
	case s["const"] != nil:
		return fmt.Sprintf("`%v`", s["const"])
	case s["enum"] != nil:
		vs := s["enum"].([]any)
		if len(vs) > 8 {
			return fmt.Sprintf("one of %d names (%s, …)", len(vs), quoted(vs[:3]))
		}
		return "one of " + quoted(vs)
	case s["allOf"] != nil:
		return "a mapping of the keys below (one of `birth_date` and `resident_id`)"
	case s["oneOf"] != nil:
		var alts []string
		for _, a := range s["oneOf"].([]any) {
			alts = append(alts, accepts(a.(map[string]any)))
		}
		return strings.Join(slices.Compact(alts), "; or ")
	}
	switch s["type"] {
	case "object":
		if _, ok := s["properties"]; ok {
			return "a mapping of the keys below"
		}
		if _, sub := children(s); sub == "<column>" {
			return "a mapping from column names"
		}
		return "a mapping from names (letters, digits, `_`, `-`)"
	case "array":
		return "a list"
	case "boolean":
		return "`true` or `false`"
	case "integer":
		return fmt.Sprintf("an integer from %v to %v", s["minimum"], s["maximum"])
	case "null":
		return "nothing (the defaults)"
	case "string":
		if p, ok := s["pattern"].(string); ok {
			switch {
			case strings.HasPrefix(p, `^\$\{`):
				return "an environment reference `${VAR}`"
			case strings.Contains(p, "mo|y"):
				return "a duration (`365d`, `3y`, `1h30min`)"
			case strings.Contains(p, "hex|base64"):
				return "a key reference (`hex:env:NAME`, `base64:file:PATH`)"
			case strings.Contains(p, "parquet|csv"):
				return "a Parquet or CSV file"
			case strings.Contains(p, "env|file"):
				return "`env:NAME` or `file:PATH`"
			default:
				return "a name (letters, digits, `_`, `-`)"
			}
		}
		if len(parts) > 0 {
			return parts[0]
		}
		return "a string"
	}
	if len(parts) > 0 {
		return parts[0]
	}
	return "see below"
}

func quoted(vs []any) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("`%v`", v)
	}
	return strings.Join(q, ", ")
}
