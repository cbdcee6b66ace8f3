package main

import (
	"os/exec"
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

// TestLayoutRules checks the rules over go list's imports of every
// package (its own, not its tests': a test may reach across to build its
// inputs).
func TestLayoutRules(t *testing.T) {
	const module = "github.com/deidproject/deid/"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(fields[0], module)
		pkgs++
		for _, imp := range fields[1:] {
			to, ours := strings.CutPrefix(imp, module)
			if !ours || to == from {
				continue
			}
			for _, r := range layoutRules {
				if matchesPackage(r.from, from) && matchesPackage(r.to, to) {
					t.Errorf("%s imports %s: %s never imports %s (%s)", from, to, r.from, r.to, r.why)
				}
			}
		}
	}
	if pkgs < 10 {
		t.Fatalf("go list listed %d packages", pkgs)
	}
}
