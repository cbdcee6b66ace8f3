package rules

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file decodes each section of a policy from its YAML nodes: keys,
// datasets, their columns, retention and lists (decode_destinations.go:
// destinations, their bindings and treatments).

// syntaxError turns a YAML parser error into a positioned policy error.
// The parser often notices an indentation mistake only where the enclosing
// block started; when the text has a line whose indentation fits no open
// block at or after that line (or the first line of a block is indented
// unlike the next, which the parser notices at the next), the error points
// there instead, keeping the parser's message.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{File: file, Msg: "invalid YAML: " + msg}
	// the parser reports "line N: ..."
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		e.Line, e.Column = line, 1
		if i := strings.Index(msg, ": "); i >= 0 {
			e.Msg = "invalid YAML: " + msg[i+2:]
		}
		if m, ok := findIndentMistake(string(data)); ok && (m.line >= line || m.firstOfBlock) {
			e.Line, e.Column = m.line, m.column
			e.Msg += fmt.Sprintf(" (this line is %s)", m.why)
		}
	}
	return e
}

// name returns an identifier: letters, digits, '_' and '-'.
func (d *decoder) name(n *yaml.Node, path string) string {
	s := d.str(n, path)
	if s != "" && !validName(s) {
		d.errorf(resolve(n), path, "%q: names use letters, digits, '_' and '-' only", s)
	}
	return s
}

func validName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func (d *decoder) keys(n *yaml.Node, path string) []*KeyDecl {
	var out []*KeyDecl
	d.entries(n, path, func(name string, k, v *yaml.Node, p string) {
		if !validName(name) {
			d.errorf(k, p, "key name %q: use letters, digits, '_' and '-'", name)
		}
		// declared even when its reference is wrong, so that destinations
		// naming it do not report a second, misleading problem
		kd := &KeyDecl{Name: name, Pos: d.pos(k)}
		out = append(out, kd)
		kd.Ref, kd.Allow = d.keyRef(v, p)
	})
	return out
}

// keyRef decodes a key reference: "ENCODING:SOURCE:NAME",
// {ref: ENCODING:SOURCE:NAME, allow: REASON} or
// {from: SOURCE:NAME, encoding: ENCODING, allow: REASON}, where allow states
// why a key file every user can read is accepted. A wrong reference is
// reported and gives a zero KeyRef.
func (d *decoder) keyRef(v *yaml.Node, p string) (KeyRef, string) {
	v = resolve(v)
	if v.Kind == yaml.ScalarNode {
		return d.keyRefText(v, p), ""
	}
	var ref KeyRef
	var from, allow string
	var fromNode, refNode, encNode *yaml.Node
	if !d.mapping(v, p,
		field{"ref", false, func(n *yaml.Node, path string) { refNode = n; ref = d.keyRefText(n, path) }},
		field{"from", false, func(n *yaml.Node, path string) { from, fromNode = d.str(n, path), resolve(n) }},
		field{"encoding", false, func(n *yaml.Node, path string) { encNode = n; ref.Encoding = d.enum(n, path, "hex", "base64") }},
		field{"allow", false, func(n *yaml.Node, path string) { allow = d.str(n, path) }},
	) {
		return KeyRef{}, ""
	}
	switch {
	case refNode != nil && (fromNode != nil || encNode != nil):
		d.errorf(v, p, "write either ref: ENCODING:SOURCE:NAME or from: and encoding:, not both")
		return KeyRef{}, allow
	case refNode != nil:
		return ref, allow
	case fromNode == nil:
		d.errorf(v, p, "missing required key %q (or from: and encoding:)", "ref")
		return KeyRef{}, allow
	case encNode == nil:
		d.errorf(v, p, "missing required key %q", "encoding")
		return KeyRef{}, allow
	}
	return d.keyRefFrom(p, from, fromNode, ref.Encoding), allow
}

