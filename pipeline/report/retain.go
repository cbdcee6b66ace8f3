package report

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"
)

// RetainFormatV1 identifies version 1 of the JSON form of a retain report.
const RetainFormatV1 = "deid-retain-report/v1"

// Reasons of RetainDataset.Removed and RetainDataset.Held.
const (
	// RemovedRetention: past the retention period.
	RemovedRetention = "retention"
	// RemovedNullTime: NULL time, removed by on_null: remove or past the
	// fallback clock.
	RemovedNullTime = "null_time"
	// RemovedFutureTime: a time after now plus the retention's
	// future_skew (dated in the future: no valid event time), removed as a
	// NULL time would be.
	RemovedFutureTime = "future_time"
	// RemovedErasure: the subject is on an erasure list.
	RemovedErasure = "erasure"
	// RemovedServiceEnded: the service that produced the dataset ended
	// (ended_at).
	RemovedServiceEnded = "service_ended"
	// HeldLegalHold: the subject is on a legal hold list.
	HeldLegalHold = "legal_hold"
	// HeldLegalMinimum: the subject is erased but the row is still inside
	// the dataset's legal minimum; it is stored, isolated in the dataset's
	// _restricted part, and processed no more.
	HeldLegalMinimum = "restricted: legal minimum"
)

// Retain is the report of one `deid retain` run: per dataset, what was
// scanned, what was removed or anonymized and why, and what was held back.
// It is data filled in as decisions are made; rendering recomputes nothing.
type Retain struct {
	// Format names the document's version: "deid-retain-report/v1".
	Format string `json:"format"`
	// Deid is the deid build that wrote the report (see Build); nil in a
	// report written before deid recorded it.
	Deid *Build `json:"deid,omitempty"`
	// RunID is the retain run's id: UTC start time and a random suffix.
	RunID string `json:"run_id"`
	// DryRun is true for `deid retain --dry-run`: nothing was changed.
	DryRun bool `json:"dry_run"`
	// Outcome is "succeeded" or "failed".
	Outcome string `json:"outcome"`
	// Error is the failure, when Outcome is "failed".
	Error string `json:"error,omitempty"`
	// Policy identifies the policy the run applied.
	Policy Policy `json:"policy"`
	// Now is the reference instant retention was measured from.
	Now time.Time `json:"now"`
	// StartedAt and FinishedAt are the run's wall-clock start and end (UTC).
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Datasets are in policy order.
	Datasets []*RetainDataset `json:"datasets"`
	// Destinations are the published outputs erasure reached, in policy
	// order (only with Options.Outputs).
	Destinations []*RetainDestination `json:"destinations"`
	// Warnings include where deleted data may survive (backups, versioned
	// buckets).
	Warnings []string `json:"warnings"`
	// Signature signs every byte of the report before it, and stays the
	// last field, as a run report's (see Retain.Signed); nil when the policy
	// has no audit key, and in the report printed by --json.
	Signature *Signature `json:"signature,omitempty"`
}

