// Package report holds the record of a run as data: what was read, what was
// removed and why, what was written with which treatment, hashes and key
// fingerprints, timings and warnings. The pipeline fills it in as it makes
// each decision; rendering (JSON, and the self-contained HTML page of
// html.go) only formats what is recorded and never recomputes it. It
// imports neither pipeline nor rules: a report is data, its Ed25519
// signature and its page (cmd/deid's TestLayoutRules checks it).
//
// The JSON form is a contract for auditors and tools: fields are only ever
// added, and Format names its version.
package report

import (
	"encoding/json"
	"sort"
	"sync"
	"time"
)

// FormatV1 identifies version 1 of the report's JSON form.
const FormatV1 = "deid-report/v1"

// Run is the report of one run.
type Run struct {
	// Format names the document's version: "deid-report/v1".
	Format string `json:"format"`
	// Deid is the deid build that wrote the report (see Build); nil in a
	// report written before deid recorded it.
	Deid *Build `json:"deid,omitempty"`
	// RunID is the UTC start time and a random suffix: sortable and unique.
	RunID string `json:"run_id"`
	// Command is "run" or "plan" (a dry run that reads and counts but writes nothing).
	Command string `json:"command"`
	// Outcome is "succeeded" or "failed".
	Outcome string `json:"outcome"`
	// Error is the failure, when Outcome is "failed".
	Error string `json:"error,omitempty"`
	// Policy identifies the policy the run executed.
	Policy Policy `json:"policy"`
	// Now is the reference instant retention was measured from.
	Now time.Time `json:"now"`
	// StartedAt and FinishedAt are the run's wall-clock start and end (UTC).
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Seconds is the wall time of the run.
	Seconds float64 `json:"seconds"`
	// Settings are how the run was executed; they never change the output.
	Settings Settings `json:"settings"`
	// Keys are the fingerprints of the keys used: never the keys.
	Keys []Key `json:"keys"`
	// Datasets are what was read of each source dataset and what its row
	// rules removed.
	Datasets []*Dataset `json:"datasets"`
	// Destinations are what was written for each destination.
	Destinations []*Destination `json:"destinations"`
	// Warnings are the run's warnings, as logged (a treatment below a
	// floor, a key file readable by every user, ...).
	Warnings []string `json:"warnings"`
	// WarningDestinations names, for each warning that concerns some
	// destinations only (a treatment below a floor, a dataset they read, a
	// bucket they publish to), those destinations, sorted. A warning it
	// does not list concerns the whole run (the policy, the audit key) and
	// is in every destination's report. ForDestination keeps only the
	// destination's own warnings and the run's.
	WarningDestinations map[string][]string `json:"warning_destinations,omitempty"`
	// StorageRetries counts the storage requests retried after a
	// transient error (GCS: 429, 5xx, dropped connections).
	StorageRetries int64 `json:"storage_retries,omitempty"`
	// Chain links a published report to the previous report of its job; nil
	// in reports that are not published (plan, --json).
	Chain *Chain `json:"chain,omitempty"`
	// Signature signs every byte of the report before it, and stays the
	// last field (see Signed); nil when the policy has no audit key.
	Signature *Signature `json:"signature,omitempty"`
	// Verification is deid verify's result for this run's destination, read
	// from verify.json beside the report to render the page; it is not part
	// of report.json.
	Verification *Verification `json:"-"`

	mu sync.Mutex
}

// Policy identifies the policy a run executed.
type Policy struct {
	// File is the policy file as named on the command line (or
	// "builtin:sample-policy.yaml").
	File string `json:"file"`
	// Name is the policy's name: field.
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the policy file's bytes.
	SHA256 string `json:"sha256"`
}

// Settings are the run's execution settings; they do not change what is
// written, only how fast.
type Settings struct {
	// Workers is the number of concurrent row-group tasks.
	Workers int `json:"workers"`
	// BatchSize is the number of rows decoded at a time.
	BatchSize int `json:"batch_size"`
}

// Key is a key's name and fingerprint.
type Key struct {
	// Name is the key's name under the policy's keys:.
	Name string `json:"name"`
	// Fingerprint identifies the key without revealing it: the first 8
	// bytes, in hex, of HMAC-SHA256(key, "deid key fingerprint v1").
	Fingerprint string `json:"fingerprint"`
	// Destinations are the destinations that use the key.
	Destinations []string `json:"destinations"`
	// Allow is the policy's reason for accepting a key file every user can
	// read (keys: {NAME: {ref, allow}}); empty when it states none.
	Allow string `json:"allow,omitempty"`
}

