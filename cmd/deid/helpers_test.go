package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// The tests in this package run the real deid binary, built once per test
// process.

var (
	buildOnce sync.Once
	deidBin   string
	buildErr  error
	buildLog  []byte
)

// buildDeid builds cmd/deid into a temporary folder and returns its path,
// with -tags deidtest: the build that has the test gate of scheduled runs
// (testgate.go).
func buildDeid(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deid-bin-")
		if err != nil {
			buildErr = err
			return
		}
		deidBin = filepath.Join(dir, "deid")
		cmd := exec.Command("go", "build", "-tags", "deidtest", "-o", deidBin, ".")
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

// treeState records every file, folder and link under root: a file by its
// SHA-256, a link by its target, so that a test can tell nothing changed.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "link " + target
			return err
		case d.IsDir():
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		s := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(s[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeParquetFile writes rec as one Parquet file at path (its folder made)
// with arrow-go's writer and the given properties (nil: arrow-go's
// defaults).
func writeParquetFile(t *testing.T, path string, rec arrow.RecordBatch, props *parquet.WriterProperties) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if props == nil {
		props = parquet.NewWriterProperties()
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
