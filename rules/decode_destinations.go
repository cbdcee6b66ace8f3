package rules

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/deidproject/deid/transforms"
)

// This file decodes the destinations of a policy: each destination's
// bindings of datasets, the treatment of every column (declared or the
// purpose's default, checked against the purpose's floors) and the
// re-identification risk settings.

func (d *decoder) destinations(n *yaml.Node, path string, p *Policy) []*DestinationDecl {
	var out []*DestinationDecl
	d.entries(n, path, func(name string, k, v *yaml.Node, dp string) {
		if !validName(name) {
			d.errorf(k, dp, "destination name %q: use letters, digits, '_' and '-'", name)
		}
		dst := &DestinationDecl{Name: name, Pos: d.pos(k)}
		var bindings *yaml.Node
		d.mapping(v, dp,
			field{"purpose", true, func(n *yaml.Node, path string) { dst.Purpose = d.enum(n, path, Purposes...) }},
			field{"output", true, func(n *yaml.Node, path string) {
				dst.OutputPos, dst.Output = d.pos(resolve(n)), resolvePath(filepath.Dir(p.File), d.str(n, path))
			}},
			field{"key", false, func(n *yaml.Node, path string) { d.destinationKey(n, path, p, dst) }},
			field{"datasets", true, func(n *yaml.Node, _ string) { bindings = n }},
		)
		if bindings != nil {
			dst.Datasets = d.bindings(bindings, join(dp, "datasets"), p, dst)
		}
		out = append(out, dst)
	})
	// an output over a source, a list, a key file, the policy or another
	// output harms the lake or publishes a secret
	d.checkLocations(p, out)
	d.sharedKeys(out, path)
	return out
}

// destinationKey decodes a destination's key: a key name, or
// {name: KEY, allow: REASON} where allow states why the key is shared with
// another destination.
func (d *decoder) destinationKey(n *yaml.Node, path string, p *Policy, dst *DestinationDecl) {
	n = resolve(n)
	dst.KeyPos = d.pos(n)
	nameNode, namePath := n, path
	if n.Kind == yaml.MappingNode {
		d.mapping(n, path,
			field{"name", true, func(v *yaml.Node, vp string) { nameNode, namePath = resolve(v), vp }},
			field{"allow", false, func(v *yaml.Node, vp string) { dst.KeyAllow = d.str(v, vp) }},
		)
		if nameNode == n {
			return
		}
	}
	dst.Key = d.str(nameNode, namePath)
	if dst.Key != "" && p.key(dst.Key) == nil {
		d.errorf(nameNode, namePath, "no key named %q in keys:%s", dst.Key, p.keyHint())
	}
}

// sharedKeys refuses a key used by two destinations, whose pseudonyms could
// then be joined with each other, unless the second states why.
func (d *decoder) sharedKeys(dsts []*DestinationDecl, path string) {
	for i, a := range dsts {
		for _, b := range dsts[:i] {
			if a.Key != "" && a.Key == b.Key && a.KeyAllow == "" {
				d.errors(a.KeyPos, join(path, a.Name+".key"),
					"destination %q uses key %q, already used by destination %q (at %s): their pseudonyms could be joined with each other; "+
						"give each destination its own key (openssl rand -hex 32), or state why: key: {name: %s, allow: \"reason\"}",
					a.Name, a.Key, b.Name, b.KeyPos, a.Key)
				break
			}
		}
	}
}

