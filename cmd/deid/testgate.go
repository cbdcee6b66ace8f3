//go:build deidtest

package main

import (
	"context"
	"io"
	"os"

	"github.com/deidproject/deid/pipeline/schedule"
	"github.com/deidproject/deid/rules"
)

// This file is built only with -tags deidtest, as the end-to-end tests
// build deid (buildDeid); the shipped binary has testgate_off.go instead.

// runGateEnv names a FIFO that every scheduled deidentify run reads to its
// end before it starts: the run waits in a system call no context reaches,
// as a run blocked on a hung file system does, until the test writes to
// the FIFO and closes it.
const runGateEnv = "DEID_TEST_RUN_GATE"

// gated holds run on the test gate when runGateEnv is set.
func gated(run schedule.RunFunc) schedule.RunFunc {
	gate := os.Getenv(runGateEnv)
	if gate == "" {
		return run
	}
	return func(ctx context.Context, job *rules.JobDecl) (*schedule.Result, error) {
		if f, err := os.Open(gate); err == nil {
			io.Copy(io.Discard, f)
			f.Close()
		}
		return run(ctx, job)
	}
}
