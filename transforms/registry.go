package transforms

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// ParamKind is the type of a transform parameter.
type ParamKind int

// Parameter kinds.
const (
	ParamString     ParamKind = iota // a string
	ParamInt                         // a signed integer
	ParamBool                        // true or false
	ParamStringList                  // a list of strings
	ParamIntList                     // a list of signed integers
	ParamFloatList                   // a list of finite numbers
)

// String names the kind as documentation and error messages show it.
func (k ParamKind) String() string {
	switch k {
	case ParamString:
		return "string"
	case ParamInt:
		return "integer"
	case ParamBool:
		return "boolean"
	case ParamStringList:
		return "list of strings"
	case ParamIntList:
		return "list of integers"
	case ParamFloatList:
		return "list of numbers"
	}
	return fmt.Sprintf("ParamKind(%d)", int(k))
}

// ParamSpec describes one parameter of a transform.
type ParamSpec struct {
	// Name is the parameter's key in a policy.
	Name string
	// Kind is its type.
	Kind ParamKind
	// Default is used when the policy omits the parameter. A nil Default
	// makes the parameter required. Its Go type follows Kind: string, int64,
	// bool, []string, []int64 or []float64.
	Default any
	// Enum, when set, lists the values a string (or each element of a string
	// list) may take.
	Enum []string
	// Min and Max bound an integer parameter, or each element of an integer
	// list (both inclusive; both zero means unbounded).
	Min, Max int64
	// Ascending requires an integer or number list to be strictly ascending.
	Ascending bool
	// Doc is one sentence for the policy reference.
	Doc string
}

// Params are the validated parameters of one use of a transform: every
// declared parameter is present, with the Go type its kind names.
type Params map[string]any

// String returns the string parameter name.
func (p Params) String(name string) string { s, _ := p[name].(string); return s }

// Int returns the integer parameter name.
func (p Params) Int(name string) int64 { i, _ := p[name].(int64); return i }

// Bool returns the boolean parameter name.
func (p Params) Bool(name string) bool { b, _ := p[name].(bool); return b }

// Strings returns the string-list parameter name.
func (p Params) Strings(name string) []string { l, _ := p[name].([]string); return l }

// Ints returns the integer-list parameter name.
func (p Params) Ints(name string) []int64 { l, _ := p[name].([]int64); return l }

// Floats returns the number-list parameter name.
func (p Params) Floats(name string) []float64 { l, _ := p[name].([]float64); return l }

// Spec is a registry entry: everything the policy language, validation and
// documentation need to know about a transform.
type Spec struct {
	// Name is the transform's name in policies.
	Name string
	// Summary is one line for the policy reference.
	Summary string
	// Inputs are the kinds of columns the transform accepts.
	Inputs []Kind
	// Params are the transform's parameters, in documentation order.
	Params []ParamSpec
	// Keyed transforms need the destination's key.
	Keyed bool
	// Subject means the transform needs each row's data subject: it
	// implements SubjectAware, and the dataset must name its subject column.
	Subject bool
	// Drops means the column does not appear in the output at all; New is
	// nil for such a spec.
	Drops bool
	// Result says what the transform leaves of the value.
	Result Result
	// Example shows the transform on one value, "input → output".
	Example string
	// New binds the transform to validated parameters and the environment.
	New func(p Params, env Env) (Transform, error)
	// Describe says in one sentence what an output column now holds, for the
	// manifest ("HMAC-SHA256 pseudonym, 32 hex characters").
	Describe func(p Params) string
}

// registry lists every transform in documentation order. It is assembled here,
// explicitly, so that the set of transforms is visible in one place.
var registry = []*Spec{
	keepSpec,
	dropSpec,
	nullSpec,
	redactSpec,
	pseudonymizeSpec,
	maskSpec,
	generalizeIPSpec,
	urlStripSpec,
	scrubSpec,
	generalizeAddressSpec,
	truncateTimeSpec,
	shiftDateSpec,
	roundSpec,
	bucketSpec,
	birthYearSpec,
	ageBandSpec,
}

// Registry returns the registered transforms in documentation order.
func Registry() []*Spec {
	out := make([]*Spec, len(registry))
	copy(out, registry)
	return out
}

