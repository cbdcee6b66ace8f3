package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpText is the one source of a command's help: `deid COMMAND --help`,
// `deid help COMMAND`, the command list, shell completion and the CLI
// reference page (docs/reference/cli.md) are all rendered from it and
// from the command's own flag set.
type helpText struct {
	name        string   // as typed after deid: "run", "report check"
	summary     string   // one line, for the command list
	synopsis    []string // usage lines, each after "deid "
	description string   // paragraphs separated by blank lines
	exits       []int    // the exit statuses the command returns
}

// helpTexts lists every command and report subcommand, in the order the
// command list and the reference show them.
var helpTexts = []helpText{
	{
		name:    "run",
		summary: "de-identify the policy's datasets and publish the outputs",
		synopsis: []string{
			"run [-c policy.yaml] [--now RFC3339] [--workers N] [--destination NAME]...",
			"run -c policy.yaml --job NAME [--force]",
			"run -c policy.yaml --shard I/N --run-id ID",
		},
		description: `Reads the policy's source datasets, removes rows past retention, of erased
subjects or with a NULL or future time, transforms every column as each
destination's purpose and the policy say, with that destination's own key,
and publishes each destination's files atomically with a manifest and a
signed report (_reports/<run id>/). A failed run publishes nothing; the same
inputs, policy, keys and --now give the same bytes.

With --job, runs one of the policy's jobs once, now, under its lock, and
skips inputs whose outputs are committed and unchanged. With --shard, runs
one shard of a sharded run: published, committed by deid report merge.
Without -c, uses the built-in sample policy (run from the repository root).`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData},
	},
	{
		name:     "plan",
		summary:  "dry run: list inputs and count what a run would remove and write",
		synopsis: []string{"plan [-c policy.yaml] [--now RFC3339] [--json]"},
		description: `Reads the sources' footers and only the row rules' columns, evaluates
retention, erasure, consent and the children rule on every row, and prints
the counts the run would report, per dataset, destination and output file,
with the columns each output drops or empties. Writes nothing. Without -c,
uses the built-in sample policy.`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData},
	},
	{
		name:     "validate",
		summary:  "check a policy, its keys and its sources' schemas without reading data",
		synopsis: []string{"validate [-c policy.yaml] [--no-sources]"},
		description: `Parses and compiles the policy (every error names file:line:column), loads
every key and checks its strength, and reads each source's Parquet footer
to check that every column is classified and of the declared type. Reads
no rows and writes nothing. Without -c, validates the built-in sample
policy.`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData},
	},
	{
		name:     "serve",
		summary:  "run the policy's jobs on their schedules, with /healthz, /readyz, /metrics and /jobs",
		synopsis: []string{"serve -c policy.yaml [--addr :9090] [--grace 25s] [--lock-ttl 2m]"},
		description: `Runs each of the policy's jobs on its cron schedule (robfig/cron, CRON_TZ
honoured), one at a time per job under a lease lock, incrementally unless
--force. Serves /healthz, /readyz, Prometheus /metrics and /jobs (each job's
last and next run) on --addr. On SIGTERM or SIGINT, a running job may go on
for --grace, is then aborted (nothing it staged is published) and given
--abort-wait to clean up.`,
		exits: []int{exitOK, exitOther, exitPolicy},
	},
	{
		name:     "schema",
		summary:  "print the policy language's JSON Schema (for editors and CI checks)",
		synopsis: []string{"schema"},
		description: `Prints the JSON Schema of the policy language on stdout, for editors
(yaml-language-server) and CI checks. deid validate checks much more than
the schema can say.`,
		exits: []int{exitOK, exitOther, exitPolicy},
	},
	{
		name:     "retain",
		summary:  "delete or anonymize expired and erased rows in the source datasets themselves",
		synopsis: []string{"retain -c policy.yaml [--now RFC3339] [--dry-run] [--json] [--report FILE]"},
		description: `Deletes or anonymizes, in the source datasets themselves, rows past
retention and rows of erased subjects, except subjects on legal hold and
rows inside a legal minimum; a dataset declared ended_at loses every row.
Erased subjects also leave the destinations' published outputs (pseudonyms
recomputed with each key), each rewrite a commit in the output's report
chain. Crash-safe and idempotent: a killed retain is completed or rolled
back by the next. retain changes stored data, so -c is required: there is
no built-in default.`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData},
	},
	{
		name:     "verify",
		summary:  "check published outputs against the policy: schemas, leftover PII, raw source identifiers",
		synopsis: []string{"verify [-c policy.yaml] [--run RUN] [--strict] [--now RFC3339] [--workers N] [--json]"},
		description: `Independent checks of each destination's published files: (schema) exactly
the columns the policy promises; (pii) no value the detectors recognise in a
scrubbed column (every text column but pseudonyms with --strict);
(pseudonym) every value of a pseudonymized column of the pseudonym's form;
(identifier) no raw value of a source identifier column anywhere in a
destination, found with a Bloom filter over keyed hashes of the sources and
confirmed exactly (a value under 6 characters only as a whole value in the
column written from its own column, when 10 or more distinct ones are
there); (erasure) no row of a subject on the dataset's erasure lists;
(retention) no row older than the retention period, measured from the now
of the run that wrote the file (or --now). Each destination's result is
written to _reports/<run id>/verify.json; a finding names the file, column
and row group and exits with status 4.`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData, exitCheck},
	},
	{
		name:    "report check",
		summary: "verify a job's signed report chain and output files, or one stored report's signature",
		synopsis: []string{
			"report check DIR (-c policy.yaml | --public-key HEX | --unsigned) [--json]",
			"report check FILE.json (-c policy.yaml | --public-key HEX | --unsigned) [--json]",
		},
		description: `With a destination's output folder DIR: checks each report's signature,
the hash chain from the newest report (the one the manifest names) back to
the first, and that every output file is the one its newest report
recorded; names each report or file that no longer matches, and the deid
versions that wrote what it checked. With FILE.json: checks one stored
document's signature (a retain report, a run's report.json, a verify.json).
The folder or file comes first, the flags after it.`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData, exitCheck},
	},
	{
		name:     "report merge",
		summary:  "combine a sharded run's shard reports and commit the run",
		synopsis: []string{"report merge -c policy.yaml --run-id ID --shards N [--json]"},
		description: `Combines the reports of a sharded run's shards (deid run --shard I/N
--run-id ID) into one report per destination and commits the run (writes
the manifests) when every shard succeeded. A merge killed at any moment is
completed by the next; a merge already done says so and exits 0.`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData},
	},
	{
		name:     "report render",
		summary:  "render a stored report as a self-contained HTML page",
		synopsis: []string{"report render REPORT.json [-o report.html]"},
		description: `Renders a stored report (a run's report.json, or a retain report written
with deid retain --report) as one self-contained HTML page, on stdout unless
-o is given. Every run already writes this page beside each report.json.`,
		exits: []int{exitOK, exitOther, exitPolicy, exitData},
	},
	{
		name:     "report public-key",
		summary:  "print the public key auditors check reports with",
		synopsis: []string{"report public-key -c policy.yaml"},
		description: `Prints the Ed25519 public key that verifies the reports signed with the
policy's audit_key: give it to auditors (deid report check --public-key)
instead of the key.`,
		exits: []int{exitOK, exitOther, exitPolicy},
	},
	{
		name:     "version",
		summary:  "print deid's version, VCS revision and Go version (also: deid --version)",
		synopsis: []string{"version [--json]", "--version"},
		description: `Prints the module version, the VCS revision the binary was built from (and
whether the checkout had uncommitted changes) and the Go version, as
reports, manifests and retain reports record them.`,
		exits: []int{exitOK, exitOther, exitPolicy},
	},
	{
		name:     "completion",
		summary:  "print a shell completion script: bash, zsh or fish",
		synopsis: []string{"completion bash|zsh|fish"},
		description: `Prints a completion script for commands, report subcommands and flags.
bash: source <(deid completion bash), or save it in
/etc/bash_completion.d/deid. zsh: source <(deid completion zsh) in ~/.zshrc
(after compinit, or it runs compinit itself).
fish: deid completion fish > ~/.config/fish/completions/deid.fish.`,
		exits: []int{exitOK, exitOther, exitPolicy},
	},
	{
		name:     "help",
		summary:  "print the help of a command: deid help COMMAND [SUBCOMMAND]",
		synopsis: []string{"help [COMMAND [SUBCOMMAND]]"},
		description: `Prints the help of a command, as deid COMMAND --help does, on stdout;
without a command, the list of commands.`,
		exits: []int{exitOK, exitPolicy},
	},
}

