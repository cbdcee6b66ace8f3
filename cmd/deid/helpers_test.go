package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The tests in this package run the real deid binary, built once per test
// process.

var (
	buildOnce sync.Once
	deidBin   string
	buildErr  error
	buildLog  []byte
)

// buildDeid builds cmd/deid into a temporary folder and returns its path.
func buildDeid(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deid-bin-")
		if err != nil {
			buildErr = err
			return
		}
		deidBin = filepath.Join(dir, "deid")
		cmd := exec.Command("go", "build", "-o", deidBin, ".")
		buildLog, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildLog)
	}
	return deidBin
}

// repoRoot returns the repository root (two levels above cmd/deid).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// deidResult is what one run of the binary did.
type deidResult struct {
	code           int
	stdout, stderr string
}

// runDeid runs the binary in dir with the given environment additions.
func runDeid(t testing.TB, dir string, env []string, args ...string) deidResult {
	t.Helper()
	cmd := exec.Command(buildDeid(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := deidResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run deid: %v", err)
	}
	return res
}
