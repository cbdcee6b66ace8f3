//go:build !deidtest

package main

import (
	"context"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/schedule"
	"github.com/deidproject/deid/rules"
)

// TestShippedBuildHasNoRunGate: in the build deid ships (without -tags
// deidtest), the test gate's variable does not reach scheduled runs: a
// gate at /dev/zero, which the test build would read for ever, changes
// nothing.
func TestShippedBuildHasNoRunGate(t *testing.T) {
	t.Setenv(testRunGateEnv, "/dev/zero")
	ran := make(chan struct{})
	run := gated(func(context.Context, *rules.JobDecl) (*schedule.Result, error) {
		close(ran)
		return nil, nil
	})
	go run(context.Background(), &rules.JobDecl{Name: "tick"})
	select {
	case <-ran:
	case <-time.After(2 * time.Second):
		t.Fatalf("a scheduled run waits on %s=/dev/zero in the shipped build", testRunGateEnv)
	}
}
