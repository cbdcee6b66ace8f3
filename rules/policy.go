// Package rules is deid's policy language: the YAML a data engineer writes,
// its strict decoding with positions, environment references, key references,
// the semantic-type vocabulary, validation, and compilation into a Plan that
// the pipeline executes.
//
// Load reads and validates a policy without touching data or secrets and
// reports every problem at once, each with file, line, column and the dotted
// path of the offending key. Compile then loads the keys, binds the
// transforms and computes retention cut-offs for a given "now", producing an
// immutable Plan. Nothing in this package reads data files, and it never
// imports pipeline (cmd/deid's TestLayoutRules checks it).
//
// A destination's output never overlaps a folder deid reads or another
// output (locations.go). Parse compares the locations lexically; Load
// compares them again once links on disk are resolved. That second check
// lives here rather than in the pipeline because it reads only the names of
// folders and links, never data, and because every command loads its policy
// through Load: none can start without it.
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/deidproject/deid/transforms"
)

// Policy is a loaded, validated policy. It holds references to keys, never
// key material, and is not modified after Load.
type Policy struct {
	// File is the policy's path as given to Load.
	File string
	// SHA256 is the hex SHA-256 of the policy file's bytes.
	SHA256 string
	// Name names the policy (and, by default, its job) in reports.
	Name string
	// Description is free text for humans.
	Description string
	// Keys are the declared secret keys, in file order.
	Keys []*KeyDecl
	// AuditKey is the key that signs the run's reports, or nil when the
	// policy declares none (reports are then unsigned). Its Name is
	// "audit_key".
	AuditKey *KeyDecl
	// Datasets are the declared source datasets, in file order.
	Datasets []*DatasetDecl
	// Destinations are the declared destinations, in file order.
	Destinations []*DestinationDecl
	// Jobs are the scheduled jobs (`deid serve`, `deid run --job`), in
	// file order; none when the policy declares no jobs: list.
	Jobs []*JobDecl
}

// KeyDecl declares a named key by reference.
type KeyDecl struct {
	Name string
	Ref  KeyRef
	Pos  Pos
	// Allow is the policy's reason for accepting a key file every user can
	// read (a sample key published with the code); empty when it states
	// none, and such a file is then refused.
	Allow string
}

// DatasetDecl declares a source dataset.
type DatasetDecl struct {
	Name string
	Pos  Pos
	// Source is a file path or a glob (* within one path segment, ** across).
	Source string
	// Root, when set, is the folder output paths are taken relative to; by
	// default the source pattern's fixed prefix (the folder before its first
	// glob character). It must contain the source.
	Root string
	// TimeZone is the IANA zone of timestamps stored without a UTC flag and
	// of calendar retention periods; nil when the dataset declares none.
	TimeZone *time.Location
	// Subject is the column that identifies the data subject, if any.
	Subject string
	// Unclassified is "fail" (the default) or "drop": what to do with a
	// column in the data that Columns does not classify.
	Unclassified string
	// AllowEmpty, when true, lets the source match no file: validate, plan
	// and run then warn instead of failing with a data error.
	AllowEmpty bool
	// Columns classify the dataset's columns, in file order.
	Columns []*ColumnDecl
	// Retention is the dataset's retention rule, or nil.
	Retention *RetentionDecl
	// Erasure lists the dataset's erasure lists.
	Erasure []*ErasureDecl
	// Consent lists the dataset's consent withdrawal lists.
	Consent []*ConsentDecl
	// Children is the dataset's rule excluding children, or nil.
	Children *ChildrenDecl
	// LegalMinimum is the period the law requires the dataset's rows to be
	// kept, measured from the retention time column, or nil. Retention may
	// not be shorter, and erasure waits for it (deid retain).
	LegalMinimum *LegalMinimumDecl
	// Holds lists the dataset's legal hold lists: their subjects are never
	// deleted or anonymized by deid retain while listed.
	Holds []*HoldDecl
	// Ended, when set, is when the service that produced the dataset
	// closed: from then on deid run publishes none of its rows and deid
	// retain deletes or anonymizes all of them (the legal minimum still
	// isolates what it must keep) and its published files.
	Ended *EndedDecl
}

