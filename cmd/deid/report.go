package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// reportCmd dispatches deid report's subcommands.
func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		reportHelp(stderr)
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
	reportHelp(stderr)
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
	var opt output.CheckOptions
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
	if fi, err := os.Stat(dir); err == nil && fi.Mode().IsRegular() {
		return checkDocumentFile(dir, opt, *asJSON, stdout)
	}
	res, err := output.CheckReports(ctx, storage.NewRouter(), dir, opt)
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
		fmt.Fprintf(stdout, "%s\n", buildsLine(res))
	}
	if !res.OK() {
		return fmt.Errorf("%s: %d problems in the reports or outputs: %w", dir, len(res.Problems), output.ErrCheck)
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
	doc, err := report.ParseDocument(b)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	page, err := doc.HTML()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if *out == "" {
		_, err = stdout.Write(page)
		return err
	}
	return writeOutFile(context.Background(), "-o", *out, page)
}

// buildsLine says which deid builds wrote the reports checked, and which
// one checks them.
func buildsLine(res *output.CheckResult) string {
	byBuild := map[string][]string{}
	var order []string
	for _, id := range res.Reports {
		b, ok := res.Builds[id]
		s := "a deid that recorded no version"
		if ok {
			s = "deid " + b.String()
		}
		if byBuild[s] == nil {
			order = append(order, s)
		}
		byBuild[s] = append(byBuild[s], id)
	}
	parts := make([]string, 0, len(order))
	for _, s := range order {
		ids := byBuild[s]
		runs := "run " + ids[0]
		if len(ids) > 1 {
			runs = fmt.Sprintf("%d runs, %s to %s", len(ids), ids[0], ids[len(ids)-1])
		}
		parts = append(parts, s+" ("+runs+")")
	}
	line := "written by " + strings.Join(parts, "; ")
	if len(parts) == 0 {
		line = "written by: no report read"
	}
	if m := res.ManifestBuild; m != nil {
		line += "; manifest by deid " + m.String()
	}
	return line + "; checked by deid " + report.CurrentBuild().String()
}

// fileCheck is the result of checking one stored document.
type fileCheck struct {
	File   string `json:"file"`
	Format string `json:"format,omitempty"`
	RunID  string `json:"run_id,omitempty"`
	// Deid is the build that wrote the document, when it records one.
	Deid              *report.Build `json:"deid,omitempty"`
	SignaturesChecked bool          `json:"signatures_checked"`
	// KeyFingerprint is the audit key's fingerprint of a verified signature.
	KeyFingerprint string           `json:"key_fingerprint,omitempty"`
	Problems       []output.Problem `json:"problems"`
}

// checkDocumentFile checks one stored document (a retain report, a run's
// report.json, a verify.json): its signature against the trusted public
// key, or with --unsigned only that it reads as a deid document.
func checkDocumentFile(path string, opt output.CheckOptions, asJSON bool, stdout io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	res := fileCheck{File: path, SignaturesChecked: opt.PublicKey != nil, Problems: []output.Problem{}}
	doc, err := report.ParseDocument(data)
	if errors.Is(err, report.ErrUnknownDocument) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err != nil {
		res.Problems = append(res.Problems, output.Problem{Report: path, Msg: err.Error()})
	} else {
		res.Format, res.RunID, res.Deid = doc.Format, doc.RunID(), doc.Build()
		if opt.PublicKey != nil {
			if _, err := report.VerifyDocument(data, opt.PublicKey); err != nil {
				res.Problems = append(res.Problems, output.Problem{Report: path, Msg: err.Error()})
			} else {
				res.KeyFingerprint = doc.Signature.KeyFingerprint
			}
		}
	}
	if asJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		for _, p := range res.Problems {
			fmt.Fprintf(stdout, "MISMATCH %s\n", p)
		}
		what := "an unreadable document"
		if doc != nil {
			what = fmt.Sprintf("%s (%s) of run %s", doc.Kind(), doc.Format, doc.RunID())
		}
		sig := "signature NOT checked"
		switch {
		case res.KeyFingerprint != "":
			sig = "signature verified (audit key fingerprint " + res.KeyFingerprint + ")"
		case opt.PublicKey != nil:
			sig = "signature checked"
		}
		written := "a deid that recorded no version"
		if res.Deid != nil {
			written = "deid " + res.Deid.String()
		}
		fmt.Fprintf(stdout, "%s: %s, written by %s: %s: %d problems; checked by deid %s\n", path, what, written, sig, len(res.Problems), report.CurrentBuild())
	}
	if len(res.Problems) > 0 {
		return fmt.Errorf("%s: %d problems: %w", path, len(res.Problems), output.ErrCheck)
	}
	return nil
}
