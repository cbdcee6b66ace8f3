// Command deid de-identifies Parquet datasets as a policy says: it strips,
// hashes, masks or generalizes identifiers per destination, removes rows past
// their retention period or of erased subjects, and publishes each output
// atomically with a manifest and a report.
//
// Usage:
//
//	deid run      -c policy.yaml [--now RFC3339] [--workers N]   de-identify and publish
//	deid run      -c policy.yaml --job NAME                      run one of the policy's jobs once, now
//	deid run      -c policy.yaml --shard I/N --run-id ID          one shard of a sharded run
//	deid report merge -c policy.yaml --run-id ID --shards N       commit a sharded run
//	deid serve    -c policy.yaml [--addr :9090] [--grace 25s]    run the policy's jobs on their schedules
//	deid plan     -c policy.yaml [--now RFC3339] [--json]        dry run: what would be read, written, removed
//	deid validate -c policy.yaml                                 check the policy, its keys and sources
//	deid schema                                                  print the policy's JSON Schema
//	deid retain   -c policy.yaml [--now RFC3339] [--dry-run]     delete or anonymize expired and erased rows in the sources
//	deid verify   -c policy.yaml [--run RUN] [--strict]          check published outputs: schemas, PII, raw identifiers
//	deid report check DIR -c policy.yaml                         verify a job's signed report chain and output files
//	deid report render report.json [-o report.html]              render a stored report as a self-contained HTML page
//	deid report public-key -c policy.yaml                        print the public key auditors check reports with
//	deid version                                                 print deid's version, VCS revision and Go version (also --version)
//	deid completion bash|zsh|fish                                print a shell completion script
//	deid help COMMAND [SUBCOMMAND]                               print a command's synopsis, flags and exit status
//
// Exit status: 0 success; 1 an unexpected failure (I/O, cancelled); 2 a
// usage or policy error; 3 a data error (corrupt file, unclassified or
// drifted column, bad erasure list); 4 a check found a mismatch (a report or
// output file changed, or verify found a problem in the outputs).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	// the IANA zone database inside the binary: a dataset's time_zone and
	// CRON_TZ resolve the same on a host or image without zoneinfo
	_ "time/tzdata"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	run := map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
		"run": runCmd, "plan": planCmd, "validate": validateCmd, "serve": serveCmd, "schema": schemaCmd,
		"retain": retainCmd, "verify": verifyCmd, "report": reportCmd, "version": versionCmd,
		"completion": completionCmd, "help": helpCmd,
	}
	var cmds []command
	for _, h := range helpTexts {
		name, _, sub := strings.Cut(h.name, " ")
		if sub {
			if len(cmds) == 0 || cmds[len(cmds)-1].name != name {
				cmds = append(cmds, command{name, reportSummary, run[name]})
			}
			continue
		}
		cmds = append(cmds, command{name, h.summary, run[name]})
	}
	return cmds
}

// reportSummary is the command list's line for deid report.
const reportSummary = "check a job's signed reports and outputs (check), commit a sharded run (merge), render one as HTML (render), print the audit public key (public-key)"

func main() {
	ctx, stop := watchSignals(os.Stderr, os.Exit)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "deid:", err)
	}
	os.Exit(exitCode(err))
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		return versionCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return usageError("no command given")
		}
		return errHelp
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return usageError("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: deid <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'deid help <command>' (or 'deid <command> --help') for its synopsis, flags and exit status.")
	fmt.Fprintf(w, "\n%s\n", exitsHelp([]int{exitOK, exitOther, exitPolicy, exitData, exitCheck}))
}