// exitMeanings says what each exit status means, in every help text.
var exitMeanings = map[int]string{
	exitOK:     "success",
	exitOther:  "an unexpected failure (I/O error, interrupted, internal error)",
	exitPolicy: "a usage or policy error (bad flag, policy syntax, unknown transform, missing or weak key)",
	exitData: "a data error (corrupt or truncated Parquet, unclassified, missing or drifted column, two columns of\n" +
		"     one name, a source matching no file, a folder as a source, a link to nothing in a source folder,\n" +
		"     bad erasure list, a symbolic link where deid writes, a FIFO or device where deid reads a file)",
	exitCheck: "a check failed (deid report check: a report or output file no longer matches; deid verify: a finding)",
}

// exitAdvice says what to do about each exit status, in the CLI reference.
var exitAdvice = map[int]string{
	exitOK:     "",
	exitOther:  "read the message; rerun (a killed or interrupted command converges on the next run)",
	exitPolicy: "fix the command line or the policy: the message gives `file:line:column`",
	exitData:   "fix the data or the policy: the message names the file (and the CSV line, or the link and its target)",
	exitCheck:  "each `MISMATCH` line or finding names the report, file, column or row group: restore it from a trusted copy, or investigate",
}

// helpFor returns the help of the command typed as name ("report check").
func helpFor(name string) (helpText, bool) {
	for _, h := range helpTexts {
		if h.name == name {
			return h, true
		}
	}
	return helpText{}, false
}