// RetainDataset is what retain did to one source dataset.
type RetainDataset struct {
	// Name is the dataset's name in the policy.
	Name string `json:"name"`
	// Source is the dataset's source location or glob, as the policy says.
	Source string `json:"source"`
	// Root is the dataset's root folder: its journal, lock and _anonymized
	// part live there.
	Root string `json:"root"`
	// Then is "delete" or "anonymize".
	Then string `json:"then"`
	// Anonymize are the columns anonymized rows keep and their treatment,
	// as the policy's retention.anonymize states them (then: anonymize);
	// every other column is dropped from anonymized rows.
	Anonymize []Column `json:"anonymize,omitempty"`
	// Retention is the retention rule applied, or nil.
	Retention *Retention `json:"retention,omitempty"`
	// LegalMinimum is the minimum the law requires rows be kept, or nil.
	LegalMinimum *LegalMinimum `json:"legal_minimum,omitempty"`
	// Erasure are the erasure lists read; Holds the legal hold lists
	// (subjects whose rows stay whatever else applies).
	Erasure []ErasureList `json:"erasure,omitempty"`
	Holds   []ErasureList `json:"holds,omitempty"`
	// Ended is set when the dataset's service had ended: every row goes.
	Ended *ServiceEnded `json:"ended,omitempty"`
	// Recovered says what this run did with an interrupted earlier run it
	// found: "rolled forward" (its journal was complete) or "rolled back".
	Recovered string `json:"recovered,omitempty"`

	// Files and RowGroups count the dataset's files and row groups by what
	// was done to them.
	Files     FileCounts     `json:"files"`
	RowGroups RowGroupCounts `json:"row_groups"`
	// RowsIn and RowsKept count the dataset's rows before and after.
	RowsIn   int64 `json:"rows_in"`
	RowsKept int64 `json:"rows_kept"`
	// Removed counts rows deleted or anonymized, by reason (retention,
	// null_time, future_time, erasure).
	Removed map[string]int64 `json:"removed"`
	// Anonymized counts the removed rows that were moved, anonymized, to
	// the _anonymized part rather than deleted.
	Anonymized int64 `json:"anonymized"`
	// Held counts rows that would have gone but stay, by reason
	// (legal_hold, "restricted: legal minimum").
	Held map[string]int64 `json:"held"`
	// NullTimeKept counts rows with a NULL time that stay.
	NullTimeKept int64 `json:"null_time_kept"`
	// FutureTimeKept counts rows whose time is after now plus the
	// retention's future_skew and that stay, as a NULL time would.
	FutureTimeKept int64 `json:"future_time_kept"`
	// NonexistentLocalTime and AmbiguousLocalTime count wall-clock times
	// in a daylight-saving gap or overlap of the dataset's time_zone (see
	// Dataset.NonexistentLocalTime).
	NonexistentLocalTime int64 `json:"nonexistent_local_time,omitempty"`
	AmbiguousLocalTime   int64 `json:"ambiguous_local_time,omitempty"`
	// Subjects are the erased subjects: counts and fingerprints, never ids.
	Subjects ErasedSubjects `json:"subjects"`
	// Isolation is what happened in the dataset's isolated part.
	Isolation RetainIsolation `json:"isolation"`
	// FileDetails say per file what was (or, in a dry run, would be) done.
	FileDetails []*RetainFile `json:"file_details"`
}

// RetainIsolation describes a dataset's isolated part,
// <root>/_restricted: rows of erased subjects still inside the legal
// minimum, moved out of the source files (PIPL art. 47: stored, processed
// no more) until the minimum ends.
type RetainIsolation struct {
	// Folder is the isolated part's folder.
	Folder string `json:"folder"`
	// Isolated counts the rows this run moved from source files into the
	// isolated part.
	Isolated int64 `json:"isolated"`
	// Released counts the rows of the isolated part this run deleted or
	// anonymized (the legal minimum or the retention ended); they are also
	// counted in Removed by reason, and in Anonymized.
	Released int64 `json:"released"`
	// Remaining counts the rows the isolated part's files scanned keep:
	// still inside the legal minimum, or on a legal hold.
	Remaining int64 `json:"remaining"`
	// Files count the isolated part's files found at the start of the run
	// by what happened to them (the files this run writes are not counted).
	Files FileCounts `json:"files"`
}

// LegalMinimum is a dataset's legal minimum as applied.
type LegalMinimum struct {
	// Keep is how long rows must be kept, as the policy states it (3y).
	Keep string `json:"keep"`
	// Basis names the law that requires it.
	Basis string `json:"basis"`
	// Cutoff is now minus Keep: rows at or after it are inside the minimum.
	Cutoff time.Time `json:"cutoff"`
}

// FileCounts count a dataset's files by what retain did to them.
type FileCounts struct {
	// Scanned files were read (footers at least); Untouched ones had
	// nothing to remove; Rewritten ones lost some rows; Deleted ones lost
	// every row.
	Scanned   int `json:"scanned"`
	Untouched int `json:"untouched"`
	Rewritten int `json:"rewritten"`
	Deleted   int `json:"deleted"`
}