// Column returns the declared column called name, or nil.
func (d *DatasetDecl) Column(name string) *ColumnDecl {
	for _, c := range d.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ColumnDecl classifies one column.
type ColumnDecl struct {
	Name string
	Type *SemanticType
	Pos  Pos
}

// RetentionDecl keeps rows for Keep measured from TimeColumn.
type RetentionDecl struct {
	TimeColumn string
	Keep       Duration
	// OnNullRemove removes rows whose time is NULL; otherwise they are kept
	// (measured from the fallback clock when OnNullFallback is set).
	OnNullRemove bool
	// OnNullFallback, when set, measures a row whose time is NULL from
	// another time column: a NULL completed_at is kept until created_at plus
	// the fallback's Keep, so an incomplete record cannot stay forever.
	OnNullFallback *FallbackDecl
	// Then says what deid retain does with rows past retention and rows of
	// erased subjects: ThenDelete (the default) or ThenAnonymize.
	Then string
	// Anonymize are the column treatments of anonymized rows (Then is
	// ThenAnonymize), in the dataset's column order; a column not listed is
	// dropped from anonymized rows.
	Anonymize []*TreatmentDecl
	Pos       Pos
	// KeepPos locates keep, for errors found against the legal minimum.
	KeepPos Pos
	// FutureSkew is how far after the run's now a time may be and still be
	// a valid event time (future_skew; DefaultFutureSkew when zero): a
	// later time is handled as a NULL time (on_null).
	FutureSkew Duration
}

// FallbackDecl is the clock of rows whose retention time is NULL.
type FallbackDecl struct {
	TimeColumn string
	Keep       Duration
	Pos        Pos
}

// ErasureDecl is one list of subjects to erase.
type ErasureDecl struct {
	// List is the path of a Parquet or CSV file (by extension) of subject ids.
	List string
	// Column is the list's column holding the ids; by default the dataset's
	// subject column name.
	Column string
	Pos    Pos
}

// DestinationDecl declares where de-identified data goes and how.
type DestinationDecl struct {
	Name    string
	Pos     Pos
	Purpose string
	// Output is the destination's root directory (or URI).
	Output string
	// OutputPos locates the output's value, for errors about it.
	OutputPos Pos
	// Key names the key (in Policy.Keys) keyed transforms use; empty when
	// the destination uses none.
	Key    string
	KeyPos Pos
	// KeyAllow is the policy's reason for sharing Key with another
	// destination (whose pseudonyms can then be joined with this one's);
	// empty when it states none, and sharing is then refused.
	KeyAllow string
	Datasets []*BindingDecl
}

// BindingDecl says how one dataset is treated in a destination.
type BindingDecl struct {
	Dataset string
	Pos     Pos
	Columns []*TreatmentDecl
	// QuasiIdentifiers are the output columns whose combination the
	// re-identification risk is measured on (equivalence classes); empty
	// when the policy lists none.
	QuasiIdentifiers []string
	// MinK is the smallest equivalence class size the policy accepts; 0
	// when it sets none. deid run suppresses the rows of smaller classes;
	// deid verify reports a smaller class as a finding.
	MinK int
}

// TreatmentDecl is the transform chosen for one column.
type TreatmentDecl struct {
	Column    string
	Transform *transforms.Spec
	Params    transforms.Params
	Pos       Pos
	// Allow is the stated reason for a treatment below the purpose's floor;
	// empty when the treatment meets it.
	Allow string
	// Default marks the purpose's default treatment, for a column the
	// destination does not name.
	Default bool
}

// Load reads the policy file at path, substitutes environment references
// with lookup, and validates it. The error, if any, is an ErrorList holding
// every problem found.
func Load(path string, lookup LookupEnv) (*Policy, error) {
	data, err := readRegularFile(path, MaxPolicyBytes)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read the policy: %v", err)}}
	}
	p, err := Parse(path, data, lookup)
	if err != nil {
		return nil, err
	}
	if err := p.CheckLocations(); err != nil {
		return nil, err
	}
	return p, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Parse is Load for policy text already in memory; file names it in errors
// and anchors relative paths.
func Parse(file string, data []byte, lookup LookupEnv) (*Policy, error) {
	sum := sha256.Sum256(data)
	p := &Policy{File: file, SHA256: hex.EncodeToString(sum[:])}
	d := &decoder{file: file, lookup: lookup}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, ErrorList{syntaxError(file, data, err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, ErrorList{{File: file, Msg: "the policy is empty"}}
	}
	root := doc.Content[0]
	var datasets, destinations, auditKey, jobs *yaml.Node
	d.mapping(root, "",
		field{"version", true, func(n *yaml.Node, path string) {
			if v, ok := d.integer(n, path); ok {
				if v != 1 {
					d.errorf(resolve(n), path, "unsupported policy version %d (this deid reads version 1)", v)
				}
			}
		}},
		field{"name", true, func(n *yaml.Node, path string) { p.Name = d.name(n, path) }},
		field{"description", false, func(n *yaml.Node, path string) { p.Description, _ = d.scalar(n, path) }},
		field{"keys", false, func(n *yaml.Node, path string) { p.Keys = d.keys(n, path) }},
		field{"audit_key", false, func(n *yaml.Node, _ string) { auditKey = n }},
		field{"datasets", true, func(n *yaml.Node, _ string) { datasets = n }},
		field{"destinations", true, func(n *yaml.Node, _ string) { destinations = n }},
		field{"jobs", false, func(n *yaml.Node, _ string) { jobs = n }},
	)
	if auditKey != nil {
		p.AuditKey = d.auditKey(auditKey, "audit_key", p.Keys)
	}
	// datasets first: destinations refer to them
	if datasets != nil {
		p.Datasets = d.datasets(datasets, "datasets", filepath.Dir(file))
	}
	if destinations != nil {
		p.Destinations = d.destinations(destinations, "destinations", p)
	}
	if jobs != nil {
		d.jobs(jobs, "jobs", p)
	}
	d.checkChildrenRefs(p)
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return p, nil
}