// Lookup returns the transform registered under name.
func Lookup(name string) (*Spec, error) {
	for _, s := range registry {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, len(registry))
	for i, s := range registry {
		names[i] = s.Name
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown transform %q (known: %s)", name, strings.Join(names, ", "))
}

// Bind validates raw parameter values against the spec, fills in defaults and
// returns the bound transform. raw holds values of the Go types ParamSpec
// documents; unknown names are an error. Bind is what tests and tools use; the
// policy language validates each parameter itself to report its position and
// then calls New.
func (s *Spec) Bind(raw map[string]any, env Env) (Transform, Params, error) {
	p, err := s.Validate(raw)
	if err != nil {
		return nil, nil, err
	}
	if s.Drops {
		return nil, p, nil
	}
	t, err := s.New(p, env)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return t, p, nil
}

// Validate checks raw parameter values and returns them with defaults filled in.
func (s *Spec) Validate(raw map[string]any) (Params, error) {
	p := Params{}
	for name := range raw {
		if s.Param(name) == nil {
			return nil, fmt.Errorf("%s: unknown parameter %q%s", s.Name, name, s.ParamHint())
		}
	}
	for i := range s.Params {
		ps := &s.Params[i]
		v, ok := raw[ps.Name]
		if !ok {
			if ps.Default == nil {
				return nil, fmt.Errorf("%s: parameter %q is required", s.Name, ps.Name)
			}
			v = ps.Default
		}
		if err := ps.Check(v); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		p[ps.Name] = v
	}
	return p, nil
}

// Param returns the parameter named name, or nil.
func (s *Spec) Param(name string) *ParamSpec {
	for i := range s.Params {
		if s.Params[i].Name == name {
			return &s.Params[i]
		}
	}
	return nil
}

// ParamHint lists the spec's parameters for error messages, with a leading
// space: " (parameters: unit, zone)" or " (it takes no parameters)".
func (s *Spec) ParamHint() string {
	if len(s.Params) == 0 {
		return " (it takes no parameters)"
	}
	names := make([]string, len(s.Params))
	for i, p := range s.Params {
		names[i] = p.Name
	}
	return " (parameters: " + strings.Join(names, ", ") + ")"
}

// Check validates one value of the parameter.
func (ps *ParamSpec) Check(v any) error {
	switch ps.Kind {
	case ParamString:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("parameter %q must be a string", ps.Name)
		}
		return ps.checkEnum(s)
	case ParamInt:
		i, ok := v.(int64)
		if !ok {
			return fmt.Errorf("parameter %q must be an integer", ps.Name)
		}
		return ps.checkRange(i)
	case ParamBool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("parameter %q must be true or false", ps.Name)
		}
	case ParamStringList:
		l, ok := v.([]string)
		if !ok {
			return fmt.Errorf("parameter %q must be a list of strings", ps.Name)
		}
		if len(l) == 0 {
			return fmt.Errorf("parameter %q must not be empty", ps.Name)
		}
		for _, s := range l {
			if err := ps.checkEnum(s); err != nil {
				return err
			}
		}
	case ParamIntList:
		l, ok := v.([]int64)
		if !ok {
			return fmt.Errorf("parameter %q must be a list of integers", ps.Name)
		}
		if len(l) == 0 {
			return fmt.Errorf("parameter %q must not be empty", ps.Name)
		}
		for i, x := range l {
			if err := ps.checkRange(x); err != nil {
				return err
			}
			if ps.Ascending && i > 0 && x <= l[i-1] {
				return fmt.Errorf("parameter %q must be strictly ascending: %d follows %d", ps.Name, x, l[i-1])
			}
		}
	case ParamFloatList:
		l, ok := v.([]float64)
		if !ok {
			return fmt.Errorf("parameter %q must be a list of numbers", ps.Name)
		}
		if len(l) == 0 {
			return fmt.Errorf("parameter %q must not be empty", ps.Name)
		}
		for i, x := range l {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("parameter %q: %v is not a finite number", ps.Name, x)
			}
			if ps.Ascending && i > 0 && x <= l[i-1] {
				return fmt.Errorf("parameter %q must be strictly ascending: %v follows %v", ps.Name, x, l[i-1])
			}
		}
	default:
		return fmt.Errorf("parameter %q has unknown kind %s", ps.Name, ps.Kind)
	}
	return nil
}

func (ps *ParamSpec) checkRange(i int64) error {
	if (ps.Min != 0 || ps.Max != 0) && (i < ps.Min || i > ps.Max) {
		return fmt.Errorf("parameter %q must be between %d and %d, got %d", ps.Name, ps.Min, ps.Max, i)
	}
	return nil
}

func (ps *ParamSpec) checkEnum(s string) error {
	if len(ps.Enum) == 0 {
		return nil
	}
	for _, e := range ps.Enum {
		if s == e {
			return nil
		}
	}
	return fmt.Errorf("parameter %q: %q is not one of %s", ps.Name, s, strings.Join(ps.Enum, ", "))
}