// Dataset is what a run read of one source dataset and which rows its row
// rules removed.
type Dataset struct {
	// Name is the dataset's name in the policy.
	Name string `json:"name"`
	// Source is the dataset's source location or glob, as the policy says.
	Source string `json:"source"`
	// Retention describes the retention rule, or is nil.
	Retention *Retention `json:"retention,omitempty"`
	// Erasure describes the erasure lists read.
	Erasure []ErasureList `json:"erasure,omitempty"`
	// Consent describes the consent withdrawal lists read.
	Consent []ConsentList `json:"consent,omitempty"`
	// Files are the input files read, with their sizes, hashes and counts.
	Files []*InputFile `json:"files"`
	// RowsIn and RowsKept total the files.
	RowsIn   int64 `json:"rows_in"`
	RowsKept int64 `json:"rows_kept"`
	// Removed counts rows removed by reason (null_time, future_time,
	// retention, erasure). future_time counts rows whose time is after now
	// plus the retention's future_skew, removed as a NULL time would be.
	Removed map[string]int64 `json:"removed"`
	// FutureTimeKept counts the rows kept whose time is after now plus the
	// retention's future_skew: handled as a NULL time, they stay with
	// on_null: keep or a fallback clock not yet run out (as retain's
	// RetainDataset.FutureTimeKept).
	FutureTimeKept int64 `json:"future_time_kept"`
	// NonexistentLocalTime counts wall-clock times (stored without the
	// UTC flag) in a spring-forward gap of the dataset's time_zone, read
	// with the offset before the gap (moved forward by its length);
	// AmbiguousLocalTime those in an autumn overlap, read as the earlier
	// instant.
	NonexistentLocalTime int64 `json:"nonexistent_local_time,omitempty"`
	// AmbiguousLocalTime: see NonexistentLocalTime.
	AmbiguousLocalTime int64 `json:"ambiguous_local_time,omitempty"`
	// DroppedColumns are columns the data has but the policy does not
	// classify, dropped because the dataset says unclassified: drop.
	DroppedColumns []string `json:"dropped_columns,omitempty"`
	// Unchanged are the inputs an incremental run did not read: every
	// output they feed is already committed from them, unchanged.
	Unchanged []string `json:"unchanged_inputs,omitempty"`
}

// Retention is a retention rule as applied.
type Retention struct {
	// TimeColumn is the column retention is measured on.
	TimeColumn string `json:"time_column"`
	// Keep is how long rows are kept, as the policy states it (365d, 3y).
	Keep string `json:"keep"`
	// Cutoff is now minus Keep: rows whose time is before it are removed.
	Cutoff time.Time `json:"cutoff"`
	// OnNull is what the rule does with a row whose time is NULL (or in the
	// future): "keep", "remove" or "fallback" (measured from the clock of
	// OnNullFallback). Reports written before OnNullFallback was recorded
	// say "keep" for a fallback (run) or "fallback COLUMN + KEEP" (retain).
	OnNull string `json:"on_null"`
	// OnNullFallback is the fallback clock of on_null: {fallback, keep}; nil
	// with on_null: keep or remove.
	OnNullFallback *Fallback `json:"on_null_fallback,omitempty"`
	// TimeZone is the dataset's time_zone: calendar periods (mo, y) are
	// counted in it, and times stored without the UTC flag read in it.
	TimeZone string `json:"time_zone,omitempty"`
	// FutureSkew and LatestEventTime say which times were in the future:
	// after LatestEventTime (now plus the skew), decided as NULL times.
	FutureSkew      string    `json:"future_skew,omitempty"`
	LatestEventTime time.Time `json:"latest_event_time,omitzero"`
}

// Fallback is the fallback clock of a retention rule's on_null: a row
// whose time is NULL is kept while its TimeColumn is at or after Cutoff
// (now minus Keep), and removed after; a NULL fallback time is kept.
type Fallback struct {
	// TimeColumn is the fallback clock's column.
	TimeColumn string `json:"time_column"`
	// Keep is how long after TimeColumn a row with a NULL time is kept.
	Keep string `json:"keep"`
	// Cutoff is now minus Keep.
	Cutoff time.Time `json:"cutoff"`
}

