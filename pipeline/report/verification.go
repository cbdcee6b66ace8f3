package report

import (
	"encoding/json"
	"fmt"
)

// Verification is what deid verify found in one destination's published
// files. It is written beside the report of the run checked, as
// verify.json (signed like the report when the policy has an audit key),
// and the report's HTML page shows it.
type Verification struct {
	Format      string `json:"format"`
	Destination string `json:"destination"`
	Output      string `json:"output"`
	// RunID is the run whose files were checked, or empty for all files.
	RunID  string   `json:"run_id,omitempty"`
	Strict bool     `json:"strict"`
	Checks []string `json:"checks"`
	Files  int      `json:"files"`
	Rows   int64    `json:"rows"`
	// Findings are the problems found; empty when the destination passed.
	Findings []Finding `json:"findings"`
	// Signature signs the bytes before it; nil without an audit key.
	Signature *Signature `json:"signature,omitempty"`
}

// VerificationFormatV1 identifies version 1 of verify.json.
const VerificationFormatV1 = "deid-verification/v1"

// Finding is one problem: which check, where, and what. It never holds the
// offending values.
type Finding struct {
	Check    string `json:"check"`
	File     string `json:"file"`
	Column   string `json:"column,omitempty"`
	RowGroup int    `json:"row_group"` // -1 for the whole file
	// Values counts the offending values or rows.
	Values int64  `json:"values,omitempty"`
	Msg    string `json:"message"`
}

// String formats the finding as check: file, row group, column: message.
func (f Finding) String() string {
	where := f.File
	if f.RowGroup >= 0 {
		where += fmt.Sprintf(", row group %d", f.RowGroup)
	}
	if f.Column != "" {
		where += ", column " + f.Column
	}
	return fmt.Sprintf("%s: %s: %s", f.Check, where, f.Msg)
}

// JSON returns the verification as indented JSON, without its signature.
func (v *Verification) JSON() ([]byte, error) {
	c := *v
	c.Signature = nil
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseVerification reads a verify.json, signed or not; it does not check
// the signature (VerifyJSON does).
func ParseVerification(data []byte) (*Verification, error) {
	unsigned, sig, err := split(data)
	if err != nil {
		return nil, err
	}
	var v Verification
	if err := json.Unmarshal(unsigned, &v); err != nil {
		return nil, fmt.Errorf("not a deid verification: %w", err)
	}
	if v.Format != VerificationFormatV1 {
		return nil, fmt.Errorf("verification format %q, this deid reads %q", v.Format, VerificationFormatV1)
	}
	v.Signature = sig
	return &v, nil
}
