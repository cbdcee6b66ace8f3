package output

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
)

// ManifestFormatV1 identifies version 1 of the manifest.
const ManifestFormatV1 = "deid-manifest/v1"

// Manifest is a destination's _manifest.json: the list of committed files
// with what each was derived from and what each column now means. It
// describes the destination as it is: a run replaces the entries of the
// files it wrote and keeps the others.
type Manifest struct {
	// Format names the document's version: "deid-manifest/v1".
	Format string `json:"format"`
	// Deid is the deid build that wrote the manifest last (a run, a merge,
	// or deid retain erasing in the output): JSON sets it. Nil in a
	// manifest written before deid recorded it.
	Deid *report.Build `json:"deid,omitempty"`
	// Destination and Purpose name the destination the output is for.
	Destination string `json:"destination"`
	Purpose     string `json:"purpose"`
	// RunID, Now, PolicySHA256 and KeyFingerprint describe the last run that
	// committed; each file records its own.
	RunID          string    `json:"run_id"`
	Now            time.Time `json:"now"`
	PolicySHA256   string    `json:"policy_sha256"`
	KeyFingerprint string    `json:"key_fingerprint,omitempty"`
	// Report is the last run's report, relative to the output folder.
	Report string `json:"report"`
	// Files are the published files, each with the run that wrote it.
	Files []*ManifestFile `json:"files"`
}

// ManifestFile is one committed output file.
type ManifestFile struct {
	report.OutputFile
	// RunID, Now, PolicySHA256 and KeyFingerprint are the run that wrote
	// the file and what it ran with.
	RunID          string    `json:"run_id"`
	Now            time.Time `json:"now"`
	PolicySHA256   string    `json:"policy_sha256"`
	KeyFingerprint string    `json:"key_fingerprint,omitempty"`
	// ChildrenWithheld are the keyed fingerprints of the rows a children
	// rule taking ages from another dataset withheld from the file, sorted;
	// every later derivation of the file keeps them out (withheld.go).
	ChildrenWithheld []string `json:"children_withheld,omitempty"`
}

// JSON returns the manifest as indented JSON, recording the running deid's
// build as the one that wrote it.
func (m *Manifest) JSON() ([]byte, error) {
	c := *m
	c.Deid = report.BuildPtr()
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadManifest reads the manifest of the destination whose output folder is
// output. A destination without one gives an error matching storage.ErrNotExist;
// a manifest that is a symbolic link, is no deid manifest or names a file
// path that CheckOutputPath refuses, a DataError naming it.
func ReadManifest(ctx context.Context, s storage.Store, output string) (*Manifest, error) {
	loc := storage.Join(output, ManifestName)
	// a manifest linked elsewhere (into the lake) is never read as ours
	if err := storage.NoLinks(ctx, "read the manifest", loc); err != nil && !errors.Is(err, storage.ErrNotExist) {
		return nil, dataerr.Mark(err)
	}
	b, err := storage.ReadFile(ctx, s, loc)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, dataerr.Mark(fmt.Errorf("%s: not a deid manifest: %w", loc, err))
	}
	if m.Format != ManifestFormatV1 {
		return nil, dataerr.Mark(fmt.Errorf("%s: manifest format %q, this deid reads %q", loc, m.Format, ManifestFormatV1))
	}
	// retain deletes and rewrites the files a manifest names, verify and
	// report check read them: none may lie outside the output
	if err := CheckManifestPaths(loc, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