// RowGroupCounts count row groups by how much decoding they cost.
type RowGroupCounts struct {
	// Scanned row groups were considered, whatever was done to them.
	Scanned int `json:"scanned"`
	// Copied row groups were kept byte for byte, without decoding.
	Copied int `json:"copied"`
	// Dropped row groups were removed whole, without decoding.
	Dropped int `json:"dropped"`
	// RuleColumnsOnly row groups had only their time, fallback or subject
	// columns decoded, then were copied or dropped whole.
	RuleColumnsOnly int `json:"rule_columns_only"`
	// Rewritten row groups were decoded and re-encoded without some rows.
	Rewritten int `json:"rewritten"`
	// BloomSkipped counts the copied and dropped row groups that the
	// subject column's bloom filter settled where its statistics could
	// not: no subject to erase (or, expired, to hold) is in them.
	BloomSkipped int `json:"bloom_skipped"`
}

// Add adds o to c.
func (c *RowGroupCounts) Add(o RowGroupCounts) {
	c.Scanned += o.Scanned
	c.Copied += o.Copied
	c.Dropped += o.Dropped
	c.RuleColumnsOnly += o.RuleColumnsOnly
	c.Rewritten += o.Rewritten
	c.BloomSkipped += o.BloomSkipped
}

// ErasedSubjects describes the subjects erased in a run.
type ErasedSubjects struct {
	// Listed is the number of distinct subjects on the erasure lists.
	Listed int64 `json:"listed"`
	// Erased is the number of listed subjects this run removed rows of.
	Erased int64 `json:"erased"`
	// Fingerprints identify the erased subjects, sorted: the first 8 bytes
	// in hex of HMAC-SHA256(k, id) with k the SHA-256 of "deid subject
	// fingerprint v1" and the lists' bytes, so whoever holds the lists can
	// check them and nobody can recover an id from the report alone.
	Fingerprints []string `json:"fingerprints"`
}

// RetainFile is what retain did to one file.
type RetainFile struct {
	// Location is the source file's path or gs:// URI.
	Location string `json:"location"`
	// Action is "untouched", "rewritten" or "deleted" ("would ..." in a dry run).
	Action string `json:"action"`
	// RowGroups is the number of the file's row groups.
	RowGroups int `json:"row_groups"`
	// RowsIn and RowsKept count the file's rows before and after.
	RowsIn   int64 `json:"rows_in"`
	RowsKept int64 `json:"rows_kept"`
	// Removed counts the rows deleted or anonymized, by reason.
	Removed map[string]int64 `json:"removed,omitempty"`
	// Anonymized counts the removed rows moved, anonymized, to AnonymizedTo.
	Anonymized int64 `json:"anonymized,omitempty"`
	// AnonymizedTo is the file the anonymized rows went to.
	AnonymizedTo string `json:"anonymized_to,omitempty"`
	// Isolated counts the rows moved to IsolatedTo, in the isolated part.
	Isolated   int64  `json:"isolated,omitempty"`
	IsolatedTo string `json:"isolated_to,omitempty"`
}

