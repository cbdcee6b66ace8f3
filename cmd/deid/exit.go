package main

import (
	"errors"
	"fmt"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// Exit codes, explained by exitMeanings and exitAdvice (help.go) in every
// help text and in docs/reference/cli.md.
const (
	exitOK     = 0 // success
	exitOther  = 1 // anything else: I/O, cancellation, a bug
	exitPolicy = 2 // a usage or policy error: fix the command line or the policy
	exitData   = 3 // a data error: a corrupt, drifted or unclassified input
	exitCheck  = 4 // a check found a mismatch: a report or output file was changed
)

// errUsage marks command-line mistakes.
var errUsage = errors.New("usage error")

// errHelp is returned after printing requested help.
var errHelp = errors.New("help requested")

type usageErr struct{ msg string }

func (e *usageErr) Error() string        { return e.msg }
func (e *usageErr) Is(target error) bool { return target == errUsage }

func usageError(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps an error to the process's exit status, in one place.
func exitCode(err error) int {
	switch {
	case err == nil || errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errUsage) || errors.Is(err, rules.ErrPolicy):
		return exitPolicy
	case errors.Is(err, pipeline.ErrData) || errors.Is(err, storage.ErrLink) || // a link where deid writes
		errors.Is(err, storage.ErrNotRegular): // a FIFO or device where deid reads
		return exitData
	case errors.Is(err, output.ErrCheck):
		return exitCheck
	}
	return exitOther
}
