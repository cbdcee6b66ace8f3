package rules

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// firedSites collects the source lines (file:line) of errorf calls that
// produced an error during this package's tests.
var firedSites = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// TestMain runs the tests and then, when the whole package ran and passed,
// checks that every errorf call in the package's sources fired at least
// once: every error the policy language can produce is asserted by some test
// (TestPolicyErrors and its neighbours assert file, line, column, path and
// message). A new error without a test fails here, naming its line.
func TestMain(m *testing.M) {
	errorSite = func(pc uintptr) {
		f := runtime.FuncForPC(pc)
		if f == nil {
			return
		}
		file, line := f.FileLine(pc)
		firedSites.Lock()
		firedSites.m[fmt.Sprintf("%s:%d", filepath.Base(file), line)] = true
		firedSites.Unlock()
	}
	code := m.Run()
	if code == 0 && wholePackageRan() {
		if missing := unfiredErrorSites(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d policy errors have no test that produces them (add a case to TestPolicyErrors):\n\t%s\n",
				len(missing), strings.Join(missing, "\n\t"))
			code = 1
		}
	}
	os.Exit(code)
}

// wholePackageRan reports whether no -run, -skip or -short narrowed the run.
func wholePackageRan() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

var errorfCall = regexp.MustCompile(`\bd\.errorf\(`)

// unfiredErrorSites lists file:line of every errorf call in the package's
// non-test sources that no test made fire.
func unfiredErrorSites() []string {
	files, _ := filepath.Glob("*.go")
	var missing []string
	firedSites.Lock()
	defer firedSites.Unlock()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return []string{err.Error()}
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") || !errorfCall.MatchString(line) {
				continue
			}
			site := fmt.Sprintf("%s:%d", f, i+1)
			if !firedSites.m[site] {
				missing = append(missing, site+": "+strings.TrimSpace(line))
			}
		}
	}
	sort.Strings(missing)
	return missing
}