// NullTimeRule says in words what the rule does with a NULL time, as the
// policy states it.
func (r *Retention) NullTimeRule() string {
	switch {
	case r.OnNullFallback != nil:
		f := r.OnNullFallback
		return "a NULL " + r.TimeColumn + " is measured from " + f.TimeColumn + " instead: kept for " + f.Keep +
			" after it (removed when " + f.TimeColumn + " is before " + f.Cutoff.UTC().Format(time.RFC3339) + "; a NULL " + f.TimeColumn + " too is kept)"
	case r.OnNull == "remove":
		return "a NULL time is removed"
	case r.OnNull == "keep":
		return "a NULL time is kept"
	}
	return "a NULL time: " + r.OnNull // as an older report recorded it
}

// ErasureList is one erasure list as read: its ids are never reported.
type ErasureList struct {
	// Location is the list's file (Parquet or CSV).
	Location string `json:"location"`
	// Column is the list's column of subject ids.
	Column string `json:"column"`
	// Size and SHA256 are the list file's size and hex SHA-256 as read.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Generation and CRC32C identify the list's version on GCS.
	Generation int64  `json:"generation,omitempty"`
	CRC32C     string `json:"crc32c,omitempty"`
	// Entries counts the list's non-NULL ids; Subjects the distinct ones.
	Entries  int64 `json:"entries"`
	Subjects int64 `json:"subjects"`
}

// ConsentList is one consent withdrawal list read.
type ConsentList struct {
	// Location is the list's CSV file.
	Location string `json:"location"`
	// Column is the list's column of subject ids.
	Column string `json:"column"`
	// Size and SHA256 are the list file's size and hex SHA-256 as read.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Generation and CRC32C identify the list's version on GCS.
	Generation int64  `json:"generation,omitempty"`
	CRC32C     string `json:"crc32c,omitempty"`
	// History says which rows a withdrawal excludes: all, or from_withdrawal.
	History string `json:"history"`
	// Entries counts the list's withdrawals (rows with a subject).
	Entries int64 `json:"entries"`
}