// exitsHelp renders the meaning of the given exit statuses.
func exitsHelp(codes []int) string {
	var b strings.Builder
	b.WriteString("exit status:")
	for _, c := range codes {
		fmt.Fprintf(&b, "\n  %d  %s", c, exitMeanings[c])
	}
	return b.String()
}

// printHelp writes h with the flags of fs (nil: none) to w.
func printHelp(w io.Writer, h helpText, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage:")
	for _, s := range h.synopsis {
		fmt.Fprintf(w, "  deid %s\n", s)
	}
	fmt.Fprintf(w, "\n%s\n", h.description)
	if fs != nil && hasFlags(fs) {
		fmt.Fprintln(w, "\nflags:")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
	fmt.Fprintf(w, "\n%s\n", exitsHelp(h.exits))
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// flagCollector, passed to a command as its stderr, makes parseFlags hand
// over the command's flag set and return errHelp instead of parsing:
// completion, deid help and the CLI reference take the flags from the
// commands themselves.
type flagCollector struct {
	io.Writer
	fs *flag.FlagSet
}

// commandFlags returns the flag set of the command typed as name.
func commandFlags(name string) *flag.FlagSet {
	c := &flagCollector{Writer: io.Discard}
	args := append(strings.Fields(name), "-h")
	dispatch(context.Background(), args, io.Discard, c)
	return c.fs
}

// helpCmd prints a command's help on stdout.
func helpCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		return parseFlags(flag.NewFlagSet("deid help", flag.ContinueOnError), args, stderr)
	}
	if len(args) == 0 {
		usage(stdout)
		return nil
	}
	name := strings.Join(args, " ")
	h, ok := helpFor(name)
	if !ok {
		if name == "report" {
			reportHelp(stdout)
			return nil
		}
		return usageError("deid help: no command %q (deid help lists them)", name)
	}
	printHelp(stdout, h, commandFlags(name))
	return nil
}

// reportHelp lists the report subcommands.
func reportHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: deid report <subcommand> [flags]\n\nsubcommands:")
	for _, h := range helpTexts {
		if sub, ok := strings.CutPrefix(h.name, "report "); ok {
			fmt.Fprintf(w, "  %-11s %s\n", sub, h.summary)
		}
	}
	fmt.Fprintln(w, "\nRun 'deid help report SUBCOMMAND' for a subcommand's synopsis, flags and exit status.")
}
