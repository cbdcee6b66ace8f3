package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/deidproject/deid/pipeline/report"
)

// versionCmd prints the build of this deid, as every report, manifest and
// retain report records it ("deid": {version, revision, modified, go}).
func versionCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deid version", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, `print the build as JSON, as reports record it in their "deid" member`)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	b := report.CurrentBuild()
	if *asJSON {
		out, err := json.MarshalIndent(b, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", out)
		return err
	}
	rev := b.Revision
	switch {
	case rev == "":
		rev = "unknown (the binary records none: built outside a git checkout, by go test or with -buildvcs=false)"
	case b.Modified:
		rev += " (modified: built with uncommitted changes)"
	}
	_, err := fmt.Fprintf(stdout, "deid %s\nrevision %s\nbuilt with %s\n", b.Version, rev, b.Go)
	return err
}
