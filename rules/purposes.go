package rules

import (
	"fmt"
	"sort"
	"strings"

	"github.com/deidproject/deid/transforms"
)

// A purpose says what a destination's data is for. It fixes the default
// treatment of every semantic type and the floors: the least protection a
// column of each category may get. The promises cited are the numbered ones
// of the seeds' reading aid (shared/seeds/README.md), which summarise the
// platforms' privacy policies.

// Purpose is one of the purposes a destination may serve.
type Purpose struct {
	// Name is the purpose's name in policies.
	Name string
	// Summary says what the data is used for.
	Summary string
	// Promises cites the privacy-policy promises the purpose implements.
	Promises string
	// floors is the least protection per category.
	floors map[Category]transforms.Result
	// defaults is the treatment of each semantic type no override names.
	defaults map[string]Treatment
}

// Treatment is a transform by name with its parameters, as a purpose's
// default for a semantic type.
type Treatment struct {
	Transform string
	Params    map[string]any
}

// String renders the treatment as a policy would write it.
func (t Treatment) String() string {
	if len(t.Params) == 0 {
		return t.Transform
	}
	keys := make([]string, 0, len(t.Params))
	for k := range t.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{"transform: " + t.Transform}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %v", k, t.Params[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Floor returns the least protection purpose p allows for a column of
// semantic type st.
func (p *Purpose) Floor(st *SemanticType) transforms.Result {
	if st.Coarse && p.floors[st.Category] == transforms.ResultGeneralized {
		return transforms.ResultRaw // already a coarse value: a city, a day
	}
	return p.floors[st.Category]
}

// Meets reports whether applying spec to a column of type st gives at least
// the protection purpose p requires. A transform listed among the type's
// derivations (a birth year of a resident ID, the city of an address) meets
// any floor, partners' included: what it leaves is no longer the identifier.
func (p *Purpose) Meets(st *SemanticType, spec *transforms.Spec) bool {
	floor := p.Floor(st)
	if spec.Result >= floor {
		return true
	}
	for _, d := range st.Derivations {
		if d == spec.Name {
			return true
		}
	}
	return false
}

// Default returns the treatment purpose p gives a column of type st when the
// destination names none.
func (p *Purpose) Default(st *SemanticType) Treatment {
	if t, ok := p.defaults[st.Name]; ok {
		return t
	}
	return Treatment{Transform: "drop"} // fail closed: never reached for a vocabulary type (tested)
}

// LookupPurpose returns the purpose called name.
func LookupPurpose(name string) (*Purpose, error) {
	for _, p := range purposes {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("unknown purpose %q (known: %s)", name, strings.Join(Purposes, ", "))
}

// AllPurposes returns the purposes in documentation order.
func AllPurposes() []*Purpose {
	out := make([]*Purpose, len(purposes))
	copy(out, purposes)
	return out
}

// Purposes lists the names of the purposes a destination may serve.
var Purposes = []string{"training", "analytics", "partner_sharing", "research"}

const (
	raw         = transforms.ResultRaw
	scrubbed    = transforms.ResultScrubbed
	generalized = transforms.ResultGeneralized
	pseudonym   = transforms.ResultPseudonym
	removed     = transforms.ResultRemoved
)

func t(name string, kv ...any) Treatment {
	tr := Treatment{Transform: name}
	if len(kv) > 0 {
		tr.Params = map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			tr.Params[kv[i].(string)] = kv[i+1]
		}
	}
	return tr
}

// defaults shared by the purposes that keep a joinable view of the data
// (training, analytics, research); each purpose then adjusts a few.
func internalDefaults() map[string]Treatment {
	m := map[string]Treatment{
		"account_id": t("pseudonymize"),
		"address":    t("generalize_address", "level", "city"),
		"url":        t("url_strip"),
		"free_text":  t("scrub"),
		"ip":         t("generalize_ip"),
		"birth_date": t("birth_year"),
		"latitude":   t("round", "digits", int64(2)),
		"longitude":  t("round", "digits", int64(2)),
		"timestamp":  t("keep"),
		"user_agent": t("keep"),
	}
	for _, st := range vocabulary {
		if _, ok := m[st.Name]; ok {
			continue
		}
		switch st.Category {
		case DirectIdentifier:
			m[st.Name] = t("drop") // data minimisation: account_id is the join key
		case DeviceIdentifier:
			m[st.Name] = t("pseudonymize")
		default:
			m[st.Name] = t("keep")
		}
	}
	m["wifi_bssid"], m["cell_id"] = t("drop"), t("drop") // location tracks (行踪轨迹): sensitive
	return m
}

func trainingDefaults() map[string]Treatment { return internalDefaults() }

func analyticsDefaults() map[string]Treatment {
	m := internalDefaults()
	m["timestamp"] = t("truncate_time", "unit", "hour")
	return m
}

func researchDefaults() map[string]Treatment {
	m := internalDefaults()
	m["timestamp"] = t("truncate_time", "unit", "day")
	m["user_agent"] = t("drop")
	m["birth_date"] = t("age_band")
	return m
}

func partnerDefaults() map[string]Treatment {
	m := map[string]Treatment{
		"address":    t("generalize_address", "level", "province"),
		"ip":         t("generalize_ip"),
		"timestamp":  t("truncate_time", "unit", "day"),
		"birth_date": t("age_band"),
		"latitude":   t("round", "digits", int64(1)),
		"longitude":  t("round", "digits", int64(1)),
		"amount":     t("bucket", "bounds", []float64{0, 50, 100, 200, 500, 1000, 5000}),
	}
	for _, st := range vocabulary {
		if _, ok := m[st.Name]; ok {
			continue
		}
		switch st.Category {
		case DirectIdentifier, DeviceIdentifier, FreeText:
			m[st.Name] = t("drop")
		case QuasiIdentifier:
			if st.Coarse {
				m[st.Name] = t("keep")
			} else {
				m[st.Name] = t("drop")
			}
		case RecordID:
			m[st.Name] = t("pseudonymize")
		default:
			m[st.Name] = t("keep")
		}
	}
	return m
}

var purposes = []*Purpose{
	{
		Name:     "training",
		Summary:  "machine learning and algorithm training inside the platform",
		Promises: "1 (de-identify before model training), 4 (device and log data combined with other data), 9 (children)",
		floors: map[Category]transforms.Result{
			DirectIdentifier: pseudonym, DeviceIdentifier: pseudonym, FreeText: scrubbed,
			QuasiIdentifier: raw, RecordID: raw, Attribute: raw, NonPersonal: raw,
		},
		defaults: trainingDefaults(),
	},
	{
		Name:     "analytics",
		Summary:  "statistics and business analysis inside the platform",
		Promises: "1 (de-identify before analytics), 4 (device and log data combined with other data), 9 (children)",
		floors: map[Category]transforms.Result{
			DirectIdentifier: pseudonym, DeviceIdentifier: pseudonym, FreeText: scrubbed,
			QuasiIdentifier: raw, RecordID: raw, Attribute: raw, NonPersonal: raw,
		},
		defaults: analyticsDefaults(),
	},
	{
		Name:     "partner_sharing",
		Summary:  "advertising and analytics partners outside the platform",
		Promises: "2 (partners never get identity: no direct identifier, nor a pseudonym of one), 8 (consent withdrawal), 9 (children)",
		floors: map[Category]transforms.Result{
			DirectIdentifier: removed, DeviceIdentifier: removed, FreeText: removed,
			QuasiIdentifier: generalized, RecordID: pseudonym, Attribute: raw, NonPersonal: raw,
		},
		defaults: partnerDefaults(),
	},
	{
		Name:     "research",
		Summary:  "research partners: de-identified or anonymized data only",
		Promises: "3 (research gets only de-identified data: nothing re-identifiable without the key), 10 (cross-border only de-identified)",
		floors: map[Category]transforms.Result{
			DirectIdentifier: pseudonym, DeviceIdentifier: pseudonym, FreeText: scrubbed,
			QuasiIdentifier: generalized, RecordID: raw, Attribute: raw, NonPersonal: raw,
		},
		defaults: researchDefaults(),
	},
}