func (p *Policy) key(name string) *KeyDecl {
	for _, k := range p.Keys {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func (p *Policy) keyHint() string {
	if len(p.Keys) == 0 {
		return " (the policy declares no keys)"
	}
	names := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		names[i] = k.Name
	}
	return " (declared: " + strings.Join(names, ", ") + ")"
}

// Dataset returns the dataset called name, or nil.
func (p *Policy) Dataset(name string) *DatasetDecl {
	for _, ds := range p.Datasets {
		if ds.Name == name {
			return ds
		}
	}
	return nil
}

func (d *decoder) bindings(n *yaml.Node, path string, p *Policy, dst *DestinationDecl) []*BindingDecl {
	var out []*BindingDecl
	d.entries(n, path, func(name string, k, v *yaml.Node, bp string) {
		b := &BindingDecl{Dataset: name, Pos: d.pos(k)}
		ds := p.Dataset(name)
		if ds == nil {
			d.errorf(k, bp, "no dataset named %q in datasets", name)
			return
		}
		var cols, qis, minK *yaml.Node
		if rv := resolve(v); !(rv.Kind == yaml.ScalarNode && (rv.Tag == "!!null" || rv.Value == "")) {
			d.mapping(v, bp, field{"columns", false, func(n *yaml.Node, _ string) { cols = n }},
				field{"quasi_identifiers", false, func(n *yaml.Node, _ string) { qis = n }},
				field{"min_k", false, func(n *yaml.Node, _ string) { minK = n }})
		}
		if cols != nil {
			d.entries(cols, join(bp, "columns"), func(col string, k, v *yaml.Node, cp string) {
				if ds.Column(col) == nil {
					d.errorf(k, cp, "column %q is not among the columns of dataset %q", col, ds.Name)
					return
				}
				if t := d.treatment(ds.Column(col), v, cp, dst); t != nil {
					if t.Transform.Subject && ds.Subject == "" {
						d.errorf(resolve(v), cp, "%s needs the data subject of each row: name the dataset's subject column (datasets.%s.subject)", t.Transform.Name, ds.Name)
					}
					b.Columns = append(b.Columns, t)
				}
			})
		}
		// columns the destination does not name get the purpose's default
		purpose, _ := LookupPurpose(dst.Purpose)
		for _, c := range ds.Columns {
			if b.treatment(c.Name) != nil || d.hasErrorAt(join(join(bp, "columns"), c.Name)) || purpose == nil {
				continue
			}
			if t := d.defaultTreatment(c, purpose, b.Pos, join(join(bp, "columns"), c.Name), dst); t != nil {
				b.Columns = append(b.Columns, t)
			}
		}
		d.riskColumns(qis, minK, bp, ds, b)
		out = append(out, b)
	})
	return out
}

// hasErrorAt reports whether a problem was already recorded at path.
func (d *decoder) hasErrorAt(path string) bool {
	for _, e := range d.errs {
		if e.Path == path || strings.HasPrefix(e.Path, path+".") {
			return true
		}
	}
	return false
}

func (b *BindingDecl) treatment(col string) *TreatmentDecl {
	for _, t := range b.Columns {
		if t.Column == col {
			return t
		}
	}
	return nil
}

// defaultTreatment binds the purpose's default treatment of column c.
func (d *decoder) defaultTreatment(c *ColumnDecl, purpose *Purpose, pos Pos, path string, dst *DestinationDecl) *TreatmentDecl {
	def := purpose.Default(c.Type)
	spec, err := transforms.Lookup(def.Transform)
	if err == nil {
		var full transforms.Params
		if full, err = spec.Validate(def.Params); err == nil {
			if spec.Keyed && dst.Key == "" {
				d.errors(pos, path, "the %s default for %s columns is %s, which needs a key: give destination %q a key: or name another treatment for column %q",
					purpose.Name, c.Type.Name, spec.Name, dst.Name, c.Name)
				return nil
			}
			return &TreatmentDecl{Column: c.Name, Transform: spec, Params: full, Pos: pos, Default: true}
		}
	}
	d.errors(pos, path, "default treatment %s of column %q: %v", def, c.Name, err) // a defect of deid's purpose table
	return nil
}

// treatment decodes "transform" or {transform: name, allow: reason, param:
// value, ...} for column c and checks it against the destination's floor.
func (d *decoder) treatment(c *ColumnDecl, v *yaml.Node, path string, dst *DestinationDecl) *TreatmentDecl {
	col := c.Name
	v = resolve(v)
	var nameNode, allowNode *yaml.Node
	var allow string
	namePath := path
	var params [][2]*yaml.Node // key and value nodes of the parameters
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			d.errorf(v, path, "no treatment: a bare null (or nothing) is YAML's empty value; for the null transform write it in quotes, \"null\"")
			return nil
		}
		nameNode = v
	case yaml.MappingNode:
		d.entries(v, path, func(key string, k, val *yaml.Node, p string) {
			switch key {
			case "transform":
				nameNode = val
			case "allow":
				allowNode, allow = resolve(val), d.str(val, p)
			default:
				params = append(params, [2]*yaml.Node{k, val})
			}
		})
		if nameNode == nil {
			d.errorf(v, path, "missing required key %q", "transform")
			return nil
		}
		namePath = join(path, "transform")
	default:
		d.errorf(v, path, "must be a transform name or a mapping with transform: and its parameters, got %s", kindName(v))
		return nil
	}
	name := d.str(nameNode, namePath)
	if name == "" {
		return nil
	}
	spec, err := transforms.Lookup(name)
	if err != nil {
		d.errorf(resolve(nameNode), namePath, "%v", err)
		return nil
	}
	raw := map[string]any{}
	ok := true
	for _, kv := range params {
		k, val := kv[0], kv[1]
		ps := spec.Param(k.Value)
		if ps == nil {
			d.errorf(k, join(path, k.Value), "%s has no parameter %q%s", name, k.Value, spec.ParamHint())
			ok = false
			continue
		}
		pv, valid := d.paramValue(val, join(path, k.Value), ps.Kind)
		if !valid {
			ok = false
			continue
		}
		if err := ps.Check(pv); err != nil {
			d.errorf(resolve(val), join(path, k.Value), "%v", err)
			ok = false
			continue
		}
		raw[k.Value] = pv
	}
	if !ok {
		return nil
	}
	full, err := spec.Validate(raw)
	if err != nil {
		d.errorf(v, path, "%v", err)
		return nil
	}
	if dst != nil && spec.Keyed && dst.Key == "" {
		d.errorf(resolve(nameNode), namePath, "%s needs a key: give destination %q a key: (a separate one per destination, so pseudonyms do not join across recipients)", name, dst.Name)
	}
	if purpose, err := destinationPurpose(dst); err == nil && c.Type != nil {
		meets := purpose.Meets(c.Type, spec)
		switch {
		case !meets && allow == "":
			d.errorf(resolve(nameNode), namePath, "%s leaves this %s column %s, below what purpose %s requires for %s columns (%s): use a stronger treatment (the default is %s) or state why with allow: \"<reason>\"",
				name, c.Type.Name, spec.Result, purpose.Name, c.Type.Category, purpose.Floor(c.Type), purpose.Default(c.Type))
		case meets && allowNode != nil:
			d.errorf(allowNode, join(path, "allow"), "%s meets the floor of purpose %s for %s columns: remove allow", name, purpose.Name, c.Type.Category)
		}
	}
	return &TreatmentDecl{Column: col, Transform: spec, Params: full, Pos: d.pos(v), Allow: allow}
}

