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
	// Format names the document's version: "deid-verification/v1".
	Format string `json:"format"`
	// Destination and Output name the destination checked and its output.
	Destination string `json:"destination"`
	Output      string `json:"output"`
	// RunID is the run whose files were checked, or empty for all files.
	RunID string `json:"run_id,omitempty"`
	// Strict is true for deid verify --strict (every text column but
	// pseudonyms checked with every validating detector).
	Strict bool `json:"strict"`
	// Checks are the checks run (schema, pii, pseudonym, identifier,
	// erasure, retention, risk).
	Checks []string `json:"checks"`
	// Files and Rows count what was checked.
	Files int   `json:"files"`
	Rows  int64 `json:"rows"`
	// Findings are the problems found; empty when the destination passed.
	Findings []Finding `json:"findings"`
	// Risk is the re-identification risk of each dataset whose
	// quasi-identifiers the policy lists for this destination.
	Risk []*Risk `json:"risk,omitempty"`
	// Signature signs the bytes before it; nil without an audit key.
	Signature *Signature `json:"signature,omitempty"`
}

// VerificationFormatV1 identifies version 1 of verify.json.
const VerificationFormatV1 = "deid-verification/v1"

// Finding is one problem: which check, where, and what. It never holds the
// offending values.
type Finding struct {
	// Check is the check that found it (see Verification.Checks).
	Check string `json:"check"`
	// File is the output file's location (the output joined with its
	// path; for risk, the dataset's folder in it); Column the column.
	File     string `json:"file"`
	Column   string `json:"column,omitempty"`
	RowGroup int    `json:"row_group"` // -1 for the whole file
	// Values counts the offending values or rows.
	Values int64 `json:"values,omitempty"`
	// Msg says what is wrong, never quoting an offending value.
	Msg string `json:"message"`
}

// String formats the finding as check: file, row group, column: message.
func (f Finding) String() string {
	where := f.File
	if f.RowGroup >= 0 {
		where += fmt.Sprintf(", row group %d", f.RowGroup)
	}
	if f.Column != "" {
		where += fmt.Sprintf(", column %q", f.Column)
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

// Risk is the equivalence-class distribution of one dataset's output in one
// destination: rows that share every quasi-identifier value form a class; a
// row in a class of k rows hides among k.
type Risk struct {
	// Dataset is the dataset measured; QuasiIdentifiers the columns whose
	// combination of values defines a row's class.
	Dataset          string   `json:"dataset"`
	QuasiIdentifiers []string `json:"quasi_identifiers"`
	// MinK is the policy's min_k, 0 when it sets none; Threshold is MinK, or
	// 5 without one: the size below which a class counts as small.
	MinK      int `json:"min_k,omitempty"`
	Threshold int `json:"threshold"`
	// Rows and Classes count the rows measured and their distinct classes.
	Rows    int64 `json:"rows"`
	Classes int64 `json:"classes"`
	// K is the smallest class size (0 without rows).
	K int64 `json:"k"`
	// UniqueRows are rows alone in their class (k = 1).
	UniqueRows int64 `json:"unique_rows"`
	// ClassesBelow and RowsBelow count the classes smaller than Threshold
	// and their rows.
	ClassesBelow int64 `json:"classes_below"`
	RowsBelow    int64 `json:"rows_below"`
	// RowsBySize counts rows by the size of their class: "1", "2", "3-4",
	// "5-9", "10-19", "20-49", "50+".
	RowsBySize map[string]int64 `json:"rows_by_class_size"`
}

// RiskBuckets are the class-size ranges of Risk.RowsBySize, in order.
var RiskBuckets = []struct {
	Label    string
	Min, Max int64
}{{"1", 1, 1}, {"2", 2, 2}, {"3-4", 3, 4}, {"5-9", 5, 9}, {"10-19", 10, 19}, {"20-49", 20, 49}, {"50+", 50, 1 << 62}}

// ShareBelow is the share of rows in classes below the threshold.
func (r *Risk) ShareBelow() float64 {
	if r.Rows == 0 {
		return 0
	}
	return float64(r.RowsBelow) / float64(r.Rows)
}
