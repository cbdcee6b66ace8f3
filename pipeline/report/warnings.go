package report

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Warn records a warning without naming the destinations it concerns. It
// concerns the whole run (the policy, the audit key), and every
// destination's report carries it, unless it starts as deid's warnings
// about some destinations, a key or a dataset do (`destination "NAME":
// ...`, `key "NAME": ...`, `dataset "NAME": ...`; see ScopeOf). Safe for
// concurrent use.
func (r *Run) Warn(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warn(msg, nil)
}

// WarnFor records a warning that concerns the named destinations only:
// ForDestination leaves it out of the others' reports. Without names it is
// Warn. A message recorded both ways concerns the whole run. Safe for
// concurrent use.
func (r *Run) WarnFor(msg string, destinations ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warn(msg, destinations)
}

func (r *Run) warn(msg string, destinations []string) {
	seen := false
	for _, w := range r.Warnings {
		seen = seen || w == msg
	}
	if !seen {
		r.Warnings = append(r.Warnings, msg)
	}
	if len(destinations) == 0 {
		delete(r.WarningDestinations, msg) // global wins
		return
	}
	if seen {
		if _, scoped := r.WarningDestinations[msg]; !scoped {
			return // already global
		}
	}
	if r.WarningDestinations == nil {
		r.WarningDestinations = map[string][]string{}
	}
	names := r.WarningDestinations[msg]
	for _, d := range destinations {
		if !slices.Contains(names, d) {
			names = append(names, d)
		}
	}
	sort.Strings(names)
	r.WarningDestinations[msg] = names
}

// ScopeOf returns the destinations a warning concerns: those WarnFor named,
// or else those its start names, as deid's warnings do: `destination
// "NAME": `; `destinations ["A" "B"] `; `key "NAME": ` for the destinations
// using that key (Keys); `dataset "NAME": ` for the destinations whose
// treatments include that dataset. Nil for a warning of the whole run.
func (r *Run) ScopeOf(msg string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.scopeOf(msg)
}

func (r *Run) scopeOf(msg string) []string {
	if ds, ok := r.WarningDestinations[msg]; ok {
		return ds
	}
	if name, ok := namedAtStart(msg, "destination "); ok {
		return []string{name}
	}
	if name, ok := namedAtStart(msg, "key "); ok {
		for _, k := range r.Keys {
			if k.Name == name && len(k.Destinations) > 0 {
				return slices.Sorted(slices.Values(k.Destinations))
			}
		}
		return nil
	}
	if rest, ok := strings.CutPrefix(msg, "destinations ["); ok {
		// destinations ["a" "b"] share key "k": ... (a %q of names)
		var names []string
		for {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			name, _ := strconv.Unquote(q)
			names = append(names, name)
			rest = strings.TrimPrefix(rest[len(q):], " ")
		}
		if strings.HasPrefix(rest, "]") && len(names) > 0 {
			sort.Strings(names)
			return names
		}
		return nil
	}
	if name, ok := namedAtStart(msg, "dataset "); ok {
		var readers []string
		for _, d := range r.Destinations {
			for _, t := range d.Datasets {
				if t.Dataset == name && !slices.Contains(readers, d.Name) {
					readers = append(readers, d.Name)
				}
			}
		}
		sort.Strings(readers)
		return readers
	}
	return nil
}

// namedAtStart returns the name msg starts with after prefix, quoted as
// %q quotes it and followed by a colon.
func namedAtStart(msg, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return "", false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil || !strings.HasPrefix(rest[len(q):], ":") {
		return "", false
	}
	name, err := strconv.Unquote(q)
	return name, err == nil
}

// WarningsFor returns the warnings that the named destination's report
// holds: the run's and the destination's own, in report order.
func (r *Run) WarningsFor(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.warningsFor(name)
}

func (r *Run) warningsFor(name string) []string {
	out := []string{}
	for _, w := range r.Warnings {
		if ds := r.scopeOf(w); ds == nil || slices.Contains(ds, name) {
			out = append(out, w)
		}
	}
	return out
}
