//go:build !deidtest

package main

import "github.com/deidproject/deid/pipeline/schedule"

// gated returns run as it is: the test gate of scheduled runs exists only
// in the end-to-end tests' build (-tags deidtest, testgate.go).
func gated(run schedule.RunFunc) schedule.RunFunc { return run }