// keyRefText decodes "ENCODING:SOURCE:NAME".
func (d *decoder) keyRefText(v *yaml.Node, p string) KeyRef {
	s := d.str(v, p)
	if s == "" {
		return KeyRef{}
	}
	ref, err := parseKeyRef(s)
	if err != nil {
		d.errorf(resolve(v), p, "%v", err)
		return KeyRef{}
	}
	return ref
}

// keyRefFrom decodes the {from: SOURCE:NAME, encoding: ENCODING} form; an
// empty from or encoding was reported already.
func (d *decoder) keyRefFrom(p, from string, fromNode *yaml.Node, encoding string) KeyRef {
	if from == "" || encoding == "" {
		return KeyRef{}
	}
	src, name, ok := strings.Cut(from, ":")
	if !ok {
		d.errorf(fromNode, join(p, "from"), "%q must be env:VARIABLE or file:PATH", from)
		return KeyRef{}
	}
	ref := KeyRef{Source: src, Name: name, Encoding: encoding}
	if err := ref.check(); err != nil {
		d.errorf(fromNode, join(p, "from"), "%v", err)
		return KeyRef{}
	}
	return ref
}

// auditKey decodes the policy's audit key, which signs reports. It must be
// held apart from the pseudonym keys: a reference to the same variable or
// file as one of them is an error.
func (d *decoder) auditKey(n *yaml.Node, path string, keys []*KeyDecl) *KeyDecl {
	kd := &KeyDecl{Name: path, Pos: d.pos(resolve(n))}
	kd.Ref, kd.Allow = d.keyRef(n, path)
	if kd.Ref.Source == "" {
		return kd
	}
	for _, k := range keys {
		if k.Ref.Source == kd.Ref.Source && k.Ref.Name == kd.Ref.Name {
			d.errorf(resolve(n), path, "the audit key reads the same %s as key %q: the key that signs reports must be held apart from pseudonym keys (generate another: openssl rand -hex 32)",
				map[string]string{"env": "variable", "file": "file"}[kd.Ref.Source], k.Name)
		}
	}
	return kd
}

func (d *decoder) datasets(n *yaml.Node, path, baseDir string) []*DatasetDecl {
	var out []*DatasetDecl
	d.entries(n, path, func(name string, k, v *yaml.Node, p string) {
		if !validName(name) {
			d.errorf(k, p, "dataset name %q: use letters, digits, '_' and '-'", name)
		}
		ds := &DatasetDecl{Name: name, Pos: d.pos(k), Unclassified: "fail"}
		var subjectNode, zoneNode, rootNode *yaml.Node
		var retention, erasure, consent, children, legalMin, holds, ended *yaml.Node
		d.mapping(v, p,
			field{"source", true, func(n *yaml.Node, path string) { ds.Source = resolvePath(baseDir, d.str(n, path)) }},
			field{"root", false, func(n *yaml.Node, path string) { rootNode, ds.Root = resolve(n), resolvePath(baseDir, d.str(n, path)) }},
			field{"time_zone", false, func(n *yaml.Node, path string) {
				zoneNode = resolve(n)
				if z := d.str(n, path); z != "" {
					loc, err := time.LoadLocation(z)
					if err != nil {
						d.errorf(zoneNode, path, "unknown time zone %q (use an IANA name such as Asia/Shanghai or UTC)", z)
						return
					}
					ds.TimeZone = loc
				}
			}},
			field{"subject", false, func(n *yaml.Node, path string) { subjectNode = resolve(n); ds.Subject = d.str(n, path) }},
			field{"unclassified", false, func(n *yaml.Node, path string) { ds.Unclassified = d.enum(n, path, "fail", "drop") }},
			field{"allow_empty", false, func(n *yaml.Node, path string) { ds.AllowEmpty, _ = d.boolean(n, path) }},
			field{"columns", true, func(n *yaml.Node, path string) { ds.Columns = d.columns(n, path) }},
			field{"retention", false, func(n *yaml.Node, _ string) { retention = n }},
			field{"erasure", false, func(n *yaml.Node, _ string) { erasure = n }},
			field{"consent", false, func(n *yaml.Node, _ string) { consent = n }},
			field{"children", false, func(n *yaml.Node, _ string) { children = n }},
			field{"legal_minimum", false, func(n *yaml.Node, _ string) { legalMin = n }},
			field{"holds", false, func(n *yaml.Node, _ string) { holds = n }},
			field{"ended_at", false, func(n *yaml.Node, _ string) { ended = n }},
		)
		if ds.Root != "" && ds.Source != "" && !underRoot(ds.Root, ds.Source) {
			d.errorf(rootNode, join(p, "root"), "root %q does not contain the source %q", ds.Root, ds.Source)
		}
		if ds.Subject != "" && ds.Column(ds.Subject) == nil && len(ds.Columns) > 0 {
			d.errorf(subjectNode, join(p, "subject"), "subject column %q is not among the dataset's columns", ds.Subject)
		}
		if retention != nil {
			ds.Retention = d.retention(retention, join(p, "retention"), ds)
		}
		if erasure != nil {
			ds.Erasure = d.erasure(erasure, join(p, "erasure"), ds, baseDir)
		}
		if consent != nil {
			ds.Consent = d.consent(consent, join(p, "consent"), ds, baseDir)
		}
		if children != nil {
			ds.Children = d.children(children, join(p, "children"), ds)
		}
		if legalMin != nil {
			ds.LegalMinimum = d.legalMinimum(legalMin, p, ds)
		}
		if holds != nil {
			ds.Holds = d.holds(holds, join(p, "holds"), ds, baseDir)
		}
		if ended != nil {
			ds.Ended = d.endedAt(ended, join(p, "ended_at"), ds)
		}
		out = append(out, ds)
	})
	return out
}

