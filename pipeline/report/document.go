package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// A stored deid document says what it is in its "format" member: a run's
// report (FormatV1), a retain report (RetainFormatV1) or a verification
// (VerificationFormatV1). ParseDocument reads any of them, so that `deid
// report render` and `deid report check` take whichever they are given.

// manifestFormat is a manifest's format (output.ManifestFormatV1), named
// here only to say what such a file is.
const manifestFormat = "deid-manifest/v1"

// ErrUnknownDocument is matched by the error of a file that is not a deid
// document this deid reads.
var ErrUnknownDocument = errors.New("not a deid report")

// FormatOf returns the "format" member of a deid JSON document, without
// decoding the rest of it.
func FormatOf(data []byte) (string, error) {
	var head struct {
		Format *string `json:"format"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&head); err != nil {
		return "", fmt.Errorf("%w: not a JSON object (%w)", ErrUnknownDocument, err)
	}
	if head.Format == nil {
		return "", fmt.Errorf("%w: the JSON object has no \"format\" member (deid writes one in every report)", ErrUnknownDocument)
	}
	return *head.Format, nil
}

// Document is a stored deid document of one of the kinds FormatOf tells
// apart: exactly one of Run, Retain and Verification is set.
type Document struct {
	Format       string
	Run          *Run
	Retain       *Retain
	Verification *Verification
	// Signature is the document's signature, nil when it is unsigned.
	Signature *Signature
}

// Kind names the document for people: "run report", "retain report" or
// "verification".
func (d *Document) Kind() string {
	switch {
	case d.Run != nil:
		return "run report"
	case d.Retain != nil:
		return "retain report"
	}
	return "verification"
}

// RunID is the run the document is of.
func (d *Document) RunID() string {
	switch {
	case d.Run != nil:
		return d.Run.RunID
	case d.Retain != nil:
		return d.Retain.RunID
	}
	return d.Verification.RunID
}

// Build is the deid build that wrote the document; nil when it records
// none (a verification, or a document older than the field).
func (d *Document) Build() *Build {
	switch {
	case d.Run != nil:
		return d.Run.Deid
	case d.Retain != nil:
		return d.Retain.Deid
	}
	return nil
}

// HTML renders the document's page: a run report's (Run.HTML) or a retain
// report's (Retain.HTML). A verification has no page of its own: the page
// of the report it sits beside shows it.
func (d *Document) HTML() ([]byte, error) {
	switch {
	case d.Run != nil:
		return d.Run.HTML()
	case d.Retain != nil:
		return d.Retain.HTML()
	}
	return nil, fmt.Errorf("a verification (%s) has no page of its own: render the report.json beside it, whose page shows it", d.Format)
}

// ParseDocument reads a run report, a retain report or a verification,
// signed or not, telling them apart by their format; it does not check the
// signature (VerifyDocument does). A file of another kind, or no deid
// document, gives an error matching ErrUnknownDocument that says what it
// is.
func ParseDocument(data []byte) (*Document, error) {
	format, err := FormatOf(data)
	if err != nil {
		return nil, err
	}
	d := &Document{Format: format}
	switch format {
	case FormatV1:
		d.Run, d.Signature, err = Parse(data)
	case RetainFormatV1:
		d.Retain, d.Signature, err = ParseRetain(data)
	case VerificationFormatV1:
		d.Verification, err = ParseVerification(data)
		if err == nil {
			d.Signature = d.Verification.Signature
		}
	case manifestFormat:
		return nil, fmt.Errorf("%w: a manifest (%s), not a report: render the report its \"report\" member names", ErrUnknownDocument, format)
	default:
		return nil, fmt.Errorf("%w: format %q, which this deid does not read (it reads %s)", ErrUnknownDocument, format, strings.Join(Formats(), ", "))
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Formats lists the document formats ParseDocument reads.
func Formats() []string { return []string{FormatV1, RetainFormatV1, VerificationFormatV1} }

// VerifyDocument checks that data is a deid document signed by the holder
// of the audit key whose public key is pub, and returns it. Every failure
// of the signature matches ErrTampered; a file that is no deid document
// matches ErrUnknownDocument.
func VerifyDocument(data []byte, pub ed25519.PublicKey) (*Document, error) {
	d, err := ParseDocument(data)
	if err != nil {
		if errors.Is(err, ErrUnknownDocument) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	if _, _, err := VerifyJSON(data, pub, "the "+d.Kind()); err != nil {
		return nil, err
	}
	return d, nil
}
