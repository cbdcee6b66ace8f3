package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

const reportUsage = `usage:
  deid report check DIR (-c policy.yaml | --public-key HEX | --unsigned) [--json]
      verify a job's reports (DIR is a destination's output folder): each
      report's signature, the hash chain from the newest report (the one the
      manifest names) back to the first, and that every output file is the
      one its newest report recorded; names each report or file that no
      longer matches (exit status 4)
  deid report merge -c policy.yaml --run-id ID --shards N
      combine the reports of a sharded run's shards and commit the run
      (write the manifests) when every shard succeeded
  deid report render report.json [-o report.html]
      render a stored report as one self-contained HTML page (stdout by
      default); every run writes this page beside each report.json
  deid report public-key -c policy.yaml
      print the public key that verifies the reports signed with the
      policy's audit_key: give it to auditors instead of the key`

// reportCmd dispatches deid report's subcommands.
func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, reportUsage)
		if len(args) == 0 {
			return usageError("deid report: no subcommand given")
		}
		return errHelp
	}
	switch args[0] {
	case "merge":
		return reportMergeCmd(ctx, args[1:], stdout, stderr)
	case "check":
		return reportCheckCmd(ctx, args[1:], stdout, stderr)
	case "public-key":
		return reportPublicKeyCmd(args[1:], stdout, stderr)
	case "render":
		return reportRenderCmd(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, reportUsage)
	return usageError("deid report: unknown subcommand %q", args[0])
}

// auditKeyFromPolicy loads the audit key of the policy at path.
func auditKeyFromPolicy(path string) (*rules.Key, error) {
	pol, err := rules.Load(path, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	k, err := rules.LoadAuditKey(pol, os.LookupEnv)
	if err != nil {
		return nil, &rules.Error{File: pol.AuditKey.Pos.File, Line: pol.AuditKey.Pos.Line, Column: pol.AuditKey.Pos.Column, Path: "audit_key", Msg: err.Error()}
	}
	if k == nil {
		return nil, &rules.Error{File: path, Msg: "the policy declares no audit_key, so its reports are not signed (add audit_key: hex:env:NAME)"}
	}
	return k, nil
}

func reportPublicKeyCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deid report public-key", flag.ContinueOnError)
	config := fs.String("c", "", "policy file whose audit_key signs the reports")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *config == "" {
		return usageError("deid report public-key needs -c policy.yaml")
	}
	k, err := auditKeyFromPolicy(*config)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", report.PublicKeyHex(k.Secret()))
	return err
}

func reportCheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deid report check", flag.ContinueOnError)
	config := fs.String("c", "", "policy file: its audit_key gives the public key reports must be signed with")
	pubHex := fs.String("public-key", "", "hex Ed25519 public key reports must be signed with (from deid report public-key)")
	unsigned := fs.Bool("unsigned", false, "check the chain and output files only, not signatures (an edit of the newest report, or a rewritten chain, then goes unnoticed)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	// the folder comes first, flags after it
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		if err := parseFlags(fs, args, stderr); err != nil {
			return err
		}
		return usageError("deid report check needs the job's folder: deid report check DIR -c policy.yaml")
	}
	dir := args[0]
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	var opt pipeline.CheckOptions
	switch {
	case *config != "" && *pubHex != "" || (*config != "" || *pubHex != "") && *unsigned:
		return usageError("give one of -c, --public-key and --unsigned")
	case *config != "":
		k, err := auditKeyFromPolicy(*config)
		if err != nil {
			return err
		}
		opt.PublicKey = report.SigningKey(k.Secret()).Public().(ed25519.PublicKey)
	case *pubHex != "":
		b, err := hex.DecodeString(*pubHex)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return usageError("--public-key: want %d bytes in hex, as deid report public-key prints", ed25519.PublicKeySize)
		}
		opt.PublicKey = b
	case !*unsigned:
		return usageError("deid report check needs the key reports are signed with: -c policy.yaml or --public-key HEX (or --unsigned to skip signatures)")
	}
	res, err := pipeline.CheckReports(ctx, storage.NewRouter(), dir, opt)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		for _, p := range res.Problems {
			fmt.Fprintf(stdout, "MISMATCH %s\n", p)
		}
		sigs := "signatures checked"
		if !res.SignaturesChecked {
			sigs = "signatures NOT checked"
		}
		fmt.Fprintf(stdout, "%s: %d reports, %d output files, %s: %d problems\n", dir, len(res.Reports), res.Files, sigs, len(res.Problems))
	}
	if !res.OK() {
		return fmt.Errorf("%s: %d problems in the reports or outputs: %w", dir, len(res.Problems), pipeline.ErrCheck)
	}
	return nil
}

func reportRenderCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deid report render", flag.ContinueOnError)
	out := fs.String("o", "", "write the page to this file instead of stdout")
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		if err := parseFlags(fs, args, stderr); err != nil {
			return err
		}
		return usageError("deid report render needs a report: deid report render _reports/RUN/report.json")
	}
	in := args[0]
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	if *out != "" {
		if err := checkOutFile("-o", *out, nil); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	r, _, err := report.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	page, err := r.HTML()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if *out == "" {
		_, err = stdout.Write(page)
		return err
	}
	return writeOutFile(context.Background(), "-o", *out, page)
}