// riskColumns decodes a binding's quasi_identifiers and min_k: columns of
// the dataset, each once, that the destination does not drop (the risk is
// measured on the output), and a class size of 2 to 1000.
func (d *decoder) riskColumns(qis, minK *yaml.Node, bp string, ds *DatasetDecl, b *BindingDecl) {
	if qis != nil {
		path := join(bp, "quasi_identifiers")
		names, _ := d.stringList(qis, path)
		seen := map[string]bool{}
		for i, name := range names {
			item := resolve(qis).Content[i]
			ip := fmt.Sprintf("%s[%d]", path, i)
			switch t := b.treatment(name); {
			case name == "":
			case ds.Column(name) == nil:
				d.errorf(item, ip, "column %q is not among the columns of dataset %q", name, ds.Name)
			case seen[name]:
				d.errorf(item, ip, "column %q is listed twice", name)
			case t != nil && t.Transform.Drops:
				d.errorf(item, ip, "column %q is dropped in this destination (%s): the risk is measured on the output, so list only columns it keeps", name, t.Transform.Name)
			default:
				b.QuasiIdentifiers = append(b.QuasiIdentifiers, name)
			}
			seen[name] = true
		}
		if len(names) == 0 && resolve(qis).Kind == yaml.SequenceNode {
			d.errorf(resolve(qis), path, "list at least one column, or leave quasi_identifiers out")
		}
	}
	if minK != nil {
		path := join(bp, "min_k")
		if k, ok := d.integer(minK, path); ok {
			switch {
			case k < 2 || k > 1000:
				d.errorf(resolve(minK), path, "min_k %d: the smallest class size accepted is 2 to 1000", k)
			case qis == nil:
				d.errorf(resolve(minK), path, "min_k needs quasi_identifiers: the columns whose combinations make the classes")
			default:
				b.MinK = int(k)
			}
		}
	}
}
