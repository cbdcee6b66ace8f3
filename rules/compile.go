package rules

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/deidproject/deid/transforms"
)

// Plan is a compiled policy: keys loaded, transforms bound, retention
// cut-offs computed for one instant. It is what the pipeline executes, and
// it is not modified after Compile.
type Plan struct {
	// Policy is the policy the plan was compiled from.
	Policy *Policy
	// Now is the run's reference instant, in UTC: retention is measured from it.
	Now time.Time
	// Keys are the keys the destinations use, sorted by name.
	Keys []*Key
	// AuditKey signs the run's reports; nil when the policy declares none.
	AuditKey *Key
	// Datasets are the datasets at least one destination reads, in policy order.
	Datasets []*Dataset
	// Destinations are the selected destinations, in policy order.
	Destinations []*Destination
	// Warnings are things worth a look that do not stop the run.
	Warnings []string
}

// Dataset is a source dataset with its row rules ready to apply.
type Dataset struct {
	*DatasetDecl
	// Cutoff is the oldest instant retention keeps; zero without retention.
	Cutoff time.Time
	// FallbackCutoff is the oldest fallback-clock instant kept for rows
	// whose time is NULL (on_null: {fallback, keep}); zero without one.
	FallbackCutoff time.Time
	// Latest is the latest valid event time, now plus the future skew: a
	// later time (dated in the future) is handled as a NULL time.
	Latest time.Time
}

// Destination is a destination with its key loaded and transforms bound.
type Destination struct {
	Name    string
	Purpose string
	Output  string
	// Key is the destination's key, or nil when it uses none.
	Key *Key
	// Bindings say how each dataset the destination receives is treated.
	Bindings []*Binding
	Pos      Pos
}

// Binding is the treatment of one dataset in one destination.
type Binding struct {
	Dataset *Dataset
	// Columns holds the treatment of every classified column, by name.
	Columns map[string]*BoundColumn
	// QuasiIdentifiers and MinK are the binding's re-identification risk
	// measure and, with MinK, its enforcement (see BindingDecl).
	QuasiIdentifiers []string
	MinK             int
}

// BoundColumn is a column's treatment with its transform bound.
type BoundColumn struct {
	Name     string
	Semantic *SemanticType
	Spec     *transforms.Spec
	Params   transforms.Params
	// Transform is the bound transform; nil when Spec.Drops.
	Transform transforms.Transform
	// Meaning says what the output column now holds (for the manifest).
	Meaning string
	// Pos is where the policy asked for this treatment.
	Pos Pos
	// Default marks the purpose's default treatment (the destination names
	// no treatment for the column).
	Default bool
	// Allow is the policy's reason for a treatment below the purpose's floor.
	Allow string
}

// CompileOptions are the inputs of Compile besides the policy.
type CompileOptions struct {
	// Now is the reference instant of the run (read once by the caller).
	Now time.Time
	// Lookup reads environment variables for env: keys.
	Lookup LookupEnv
	// Destinations, when not empty, selects destinations by name.
	Destinations []string
}

