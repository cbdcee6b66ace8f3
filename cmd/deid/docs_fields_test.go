package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestFieldsReference: docs/reference/reports.md, every field of the
// report, retain report, verify.json and manifest, is generated from the
// Go types that write them and their doc comments (go test ./cmd/deid
// -run Reference -update).
func TestFieldsReference(t *testing.T) {
	root := repoRoot(t)
	types := map[string]*ast.StructType{}
	docs := map[string]string{}
	parse := func(dir string, only ...string) {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, filepath.Join(root, dir), func(fi fs.FileInfo) bool {
			n := fi.Name()
			if strings.HasSuffix(n, "_test.go") {
				return false
			}
			return len(only) == 0 || slices.Contains(only, n)
		}, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			for _, f := range p.Files {
				for _, d := range f.Decls {
					g, ok := d.(*ast.GenDecl)
					if !ok || g.Tok != token.TYPE {
						continue
					}
					for _, s := range g.Specs {
						ts := s.(*ast.TypeSpec)
						if st, ok := ts.Type.(*ast.StructType); ok && ts.Name.IsExported() {
							types[ts.Name.Name] = st
							doc := ts.Doc
							if doc == nil {
								doc = g.Doc
							}
							docs[ts.Name.Name] = doc.Text()
						}
					}
				}
			}
		}
	}
	parse("pipeline/report")
	parse("pipeline/output", "manifest.go")
	checkGenerated(t, filepath.Join(root, "docs", "reference", "reports.md"), fieldsReference(types, docs))
}

// fieldsReference renders the documents' fields, type by type, from the
// roots down, each type once.
func fieldsReference(types map[string]*ast.StructType, docs map[string]string) string {
	var b strings.Builder
	b.WriteString("# Report and manifest fields\n\n")
	b.WriteString("<!-- generated from the Go types of pipeline/report and pipeline/output/manifest.go by go test ./cmd/deid -run FieldsReference -update; do not edit -->\n\n")
	b.WriteString("Every JSON document deid writes, field by field, with the doc comment of the Go field that writes it. Fields are\n")
	b.WriteString("only ever added (a document's `format` names its version); a field marked *omitted when empty* is absent rather than\n")
	b.WriteString("`null`, `0`, `\"\"` or `[]`. How to check them: [reports for auditors](../guide/auditing.md).\n\n")
	roots := []struct{ name, file string }{
		{"Run", "`_reports/<run id>/report.json`, a run's signed report"},
		{"Retain", "the retain report (`deid retain --report FILE`, `--json`)"},
		{"Verification", "`_reports/<run id>/verify.json`, what `deid verify` found"},
		{"Manifest", "`_manifest.json`, an output's list of published files"},
	}
	b.WriteString("| document | type |\n|---|---|\n")
	for _, r := range roots {
		fmt.Fprintf(&b, "| %s | [%s](#%s) |\n", r.file, r.name, strings.ToLower(r.name))
	}
	seen := map[string]bool{}
	queue := []string{}
	for _, r := range roots {
		queue = append(queue, r.name)
		seen[r.name] = true
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		st := types[name]
		fmt.Fprintf(&b, "\n## %s\n\n", name)
		if d := oneLine(docs[name]); d != "" {
			fmt.Fprintf(&b, "%s\n\n", d)
		}
		b.WriteString("| field | type | meaning |\n|---|---|---|\n")
		var next []string
		writeFields(&b, st, types, &next)
		sort.Strings(next)
		for _, n := range next {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	return b.String()
}

// writeFields writes a row per JSON field of st (embedded structs
// inlined) and appends the struct types it refers to.
func writeFields(b *strings.Builder, st *ast.StructType, types map[string]*ast.StructType, next *[]string) {
	last := "" // the doc of the field before: "RowsIn and RowsKept total ..." covers both
	for _, f := range st.Fields.List {
		tag := ""
		if f.Tag != nil {
			tag = reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if len(f.Names) == 0 { // embedded
			if n := typeName(f.Type); types[n] != nil && name == "" {
				writeFields(b, types[n], types, next)
				continue
			}
		}
		for _, id := range f.Names {
			if !id.IsExported() {
				continue
			}
			field := name
			if field == "" {
				field = id.Name
			}
			doc := oneLine(f.Doc.Text() + " " + f.Comment.Text())
			if doc == "" && regexp.MustCompile(`\b`+id.Name+`\b`).MatchString(last) {
				doc = last
			}
			last = doc
			if strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
				doc = strings.TrimSpace(doc + " *Omitted when empty.*")
			}
			fmt.Fprintf(b, "| `%s` | %s | %s |\n", field, jsonType(f.Type, types, next), cell(doc))
		}
	}
}

// typeName returns the name of the named type t refers to (through
// pointers and package qualifiers).
func typeName(t ast.Expr) string {
	switch x := t.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.StarExpr:
		return typeName(x.X)
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}

// jsonType describes t as JSON, linking the struct types it names.
func jsonType(t ast.Expr, types map[string]*ast.StructType, next *[]string) string {
	switch x := t.(type) {
	case *ast.StarExpr:
		return jsonType(x.X, types, next)
	case *ast.ArrayType:
		if id, ok := x.Elt.(*ast.Ident); ok && id.Name == "byte" {
			return "base64 string"
		}
		return "list of " + jsonType(x.Elt, types, next)
	case *ast.MapType:
		return "object of " + jsonType(x.Value, types, next)
	case *ast.SelectorExpr:
		if x.Sel.Name == "Time" {
			return "RFC 3339 time"
		}
		if x.Sel.Name == "Duration" {
			return "nanoseconds"
		}
		if x.Sel.Name == "RawMessage" {
			return "JSON"
		}
		return namedType(x.Sel.Name, types, next)
	case *ast.Ident:
		switch x.Name {
		case "string":
			return "string"
		case "bool":
			return "boolean"
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			return "integer"
		case "float32", "float64":
			return "number"
		case "any":
			return "any"
		}
		return namedType(x.Name, types, next)
	case *ast.InterfaceType:
		return "any"
	}
	return "value"
}

func namedType(name string, types map[string]*ast.StructType, next *[]string) string {
	if types[name] == nil {
		return name // a named string or number type
	}
	*next = append(*next, name)
	return fmt.Sprintf("[%s](#%s)", name, strings.ToLower(name))
}

// oneLine joins a doc comment's lines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
