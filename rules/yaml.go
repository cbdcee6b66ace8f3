package rules

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/deidproject/deid/transforms"
)

// decoder walks a parsed YAML node tree and collects every problem with its
// position, instead of stopping at the first. Scalars go through environment
// substitution before they are interpreted, so all values are read from text
// (the YAML tag a scalar had before substitution does not matter).
type decoder struct {
	file   string
	lookup LookupEnv
	errs   ErrorList
}

// errorSite, when set (by this package's tests only), is told the source
// line of every errorf call that fires, so a test can check that every
// error the language can produce is exercised.
var errorSite func(pc uintptr)

// errorf records a problem at node n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	if errorSite != nil {
		if pc, _, _, ok := runtime.Caller(1); ok {
			errorSite(pc)
		}
	}
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// pos returns the position of node n.
func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Column: n.Column} }

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return "a single value"
	}
	return "something else"
}

// field is one known key of a mapping.
type field struct {
	name     string
	required bool
	decode   func(n *yaml.Node, path string)
}

// mapping decodes a mapping with a fixed set of keys. Unknown keys, duplicate
// keys and missing required keys are reported; known keys are decoded in the
// order the policy lists them.
func (d *decoder) mapping(n *yaml.Node, path string, fields ...field) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of keys, got %s", kindName(n))
		return false
	}
	seen := map[string]bool{}
	d.entries(n, path, func(key string, k, v *yaml.Node, p string) {
		for _, f := range fields {
			if f.name == key {
				seen[key] = true
				f.decode(v, p)
				return
			}
		}
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.name
		}
		sort.Strings(names)
		d.errorf(k, p, "unknown key %q (known keys: %s)", key, strings.Join(names, ", "))
	})
	for _, f := range fields {
		if f.required && !seen[f.name] {
			d.errorf(n, path, "missing required key %q", f.name)
		}
	}
	return true
}

// entries calls fn for each key of a mapping whose keys are names chosen by
// the policy author (datasets, columns, ...), in file order. Duplicate keys
// and non-scalar keys are reported.
func (d *decoder) entries(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node, path string)) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping, got %s", kindName(n))
		return
	}
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names")
			continue
		}
		// an unquoted << is YAML's merge key; a quoted "<<" (tag !!str) is a
		// name like any other, so a column called << can be classified
		if k.Tag == "!!merge" {
			d.errorf(k, path, `merge keys (<<) are not supported: write the keys out (a column named << is written "<<")`)
			continue
		}
		if prev, dup := first[k.Value]; dup {
			d.errorf(k, join(path, pathKey(k.Value)), "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		first[k.Value] = k
		fn(k.Value, k, v, join(path, pathKey(k.Value)))
	}
}

// pathKey is a mapping key as a dotted path shows it: quoted unless it is a
// plain name (letters, digits, '_' and '-'), so that "a.b", "<<" or a name
// with an invisible character shows as what it is.
func pathKey(key string) string {
	if validName(key) {
		return key
	}
	return strconv.Quote(key)
}

// scalar returns the text of a scalar node after environment substitution.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a single value, got %s", kindName(n))
		return "", false
	}
	if n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") {
		d.errorf(n, path, "YAML tag %s is not supported", n.Tag)
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	s, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return "", false
	}
	return s, true
}

// str returns a non-empty string.
func (d *decoder) str(n *yaml.Node, path string) string {
	s, ok := d.scalar(n, path)
	if ok && strings.TrimSpace(s) == "" {
		d.errorf(resolve(n), path, "must not be empty")
	}
	return s
}

// enum returns one of the allowed values.
func (d *decoder) enum(n *yaml.Node, path string, allowed ...string) string {
	s, ok := d.scalar(n, path)
	if !ok {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.errorf(resolve(n), path, "%q is not one of %s", s, strings.Join(allowed, ", "))
	return ""
}

// integer returns a decimal integer.
func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil {
		d.errorf(resolve(n), path, "%q is not an integer", s)
		return 0, false
	}
	return v, true
}

// boolean returns true or false.
func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	d.errorf(resolve(n), path, "%q is not true or false", s)
	return false, false
}

// stringList returns a list of non-empty strings.
func (d *decoder) stringList(n *yaml.Node, path string) ([]string, bool) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, got %s", kindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		s := d.str(item, fmt.Sprintf("%s[%d]", path, i))
		if s == "" {
			ok = false
		}
		out = append(out, s)
	}
	return out, ok
}

// integerList returns a list of decimal integers.
func (d *decoder) integerList(n *yaml.Node, path string) ([]int64, bool) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, got %s", kindName(n))
		return nil, false
	}
	out := make([]int64, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		v, valid := d.integer(item, fmt.Sprintf("%s[%d]", path, i))
		ok = ok && valid
		out = append(out, v)
	}
	return out, ok
}

// number returns a finite decimal number: digits with an optional sign,
// fraction and exponent (1000, -0.5, 1e6, 1_000.25). Hexadecimal, infinities
// and NaN are refused.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, false
	}
	t := strings.ReplaceAll(s, "_", "")
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !isDecimalNumber(t) {
		d.errorf(resolve(n), path, "%q is not a number", s)
		return 0, false
	}
	return v, true
}

// isDecimalNumber reports whether s is [+-]digits[.digits][(e|E)[+-]digits].
func isDecimalNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	n := digits()
	if i < len(s) && s[i] == '.' {
		i++
		n += digits()
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// numberList returns a list of finite numbers.
func (d *decoder) numberList(n *yaml.Node, path string) ([]float64, bool) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, got %s", kindName(n))
		return nil, false
	}
	out := make([]float64, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		v, valid := d.number(item, fmt.Sprintf("%s[%d]", path, i))
		ok = ok && valid
		out = append(out, v)
	}
	return out, ok
}

// paramValue decodes a scalar or list node into the Go type a transform
// parameter of the given kind takes.
func (d *decoder) paramValue(n *yaml.Node, path string, kind transforms.ParamKind) (any, bool) {
	switch kind {
	case transforms.ParamInt:
		v, ok := d.integer(n, path)
		return v, ok
	case transforms.ParamBool:
		v, ok := d.boolean(n, path)
		return v, ok
	case transforms.ParamStringList:
		return d.stringList(n, path)
	case transforms.ParamIntList:
		return d.integerList(n, path)
	case transforms.ParamFloatList:
		return d.numberList(n, path)
	}
	s, ok := d.scalar(n, path)
	return s, ok
}
