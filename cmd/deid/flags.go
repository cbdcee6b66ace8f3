package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/deidproject/deid/rules"
)

// samplePolicy is the built-in default: the example policy
// (deploy/examples/policy.yaml) on the sample lake shipped in testdata/lake,
// with its sample-only keys. Its paths are relative to the current
// directory (the repository root).
//
//go:embed sample-policy.yaml
var samplePolicy []byte

// samplePolicyName stands for the built-in policy in messages and reports.
const samplePolicyName = "builtin:sample-policy.yaml"

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// policyFlags are the flags of every command that loads a policy.
type policyFlags struct {
	config       string
	now          string
	destinations stringList
	logFormat    string
	logLevel     string
	// requireConfig: the command has no built-in default policy, and acts
	// on sources, not destinations (retain): no --destination
	requireConfig bool
}

func (p *policyFlags) register(fs *flag.FlagSet, withNow bool) {
	if p.requireConfig {
		fs.StringVar(&p.config, "c", "", "policy file (required)")
	} else {
		fs.StringVar(&p.config, "c", "", "policy file (default: the built-in sample policy, run from the repository root)")
	}
	fs.StringVar(&p.config, "config", "", "same as -c")
	if withNow {
		fs.StringVar(&p.now, "now", "", "reference instant for retention, RFC 3339 (default: the current time, read once)")
	}
	if !p.requireConfig {
		fs.Var(&p.destinations, "destination", "run only this destination (repeatable)")
	}
	fs.StringVar(&p.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&p.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// copyFlags defines in dst every flag of src but those named in omit, so a
// command's help lists only the flags it takes.
func copyFlags(dst, src *flag.FlagSet, omit ...string) {
	src.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(omit, f.Name) {
			dst.Var(f.Value, f.Name, f.Usage)
		}
	})
}

// parseFlags parses args; -h prints the command's help (helpTexts and its
// flags) and returns errHelp. Given a flagCollector as stderr, it hands
// over fs instead.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if c, ok := stderr.(*flagCollector); ok {
		c.fs = fs
		return errHelp
	}
	// the flag package prints nothing: the help on -h, one error line else
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	name := strings.TrimPrefix(fs.Name(), "deid ")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if h, ok := helpFor(name); ok {
				printHelp(stderr, h, fs)
			} else {
				fs.SetOutput(stderr)
				fs.PrintDefaults()
			}
			return errHelp
		}
		return usageError("%v (deid help %s lists the flags)", err, name)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q (flags come before nothing else; see -h)", fs.Arg(0))
	}
	return nil
}

func (p *policyFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(p.logLevel)); err != nil {
		return nil, usageError("--log-level %q: use debug, info, warn or error", p.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch p.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, usageError("--log-format %q: use text or json", p.logFormat)
}

// reference returns the run's reference instant: --now, or the clock read once.
func (p *policyFlags) reference(clock func() time.Time) (time.Time, error) {
	if p.now == "" {
		return clock().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, p.now)
	if err != nil {
		return time.Time{}, usageError("--now %q: use RFC 3339, e.g. 2026-11-01T00:00:00Z", p.now)
	}
	return t.UTC(), nil
}

// load reads and validates the policy named by -c, or the built-in sample.
func (p *policyFlags) load(log *slog.Logger) (*rules.Policy, error) {
	if p.config == "" {
		log.Info("no -c given: using the built-in sample policy on testdata/sample (run from the repository root)")
		pol, err := rules.Parse(samplePolicyName, samplePolicy, os.LookupEnv)
		if err != nil {
			return nil, err
		}
		// Load resolves links itself; the built-in policy is parsed, not loaded
		if err := pol.CheckLocations(); err != nil {
			return nil, err
		}
		return pol, nil
	}
	return rules.Load(p.config, os.LookupEnv)
}

// compile loads the policy and compiles it for now.
func (p *policyFlags) compile(log *slog.Logger, now time.Time) (*rules.Plan, error) {
	pol, err := p.load(log)
	if err != nil {
		return nil, err
	}
	plan, err := rules.Compile(pol, rules.CompileOptions{Now: now, Lookup: os.LookupEnv, Destinations: p.destinations})
	if err != nil {
		return nil, err
	}
	for _, w := range plan.Warnings {
		log.Warn(w)
	}
	return plan, nil
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
