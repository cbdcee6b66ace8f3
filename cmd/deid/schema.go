package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/deidproject/deid/rules"
)

// schemaCmd prints the policy language's JSON Schema.
func schemaCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deid schema", flag.ContinueOnError)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("deid schema takes no arguments")
	}
	b, err := rules.JSONSchema()
	if err != nil {
		return fmt.Errorf("render the schema: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}
