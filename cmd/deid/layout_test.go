package main

import (
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layoutRules are the dependency rules docs/design/architecture.md states:
// a package matching from never imports a package matching to (a trailing
// "/..." matches the package and those below it).
var layoutRules = []struct{ from, to, why string }{
	{"transforms/...", "rules/...", "transforms work on Arrow arrays and parameters, not on policies"},
	{"transforms/...", "pipeline/...", "transforms know nothing of storage or runs"},
	{"transforms/detect/...", "transforms", "detectors are below the transforms that use them"},
	{"rules/...", "pipeline/...", "the policy language compiles without the engine"},
	{"pipeline/storage/...", "pipeline", "stores know nothing of runs"},
	{"pipeline/storage", "pipeline/...", "the store interface stands alone"},
	{"pipeline/storage/...", "rules/...", "stores know no policy"},
	{"pipeline/storage/...", "transforms/...", "stores know no transform"},
	{"pipeline/report", "transforms/...", "the report records treatments as plain data"},
	{"pipeline/lock", "pipeline", "locks are below the engine"},
	{"pipeline/report", "pipeline/...", "the report is data, signature and page only"},
	{"pipeline/report", "rules/...", "the report records what rules compiled, as plain data"},
	{"pipeline/parquetio", "rules/...", "the Parquet codec knows no policy"},
	{"pipeline/parquetio", "transforms/...", "the Parquet codec knows no transform"},
	{"pipeline/parquetio", "pipeline", "the Parquet codec is below the engine"},
	{"pipeline/parquetio", "pipeline/storage/...", "the Parquet codec reads an io.ReaderAt and writes an io.Writer, whatever holds them"},
	{"pipeline/pqstore", "pipeline", "opening a stored Parquet file is below the engine"},
	{"pipeline/pqstore", "rules/...", "opening a stored Parquet file knows no policy"},
	{"pipeline/pqstore", "transforms/...", "opening a stored Parquet file knows no transform"},
	{"pipeline/output", "pipeline", "an output's layout and commit protocol are below every writer that commits"},
	{"pipeline/output", "rules/...", "an output holds files and documents, not policies"},
	{"pipeline/output", "transforms/...", "an output holds files and documents, not transforms"},
	{"pipeline/output", "pipeline/lists", "committing an output reads no subject list"},
	{"pipeline/lists", "pipeline", "the list readers are below the engine"},
	{"pipeline/lists", "pipeline/output", "reading a list knows no output layout"},
	{"pipeline/dataerr", "pipeline", "the data-error class is below everything that raises it"},
	{"pipeline/dataerr", "transforms/...", "the data-error class is below everything that raises it"},
	{"pipeline/internal/classes", "pipeline", "class counting is below the engine and deid verify"},
	{"pipeline/internal/classes", "transforms/...", "class keys hash Arrow values, not transforms"},
	{"pipeline/internal/scratch", "pipeline", "scratch parts are below the engine"},
	{"pipeline/internal/scratch", "rules/...", "scratch parts hold bytes, not policies"},
	{"pipeline/internal/scratch", "transforms/...", "scratch parts hold bytes, not transforms"},
	{"pipeline/internal/engine", "pipeline", "the scheduler is below both engines' users, run and retain"},
	{"pipeline/internal/engine", "pipeline/retain", "the scheduler is below both engines' users, run and retain"},
	{"pipeline/internal/engine", "pipeline/storage/...", "the scheduler splices into outputs its files open, whatever holds them"},
	{"pipeline/internal/engine", "rules/...", "the scheduler runs tasks, not policies"},
	{"pipeline/internal/engine", "transforms/...", "the scheduler runs tasks, not transforms"},
	{"pipeline/verify", "pipeline", "deid verify checks what a run published from the policy and the outputs alone"},
	{"pipeline/verify", "pipeline/retain", "deid verify checks what a run published from the policy and the outputs alone"},
	{"pipeline/...", "cmd/...", "the command is the top"},
	{"rules/...", "cmd/...", "the command is the top"},
	{"transforms/...", "cmd/...", "the command is the top"},
}

func matchesPackage(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// deidImports returns, for each of deid's packages (without the module
// prefix), the deid packages it imports: its own imports, not its tests'
// (a test may reach across to build its inputs).
func deidImports(t *testing.T) map[string][]string {
	t.Helper()
	const module = "github.com/deidproject/deid/"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(fields[0], module)
		pkgs[from] = []string{}
		for _, imp := range fields[1:] {
			if to, ours := strings.CutPrefix(imp, module); ours && to != from {
				pkgs[from] = append(pkgs[from], to)
			}
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list listed %d packages", len(pkgs))
	}
	return pkgs
}

// TestLayoutRules checks the rules over go list's imports of every
// package.
func TestLayoutRules(t *testing.T) {
	for from, imports := range deidImports(t) {
		for _, to := range imports {
			for _, r := range layoutRules {
				if matchesPackage(r.from, from) && matchesPackage(r.to, to) {
					t.Errorf("%s imports %s: %s never imports %s (%s)", from, to, r.from, r.to, r.why)
				}
			}
		}
	}
}

// importsTable is docs/design/architecture.md's table of the imports
// between deid's packages (test tooling and the sample generator left out),
// the engine's packages first.
func importsTable(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| package | imports (deid's packages only) |\n|---|---|\n")
	pkgs := deidImports(t)
	names := slices.Sorted(maps.Keys(pkgs))
	for _, p := range names {
		if strings.HasSuffix(p, "test") || strings.HasSuffix(p, "/testmem") || strings.HasSuffix(p, "/fake") ||
			strings.Contains(p, "sampledata") || strings.HasPrefix(p, "cmd/deid-") {
			continue
		}
		list := "none"
		if len(pkgs[p]) > 0 {
			quoted := make([]string, len(pkgs[p]))
			for i, imp := range slices.Sorted(slices.Values(pkgs[p])) {
				quoted[i] = "`" + imp + "`"
			}
			list = strings.Join(quoted, ", ")
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", p, list)
	}
	return b.String()
}

// layoutRulesList is docs/design/architecture.md's list of layoutRules.
func layoutRulesList() string {
	var b strings.Builder
	for _, r := range layoutRules {
		fmt.Fprintf(&b, "- `%s` never imports `%s`: %s.\n", r.from, r.to, r.why)
	}
	return b.String()
}