// underRoot reports whether pattern lies inside folder root.
func underRoot(root, pattern string) bool {
	r := strings.TrimSuffix(root, "/")
	return strings.HasPrefix(pattern, r+"/") && !strings.Contains(pattern[len(r):], "/../")
}

// resolvePath makes a relative local path relative to the policy's directory
// and cleans local paths (so no ".." reaches the file system after a link);
// URIs (gs://...) are kept.
func resolvePath(baseDir, p string) string {
	if p == "" || strings.Contains(p, "://") {
		return p
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(baseDir, p)
}

func (d *decoder) columns(n *yaml.Node, path string) []*ColumnDecl {
	var out []*ColumnDecl
	folded := map[string]*yaml.Node{} // the first key of each name under FoldName
	d.entries(n, path, func(name string, k, v *yaml.Node, p string) {
		if prev, ok := folded[FoldName(name)]; ok {
			d.errorf(k, p, "column %s and column %s (line %d) are one name once Unicode-normalized (NFC) and case-folded: "+
				"a data file cannot hold both, keep the one the data uses", QuoteName(name), QuoteName(prev.Value), prev.Line)
		} else {
			folded[FoldName(name)] = k
		}
		c := &ColumnDecl{Name: name, Pos: d.pos(k)}
		var typeNode *yaml.Node
		var typeName string
		if rv := resolve(v); rv.Kind == yaml.MappingNode {
			d.mapping(rv, p, field{"type", true, func(n *yaml.Node, path string) { typeNode, typeName = resolve(n), d.str(n, path) }})
			p = join(p, "type")
		} else {
			typeNode, typeName = rv, d.str(v, p)
		}
		if typeName == "" {
			return
		}
		st, err := LookupSemanticType(typeName)
		if err != nil {
			d.errorf(typeNode, p, "%v", err)
			return
		}
		c.Type = st
		out = append(out, c)
	})
	return out
}

func (d *decoder) retention(n *yaml.Node, path string, ds *DatasetDecl) *RetentionDecl {
	r := &RetentionDecl{Pos: d.pos(resolve(n))}
	var colNode, keepNode, thenNode, anonNode *yaml.Node
	onNull := ""
	d.mapping(n, path,
		field{"time_column", true, func(n *yaml.Node, path string) { colNode, r.TimeColumn = resolve(n), d.str(n, path) }},
		field{"keep", true, func(n *yaml.Node, path string) {
			keepNode = resolve(n)
			r.KeepPos = d.pos(keepNode)
			s := d.str(n, path)
			if s == "" {
				return
			}
			dur, err := ParseDuration(s)
			if err != nil {
				d.errorf(keepNode, path, "%v", err)
				return
			}
			r.Keep = dur
		}},
		field{"on_null", true, func(n *yaml.Node, path string) {
			if resolve(n).Kind == yaml.MappingNode {
				r.OnNullFallback = d.fallback(n, path, ds)
				return
			}
			onNull = d.enum(n, path, "keep", "remove")
		}},
		field{"then", false, func(n *yaml.Node, path string) {
			thenNode, r.Then = resolve(n), d.enum(n, path, ThenDelete, ThenAnonymize)
		}},
		field{"anonymize", false, func(n *yaml.Node, path string) { anonNode = n }},
		field{"future_skew", false, func(n *yaml.Node, path string) { r.FutureSkew = d.duration(n, path, ds) }},
	)
	r.OnNullRemove = onNull == "remove"
	d.thenAnonymize(r, thenNode, anonNode, path, ds)
	if r.TimeColumn != "" && len(ds.Columns) > 0 && ds.Column(r.TimeColumn) == nil {
		d.errorf(colNode, join(path, "time_column"), "time column %q is not among the dataset's columns", r.TimeColumn)
	}
	if r.Keep.IsCalendar() && ds.TimeZone == nil {
		d.errorf(keepNode, join(path, "keep"), "%s uses months or years, whose length depends on the calendar: declare the dataset's time_zone", r.Keep)
	}
	return r
}

func (d *decoder) erasure(n *yaml.Node, path string, ds *DatasetDecl, baseDir string) []*ErasureDecl {
	return d.subjectLists(n, path, ds, baseDir, "erasure lists",
		"erasure needs the dataset's subject column: add subject: <column>")
}

// subjectLists decodes a list of subject id lists (erasure or legal hold
// lists: what names them in errors), each {list: FILE, column: NAME}, the
// column defaulting to the dataset's subject; noSubject is the error when
// the dataset names no subject column.
func (d *decoder) subjectLists(n *yaml.Node, path string, ds *DatasetDecl, baseDir, what, noSubject string) []*ErasureDecl {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list of %s, got %s", what, kindName(n))
		return nil
	}
	if ds.Subject == "" {
		d.errorf(n, path, "%s", noSubject)
	}
	var out []*ErasureDecl
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		e := &ErasureDecl{Pos: d.pos(resolve(item)), Column: ds.Subject}
		var listNode *yaml.Node
		d.mapping(item, p,
			field{"list", true, func(n *yaml.Node, path string) { listNode, e.List = resolve(n), resolvePath(baseDir, d.str(n, path)) }},
			field{"column", false, func(n *yaml.Node, path string) { e.Column = d.str(n, path) }},
		)
		if e.List != "" && listFormat(e.List) == "" {
			d.errorf(listNode, join(p, "list"), "%q: %s are .parquet or .csv files", e.List, what)
		}
		out = append(out, e)
	}
	return out
}

// listFormat returns "parquet" or "csv" from a list's file name, or "".
func listFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet":
		return "parquet"
	case ".csv":
		return "csv"
	}
	return ""
}

// Format returns the erasure list's file format: "parquet" or "csv".
func (e *ErasureDecl) Format() string { return listFormat(e.List) }

// errors records a problem at a stored position.
func (d *decoder) errors(pos Pos, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: pos.File, Line: pos.Line, Column: pos.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}