// InputFile is one source file read.
type InputFile struct {
	// Location is the file's path or gs:// URI.
	Location string `json:"location"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
	// ModTime is the file's modification time as the store reports it.
	ModTime time.Time `json:"mod_time"`
	// Generation is the object's generation on GCS (0 on local disk).
	Generation int64 `json:"generation,omitempty"`
	// CRC32C is the stored object's CRC32C (Castagnoli) in hex, on GCS.
	CRC32C string `json:"crc32c,omitempty"`
	// SHA256 is the file's SHA-256 in hex, computed by deid run for a file
	// whose store keeps no checksum (local files); empty on GCS, whose
	// generation and CRC32C identify the object.
	SHA256 string `json:"sha256,omitempty"`
	// RowGroups is the number of the file's row groups.
	RowGroups int `json:"row_groups"`
	// RowsIn and RowsKept count the file's rows, and those its dataset's
	// row rules kept.
	RowsIn   int64 `json:"rows_in"`
	RowsKept int64 `json:"rows_kept"`
	// Removed counts the file's rows removed, by reason (as
	// Dataset.Removed).
	Removed map[string]int64 `json:"removed"`
	// Seconds is the wall time from the start of the file's first task to
	// the end of its last.
	Seconds float64 `json:"seconds"`
}

// Destination is what a run wrote to one destination.
type Destination struct {
	// Name is the destination's name in the policy.
	Name string `json:"name"`
	// Purpose is its purpose (training, analytics, partner_sharing,
	// research), which sets the default treatments and floors.
	Purpose string `json:"purpose"`
	// Output is the folder or gs:// prefix it publishes to.
	Output string `json:"output"`
	// KeyFingerprint is the fingerprint of the destination's key (see
	// Key.Fingerprint).
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// KeyAllow is the policy's reason for sharing the destination's key
	// with another destination (key: {name, allow}); empty when it states
	// none.
	KeyAllow string `json:"key_allow,omitempty"`
	// Datasets are how each dataset's columns are treated here.
	Datasets []*Treatment `json:"datasets"`
	// Files are the files written (or kept, when incremental).
	Files []*OutputFile `json:"files"`
	// RowsOut and Bytes total the files.
	RowsOut int64 `json:"rows_out"`
	Bytes   int64 `json:"bytes"`
	// Removed counts rows kept from this destination only, by reason
	// (consent, child; small_class, when the destination sets min_k for a
	// dataset: rows of equivalence classes smaller than min_k), beyond
	// those removed from every destination.
	Removed map[string]int64 `json:"removed"`
	// AgeUnknown counts rows a children rule kept because their age could
	// not be told (no or invalid birth date, no event time).
	AgeUnknown int64 `json:"age_unknown"`
	// Unchanged are output files an incremental run kept as committed
	// (their input, policy, key and lists are unchanged), by path.
	Unchanged []string `json:"unchanged,omitempty"`
	// Recomputed are those of Unchanged that the run computed again (an
	// input of a rule it reads may have changed) and found byte for byte
	// the committed file, so it did not publish them again.
	Recomputed []string `json:"recomputed,omitempty"`
	// Deleted are output files this commit removed, by path: deid retain
	// erased every row they held. deid report check expects them gone.
	Deleted []string `json:"deleted,omitempty"`
	// NotCommitted, set on a run's in-memory report, says why the run
	// committed nothing to this destination (an incremental run that found
	// nothing new): no report of it is in the output's chain.
	NotCommitted string `json:"not_committed,omitempty"`
}

// Treatment is how one dataset's columns are treated in a destination.
type Treatment struct {
	// Dataset is the dataset's name.
	Dataset string `json:"dataset"`
	// Columns are its columns' treatments in this destination.
	Columns []Column `json:"columns"`
	// QuasiIdentifiers and MinK are the policy's re-identification risk
	// measure for the dataset in this destination (quasi_identifiers,
	// min_k); empty and 0 when it states none.
	QuasiIdentifiers []string `json:"quasi_identifiers,omitempty"`
	MinK             int      `json:"min_k,omitempty"`
	// Children is the dataset's children rule when it keeps children out
	// of this destination; nil otherwise.
	Children *Children `json:"children,omitempty"`
}

// Children is a dataset's children rule as the policy states it: rows of
// subjects younger than Below full years (Below included when Inclusive)
// at the event are kept out of the destination.
type Children struct {
	// Dataset names the other dataset the birth dates come from, joined on
	// the subject; empty: this dataset's columns.
	Dataset string `json:"dataset,omitempty"`
	// BirthDate or ResidentID names the column the age comes from.
	BirthDate  string `json:"birth_date,omitempty"`
	ResidentID string `json:"resident_id,omitempty"`
	// Below is the age in full years under which rows are kept out.
	Below int `json:"below"`
	// Inclusive: rows of subjects exactly Below years old are kept out too.
	Inclusive bool `json:"inclusive,omitempty"`
	// TimeColumn is the event time the age is measured at (the rule's, or
	// the retention's); empty: at the run's now.
	TimeColumn string `json:"time_column,omitempty"`
}

// Column is one column's treatment, as the manifest also records it.
type Column struct {
	// Name is the column's name, in the source and the output.
	Name string `json:"name"`
	// SemanticType is what the policy classifies the column as (account_id,
	// ip, free_text, ...).
	SemanticType string `json:"semantic_type,omitempty"`
	// Transform is the transform applied (keep, drop, pseudonymize, ...).
	Transform string `json:"transform"`
	// Params are the transform's parameters, defaults included.
	Params map[string]any `json:"params,omitempty"`
	// Result says what is left of the value: raw, scrubbed, generalized,
	// pseudonym or removed.
	Result string `json:"result"`
	// Meaning says in a sentence what the output column holds.
	Meaning string `json:"meaning"`
	// Default marks the purpose's default treatment (the policy names none).
	Default bool `json:"default,omitempty"`
	// Allow is the policy's reason for a treatment below the purpose's floor.
	Allow string `json:"allow,omitempty"`
	// Floor is the least protection the destination's purpose allows for
	// the column's semantic type (raw, scrubbed, generalized, pseudonym or
	// removed); recorded in a destination's treatments, not per file.
	Floor string `json:"floor,omitempty"`
	// SourceType and OutputType are the storage types before and after.
	SourceType string `json:"source_type,omitempty"`
	OutputType string `json:"output_type,omitempty"`
}

// OutputFile is one file written to a destination.
type OutputFile struct {
	// Path is relative to the destination's output: <dataset>/<input's relative path>.
	Path string `json:"path"`
	// Dataset is the dataset the file belongs to.
	Dataset string `json:"dataset"`
	// Input is the source file the output was derived from.
	Input Input `json:"input"`
	// Rows, Bytes and SHA256 are the file's row count, size and hex
	// SHA-256, which deid report check verifies.
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Generation and CRC32C identify the published object on GCS.
	Generation int64  `json:"generation,omitempty"`
	CRC32C     string `json:"crc32c,omitempty"`
	// Columns are the output's columns with their treatment.
	Columns []Column `json:"columns"`
}

// Input identifies the version of a source file an output came from.
type Input struct {
	// Location, Size, ModTime and Generation identify the source file as
	// read (as InputFile's).
	Location   string    `json:"location"`
	Size       int64     `json:"size"`
	ModTime    time.Time `json:"mod_time"`
	Generation int64     `json:"generation,omitempty"`
	// CRC32C is the stored object's CRC32C (Castagnoli) in hex, on GCS.
	CRC32C string `json:"crc32c,omitempty"`
	// SHA256 is the file's SHA-256 in hex when the store keeps no checksum
	// (local files), as InputFile.SHA256.
	SHA256 string `json:"sha256,omitempty"`
}

// Lock and Unlock guard the report while workers record into it.
func (r *Run) Lock()   { r.mu.Lock() }
func (r *Run) Unlock() { r.mu.Unlock() }

// AddRemoved adds counts by reason into m.
func AddRemoved(m map[string]int64, counts map[string]int64) {
	for k, v := range counts {
		m[k] += v
	}
}

// Finish sorts what workers appended concurrently, so that the report does
// not depend on scheduling, and sets the outcome.
func (r *Run) Finish(end time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.FinishedAt = end.UTC()
	r.Seconds = end.Sub(r.StartedAt).Seconds()
	r.Outcome = "succeeded"
	if err != nil {
		r.Outcome, r.Error = "failed", err.Error()
	}
	for _, d := range r.Datasets {
		sort.Slice(d.Files, func(i, j int) bool { return d.Files[i].Location < d.Files[j].Location })
	}
	for _, d := range r.Destinations {
		sort.Slice(d.Files, func(i, j int) bool { return d.Files[i].Path < d.Files[j].Path })
	}
	sort.Strings(r.Warnings)
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	// the full report says which destinations each warning concerns
	for _, w := range r.Warnings {
		if _, explicit := r.WarningDestinations[w]; !explicit {
			if ds := r.scopeOf(w); ds != nil {
				if r.WarningDestinations == nil {
					r.WarningDestinations = map[string][]string{}
				}
				r.WarningDestinations[w] = ds
			}
		}
	}
}

// JSON returns the report as indented JSON.
func (r *Run) JSON() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ForDestination returns a copy of the report that shows only the named
// destination (and the datasets it reads): what that destination's output
// folder receives, so one recipient's report does not describe another's.
func (r *Run) ForDestination(name string) *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &Run{Format: r.Format, Deid: r.Deid, RunID: r.RunID, Command: r.Command, Outcome: r.Outcome, Error: r.Error, Policy: r.Policy,
		Now: r.Now, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Seconds: r.Seconds, Settings: r.Settings,
		Warnings: r.warningsFor(name), StorageRetries: r.StorageRetries}
	for _, w := range c.Warnings {
		if r.scopeOf(w) != nil {
			if c.WarningDestinations == nil {
				c.WarningDestinations = map[string][]string{}
			}
			c.WarningDestinations[w] = []string{name}
		}
	}
	var dst *Destination
	for _, d := range r.Destinations {
		if d.Name == name {
			dst = d
		}
	}
	if dst == nil {
		return c
	}
	c.Destinations = []*Destination{dst}
	reads := map[string]bool{}
	for _, t := range dst.Datasets {
		reads[t.Dataset] = true
	}
	for _, d := range r.Datasets {
		if reads[d.Name] {
			c.Datasets = append(c.Datasets, d)
		}
	}
	for _, k := range r.Keys {
		for _, user := range k.Destinations {
			if user == name {
				c.Keys = append(c.Keys, Key{Name: k.Name, Fingerprint: k.Fingerprint, Destinations: []string{name}, Allow: k.Allow})
			}
		}
	}
	return c
}
