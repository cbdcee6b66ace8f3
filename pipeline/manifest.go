package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

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
	Format      string `json:"format"`
	Destination string `json:"destination"`
	Purpose     string `json:"purpose"`
	// RunID, Now, PolicySHA256 and KeyFingerprint describe the last run that
	// committed; each file records its own.
	RunID          string    `json:"run_id"`
	Now            time.Time `json:"now"`
	PolicySHA256   string    `json:"policy_sha256"`
	KeyFingerprint string    `json:"key_fingerprint,omitempty"`
	// Report is the last run's report, relative to the output folder.
	Report string          `json:"report"`
	Files  []*ManifestFile `json:"files"`
}

// ManifestFile is one committed output file.
type ManifestFile struct {
	report.OutputFile
	// The run that wrote the file and what it ran with.
	RunID          string    `json:"run_id"`
	Now            time.Time `json:"now"`
	PolicySHA256   string    `json:"policy_sha256"`
	KeyFingerprint string    `json:"key_fingerprint,omitempty"`
}

// JSON returns the manifest as indented JSON.
func (m *Manifest) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadManifest reads the manifest of the destination whose output folder is
// output. A destination without one gives an error matching storage.ErrNotExist;
// a manifest naming a file path that CheckOutputPath refuses, a DataError.
func ReadManifest(ctx context.Context, s storage.Store, output string) (*Manifest, error) {
	loc := storage.Join(output, ManifestName)
	src, err := s.Open(ctx, loc)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	b, err := io.ReadAll(io.NewSectionReader(src, 0, src.Size()))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", loc, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: not a deid manifest: %w", loc, err)
	}
	if m.Format != ManifestFormatV1 {
		return nil, fmt.Errorf("%s: manifest format %q, this deid reads %q", loc, m.Format, ManifestFormatV1)
	}
	// retain deletes and rewrites the files a manifest names, verify and
	// report check read them: none may lie outside the output
	if err := checkManifestPaths(loc, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// writeManifest merges this run's files into the destination's manifest and
// writes it, atomically. It is the last write of a run: the commit point.
func (r *runner) writeManifest(ctx context.Context, dst *report.Destination) error {
	old, err := ReadManifest(ctx, r.opt.Store, dst.Output)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		old = &Manifest{}
	case err != nil:
		return fmt.Errorf("%w (move it aside to start a new manifest)", err)
	}
	m := &Manifest{
		Format: ManifestFormatV1, Destination: dst.Name, Purpose: dst.Purpose, RunID: r.opt.RunID, Now: r.plan.Now,
		PolicySHA256: r.plan.Policy.SHA256, KeyFingerprint: dst.KeyFingerprint,
		Report: ReportsDir + "/" + r.opt.RunID + "/report.json",
	}
	written := map[string]bool{}
	for _, f := range dst.Files {
		written[f.Path] = true
		m.Files = append(m.Files, &ManifestFile{OutputFile: *f, RunID: r.opt.RunID, Now: r.plan.Now,
			PolicySHA256: r.plan.Policy.SHA256, KeyFingerprint: dst.KeyFingerprint})
	}
	for _, f := range old.Files {
		if !written[f.Path] {
			m.Files = append(m.Files, f)
		}
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if m.Files == nil {
		m.Files = []*ManifestFile{}
	}
	return r.writeJSON(ctx, storage.Join(dst.Output, ManifestName), m)
}