// Compile loads the keys the selected destinations reference, binds their
// transforms and computes the datasets' retention cut-offs. Errors are
// ErrorList values that match ErrPolicy.
func Compile(p *Policy, opt CompileOptions) (*Plan, error) {
	plan := &Plan{Policy: p, Now: opt.Now.UTC()}
	var errs ErrorList
	fail := func(pos Pos, path, format string, args ...any) {
		errs = append(errs, &Error{File: pos.File, Line: pos.Line, Column: pos.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	selected := map[string]bool{}
	for _, name := range opt.Destinations {
		selected[name] = true
		found := false
		for _, d := range p.Destinations {
			found = found || d.Name == name
		}
		if !found {
			fail(Pos{File: p.File}, "destinations", "no destination named %q", name)
		}
	}
	keys := map[string]*Key{}
	keyUsers := map[string][]string{}
	datasets := map[string]*Dataset{}
	for _, decl := range p.Destinations {
		if len(selected) > 0 && !selected[decl.Name] {
			continue
		}
		dst := &Destination{Name: decl.Name, Purpose: decl.Purpose, Output: decl.Output, Pos: decl.Pos}
		if decl.Key != "" {
			k, ok := keys[decl.Key]
			if !ok {
				kd := p.key(decl.Key)
				var err error
				k, err = loadKey(kd.Name, kd.Ref, filepath.Dir(p.File), opt.Lookup, kd.Allow)
				if err != nil {
					fail(kd.Pos, "keys."+kd.Name, "%v", err)
					continue
				}
				if k.Allowed() != "" {
					plan.Warnings = append(plan.Warnings, fmt.Sprintf(
						"key %q: its file %q is readable by every user; allowed at %s: %s", kd.Name, kd.Ref.Name, kd.Pos, kd.Allow))
				}
				keys[decl.Key] = k
			}
			dst.Key = k
			keyUsers[decl.Key] = append(keyUsers[decl.Key], decl.Name)
			if prev := sameKeyBytes(plan.Destinations, dst); prev != nil && decl.KeyAllow == "" {
				fail(decl.KeyPos, "destinations."+decl.Name+".key",
					"key %q of destination %q has the same bytes (fingerprint %s) as key %q of destination %q: their pseudonyms could be joined with each other; "+
						"give each destination its own key (openssl rand -hex 32), or state why: key: {name: %s, allow: \"reason\"}",
					decl.Key, decl.Name, k.Fingerprint(), prev.Key.Name(), prev.Name, decl.Key)
			}
		}
		env := transforms.Env{Now: plan.Now}
		if dst.Key != nil {
			env.Key = dst.Key.Secret()
		}
		for _, b := range decl.Datasets {
			ds, ok := datasets[b.Dataset]
			if !ok {
				ds = &Dataset{DatasetDecl: p.Dataset(b.Dataset)}
				ds.Latest = LatestEventTime(ds.DatasetDecl, plan.Now)
				if r := ds.Retention; r != nil {
					loc := ds.TimeZone
					if loc == nil {
						loc = time.UTC
					}
					ds.Cutoff = r.Keep.Before(plan.Now, loc)
					if f := r.OnNullFallback; f != nil {
						ds.FallbackCutoff = f.Keep.Before(plan.Now, loc)
					}
				}
				datasets[b.Dataset] = ds
				plan.Datasets = append(plan.Datasets, ds)
			}
			if c := ds.Children; c != nil && c.UnknownAgeKeep != "" && decl.Purpose == PartnerSharing && c.Excludes(decl.Name) {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf(
					"destination %q: dataset %q: rows whose age cannot be told are kept (children.unknown_age.keep at %s): %s",
					decl.Name, b.Dataset, c.UnknownAgePos, c.UnknownAgeKeep))
			}
			bind := &Binding{Dataset: ds, Columns: map[string]*BoundColumn{}, QuasiIdentifiers: b.QuasiIdentifiers, MinK: b.MinK}
			for _, t := range b.Columns {
				bc := &BoundColumn{
					Name: t.Column, Semantic: ds.Column(t.Column).Type, Spec: t.Transform, Params: t.Params,
					Meaning: t.Transform.Describe(t.Params), Pos: t.Pos, Default: t.Default, Allow: t.Allow,
				}
				if t.Allow != "" {
					plan.Warnings = append(plan.Warnings, fmt.Sprintf(
						"destination %q: dataset %q, column %q gets %s, below the %s floor for %s columns; allowed at %s: %s",
						decl.Name, b.Dataset, t.Column, t.Transform.Name, decl.Purpose, bc.Semantic.Category, t.Pos, t.Allow))
				}
				if !t.Transform.Drops {
					tr, err := t.Transform.New(t.Params, env)
					if err != nil {
						fail(t.Pos, "destinations."+decl.Name+".datasets."+b.Dataset+".columns."+t.Column, "%s: %v", t.Transform.Name, err)
						continue
					}
					bc.Transform = tr
				}
				bind.Columns[t.Column] = bc
			}
			dst.Bindings = append(dst.Bindings, bind)
		}
		plan.Destinations = append(plan.Destinations, dst)
	}
	if p.AuditKey != nil {
		k, err := LoadAuditKey(p, opt.Lookup)
		if err != nil {
			fail(p.AuditKey.Pos, "audit_key", "%v", err)
		}
		if k != nil && k.Allowed() != "" {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf(
				"audit_key: its file %q is readable by every user; allowed at %s: %s", p.AuditKey.Ref.Name, p.AuditKey.Pos, k.Allowed()))
		}
		for _, dk := range keys {
			if k != nil && dk.Fingerprint() == k.Fingerprint() {
				fail(p.AuditKey.Pos, "audit_key", "the audit key has the same bytes as key %q: the key that signs reports must be held apart from pseudonym keys (generate another: openssl rand -hex 32)", dk.Name())
				k = nil
			}
		}
		plan.AuditKey = k
	}
	for name, k := range keys {
		plan.Keys = append(plan.Keys, k)
		if users := keyUsers[name]; len(users) > 1 {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf(
				"destinations %q share key %q: their pseudonyms can be joined with each other; allowed: %s", users, name, sharingReasons(p, users[1:])))
		}
	}
	sort.Slice(plan.Keys, func(i, j int) bool { return plan.Keys[i].Name() < plan.Keys[j].Name() })
	sort.Strings(plan.Warnings)
	// keep datasets in policy order
	sort.SliceStable(plan.Datasets, func(i, j int) bool {
		return datasetIndex(p, plan.Datasets[i].Name) < datasetIndex(p, plan.Datasets[j].Name)
	})
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return plan, nil
}

// sameKeyBytes returns the first compiled destination whose key is another
// key name with the same bytes as dst's, or nil.
func sameKeyBytes(done []*Destination, dst *Destination) *Destination {
	for _, o := range done {
		if o.Key != nil && o.Key.Name() != dst.Key.Name() && o.Key.Fingerprint() == dst.Key.Fingerprint() {
			return o
		}
	}
	return nil
}

// sharingReasons lists the reasons the named destinations state for sharing
// their key.
func sharingReasons(p *Policy, names []string) string {
	var out []string
	for _, d := range p.Destinations {
		for _, n := range names {
			if d.Name == n && d.KeyAllow != "" {
				out = append(out, fmt.Sprintf("%s (destination %q at %s)", d.KeyAllow, d.Name, d.KeyPos))
			}
		}
	}
	return strings.Join(out, "; ")
}

// LoadAuditKey loads the policy's audit key, the key that signs reports; it
// returns nil and no error when the policy declares none.
func LoadAuditKey(p *Policy, lookup LookupEnv) (*Key, error) {
	if p.AuditKey == nil {
		return nil, nil
	}
	return loadKey("audit_key", p.AuditKey.Ref, filepath.Dir(p.File), lookup, p.AuditKey.Allow)
}

func datasetIndex(p *Policy, name string) int {
	for i, ds := range p.Datasets {
		if ds.Name == name {
			return i
		}
	}
	return -1
}

// Binding returns the destination's binding of dataset name, or nil.
func (d *Destination) Binding(dataset string) *Binding {
	for _, b := range d.Bindings {
		if b.Dataset.Name == dataset {
			return b
		}
	}
	return nil
}
