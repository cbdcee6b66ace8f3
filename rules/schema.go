package rules

import (
	"encoding/json"

	"github.com/deidproject/deid/transforms"
)

// JSONSchema returns the JSON Schema (draft 2020-12) of the policy language,
// built from the same registries the parser uses: semantic types, purposes
// and transforms with their parameters. Editors use it to complete and check
// policies; it cannot express cross references (a destination naming a
// declared key), which `deid validate` checks.
func JSONSchema() ([]byte, error) {
	return json.MarshalIndent(schemaDoc(), "", "  ")
}

type obj = map[string]any

// envRef matches a value that is an environment reference as a whole,
// allowed wherever an integer or boolean goes.
var envRef = obj{"type": "string", "pattern": `^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$`}

func str() obj { return obj{"type": "string", "minLength": 1} }

func strictObject(props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func mapOf(v any) obj {
	return obj{"type": "object", "propertyNames": obj{"pattern": "^[A-Za-z0-9_-]+$"}, "additionalProperties": v}
}

// columnsOf is a mapping keyed by column names, which may be anything (a
// name YAML would read otherwise is quoted: "<<", "null", "a.b").
func columnsOf(v any) obj {
	return obj{"type": "object", "propertyNames": obj{"minLength": 1}, "additionalProperties": v}
}

func listFile(ext string) obj {
	return obj{"type": "string", "pattern": `(?i)\.(parquet|csv)$|\$\{`, "description": ext}
}

func schemaDoc() obj {
	var semantic []string
	for _, st := range SemanticTypes() {
		semantic = append(semantic, st.Name)
	}
	semanticType := obj{"enum": semantic}
	keep := obj{"type": "string", "pattern": `^(([0-9]+(s|min|h|d|w|mo|y))+|.*\$\{.*)$`}
	var names []string
	var forms []any
	for _, s := range transforms.Registry() {
		names = append(names, s.Name)
		props := obj{"transform": obj{"const": s.Name}, "allow": str()}
		var required []string
		for _, p := range s.Params {
			props[p.Name] = paramSchema(p)
			if p.Default == nil {
				required = append(required, p.Name)
			}
		}
		form := strictObject(props, append([]string{"transform"}, required...)...)
		form["description"] = s.Summary
		forms = append(forms, form)
	}
	treatment := obj{"oneOf": []any{obj{"enum": names}, obj{"oneOf": forms}}}
	dataset := strictObject(obj{
		"source":       str(),
		"root":         str(),
		"time_zone":    str(),
		"subject":      str(),
		"unclassified": obj{"enum": []string{"fail", "drop"}},
		"allow_empty":  obj{"oneOf": []any{obj{"type": "boolean"}, envRef}},
		"columns": columnsOf(obj{"oneOf": []any{semanticType,
			strictObject(obj{"type": semanticType}, "type")}}),
		"retention": strictObject(obj{
			"time_column": str(),
			"keep":        keep,
			"on_null": obj{"oneOf": []any{obj{"enum": []string{"keep", "remove"}},
				strictObject(obj{"fallback": str(), "keep": keep}, "fallback", "keep")}},
			"then":        obj{"enum": []string{ThenDelete, ThenAnonymize}},
			"anonymize":   columnsOf(treatment),
			"future_skew": keep,
		}, "time_column", "keep", "on_null"),
		"ended_at":      obj{"type": "string", "description": "when the service that produced the dataset closed: a date (midnight in time_zone) or an RFC 3339 time; deid retain then removes all of its rows and published files"},
		"legal_minimum": strictObject(obj{"keep": keep, "basis": str()}, "keep", "basis"),
		"holds":         obj{"type": "array", "items": strictObject(obj{"list": listFile("Parquet or CSV list of subject ids on legal hold"), "column": str()}, "list")},
		"erasure":       obj{"type": "array", "items": strictObject(obj{"list": listFile("Parquet or CSV list of subject ids"), "column": str()}, "list")},
		"consent": obj{"type": "array", "items": strictObject(obj{
			"list":        listFile("Parquet or CSV list: subject, purpose, withdrawn_at"),
			"column":      str(),
			"history":     obj{"enum": []string{HistoryAll, HistoryFromWithdrawal}},
			"time_column": str(),
		}, "list")},
		"children": strictObject(obj{
			"below":        obj{"oneOf": []any{obj{"type": "integer", "minimum": 1, "maximum": 30}, envRef}},
			"inclusive":    obj{"oneOf": []any{obj{"type": "boolean"}, envRef}},
			"time_column":  str(),
			"destinations": obj{"type": "array", "items": str()},
			"unknown_age": strictObject(obj{"keep": obj{"type": "string", "minLength": 1,
				"description": "why rows whose age cannot be told may go to partner_sharing destinations (by default they are removed there)"}}, "keep"),
			"age_from": obj{"allOf": []any{
				strictObject(obj{"birth_date": str(), "resident_id": str(), "dataset": str()}),
				obj{"oneOf": []any{obj{"required": []string{"birth_date"}, "not": obj{"required": []string{"resident_id"}}},
					obj{"required": []string{"resident_id"}, "not": obj{"required": []string{"birth_date"}}}}},
			}},
		}, "age_from"),
	}, "source", "columns")

	binding := obj{"oneOf": []any{obj{"type": "null"}, strictObject(obj{
		"columns":           columnsOf(treatment),
		"quasi_identifiers": obj{"type": "array", "items": str(), "minItems": 1, "uniqueItems": true},
		"min_k":             obj{"oneOf": []any{obj{"type": "integer", "minimum": 2, "maximum": 1000}, envRef}},
	})}}
	destination := strictObject(obj{
		"purpose": obj{"enum": Purposes},
		"output":  str(),
		"key": obj{"oneOf": []any{str(), strictObject(obj{"name": str(), "allow": str()}, "name")},
			"description": "a key of keys:, or {name, allow: why it is shared with another destination}"},
		"datasets": mapOf(binding),
	}, "purpose", "output", "datasets")
	refText := obj{"type": "string", "pattern": `^(hex|base64):(env|file):.+$`}
	allowKey := obj{"type": "string", "minLength": 1, "description": "why a key file every user can read is accepted"}
	keyRef := obj{"oneOf": []any{
		refText,
		strictObject(obj{"ref": refText, "allow": allowKey}, "ref"),
		strictObject(obj{"from": obj{"type": "string", "pattern": `^(env|file):.+$`}, "encoding": obj{"enum": []string{"hex", "base64"}},
			"allow": allowKey}, "from", "encoding"),
	}}
	job := strictObject(obj{
		"name":         obj{"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
		"what":         obj{"enum": JobKinds},
		"destinations": obj{"type": "array", "items": str()},
		"schedule":     obj{"type": "string", "minLength": 1, "description": "cron: five fields (minute first), six (seconds first) or a descriptor (@daily, @every 1h); optional CRON_TZ=Zone prefix"},
	}, "name", "what", "schedule")
	return obj{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         "https://github.com/deidproject/deid/policy.schema.json",
		"title":       "deid policy, version 1",
		"description": "A deid policy: keys by reference, source datasets with classified columns and row rules, destinations with purposes and per-column treatments, and scheduled jobs.",
		"type":        "object",
		"properties": obj{
			"version":      obj{"const": 1},
			"name":         obj{"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
			"description":  obj{"type": "string"},
			"keys":         mapOf(keyRef),
			"audit_key":    keyRef,
			"datasets":     mapOf(dataset),
			"destinations": mapOf(destination),
			"jobs":         obj{"type": "array", "items": job},
		},
		"required":             []string{"version", "name", "datasets", "destinations"},
		"additionalProperties": false,
	}
}

func paramSchema(p transforms.ParamSpec) obj {
	var s obj
	switch p.Kind {
	case transforms.ParamInt:
		s = obj{"type": "integer"}
		if p.Min != 0 || p.Max != 0 {
			s["minimum"], s["maximum"] = p.Min, p.Max
		}
		s = obj{"oneOf": []any{s, envRef}}
	case transforms.ParamBool:
		s = obj{"oneOf": []any{obj{"type": "boolean"}, envRef}}
	case transforms.ParamIntList:
		s = obj{"type": "array", "items": obj{"type": "integer"}, "minItems": 1}
	case transforms.ParamFloatList:
		s = obj{"type": "array", "items": obj{"type": "number"}, "minItems": 1}
	case transforms.ParamStringList:
		item := obj{"type": "string"}
		if len(p.Enum) > 0 {
			item = obj{"enum": p.Enum}
		}
		s = obj{"type": "array", "items": item}
	default:
		s = obj{"type": "string"}
		if len(p.Enum) > 0 {
			s = obj{"enum": p.Enum}
		}
	}
	s["description"] = p.Doc
	return s
}