// JSON renders the report as indented JSON ending in a newline, without
// its signature.
func (r *Retain) JSON() ([]byte, error) {
	c := *r
	c.Signature = nil
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Signed returns the report's JSON signed with the audit key, exactly as a
// run report is (see Run.Signed): the signature member comes last and covers
// every byte before it.
func (r *Retain) Signed(auditKey []byte, fingerprint string) ([]byte, error) {
	unsigned, err := r.JSON()
	if err != nil {
		return nil, err
	}
	return SignJSON(unsigned, auditKey, fingerprint)
}

// ParseRetain reads a retain report (as deid retain --report writes it),
// signed or not. It decodes the bytes the signature covers only and returns
// the signature, or nil when the report is unsigned; it does not check it:
// VerifyRetain does.
func ParseRetain(data []byte) (*Retain, *Signature, error) {
	unsigned, sig, err := split(data)
	if err != nil {
		return nil, nil, err
	}
	var r Retain
	if err := json.Unmarshal(unsigned, &r); err != nil {
		return nil, nil, fmt.Errorf("not a deid retain report: %w", err)
	}
	if r.Format != RetainFormatV1 {
		return nil, nil, fmt.Errorf("retain report format %q, this deid reads %q", r.Format, RetainFormatV1)
	}
	if sig != nil && r.Signature != nil {
		return nil, nil, fmt.Errorf("%w: two signatures", ErrTampered)
	}
	r.Signature = sig
	return &r, sig, nil
}

// VerifyRetain checks that data is a retain report signed by the holder of
// the audit key whose public key is pub, and returns it. Every failure
// matches ErrTampered.
func VerifyRetain(data []byte, pub ed25519.PublicKey) (*Retain, error) {
	if _, _, err := VerifyJSON(data, pub, "the retain report"); err != nil {
		return nil, err
	}
	r, _, err := ParseRetain(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	return r, nil
}

// RetainDestination is what retain erased from one destination's published
// outputs, so the owner knows which recipients to notify.
type RetainDestination struct {
	// Name is the destination's name in the policy.
	Name string `json:"name"`
	// Output is the folder or gs:// prefix it publishes to.
	Output string `json:"output"`
	// Recovered: see RetainDataset.Recovered.
	Recovered string `json:"recovered,omitempty"`
	// Datasets say per dataset what erasure did to the published files.
	Datasets []*RetainDestinationDataset `json:"datasets"`
	// RowsErased counts the rows removed from the destination's files.
	RowsErased int64 `json:"rows_erased"`
}

// ServiceEnded is a dataset whose service ended (ended_at): all of its
// rows leave the lake (deleted or anonymized; isolated inside the legal
// minimum; kept for a hold) and every published file of it is deleted.
type ServiceEnded struct {
	// At is when the service ended; Stated is ended_at as the policy
	// states it.
	At     time.Time `json:"at"`
	Stated string    `json:"stated"`
	// Recipients are the destinations that had received the dataset, to
	// be told to delete their copies too; nil when retain ran without
	// --outputs.
	Recipients []*Recipient `json:"recipients"`
}

// Recipient is one destination that had received an ended dataset.
type Recipient struct {
	// Destination, Purpose and Output name the destination that received
	// the dataset, its purpose and where it published it.
	Destination string `json:"destination"`
	Purpose     string `json:"purpose"`
	Output      string `json:"output"`
	// Files and Rows are the published files of the dataset and their
	// rows, which this run deleted (a dry run: would delete).
	Files int64 `json:"files"`
	Rows  int64 `json:"rows"`
}

// RecipientsKnown reports whether the run looked at the published outputs
// (Recipients is not nil).
func (e *ServiceEnded) RecipientsKnown() bool { return e.Recipients != nil }

// RetainDestinationDataset is one dataset's erasure in one destination.
type RetainDestinationDataset struct {
	// Dataset is the dataset's name.
	Dataset string `json:"dataset"`
	// Method is how erased subjects were found in the outputs: "pseudonym"
	// (recomputed with the destination's key), "raw id", or "none" when the
	// outputs carry no form of the subject (see Note).
	Method string `json:"method"`
	// Note explains a Method of "none".
	Note string `json:"note,omitempty"`
	// FilesScanned and FilesRewritten count the published files read and
	// those rewritten without the erased subjects' rows.
	FilesScanned   int `json:"files_scanned"`
	FilesRewritten int `json:"files_rewritten"`
	// FilesDeleted counts the files deleted whole (a dataset whose
	// service ended).
	FilesDeleted int `json:"files_deleted,omitempty"`
	// RowsErased counts the rows removed from the published files.
	RowsErased int64 `json:"rows_erased"`
}
