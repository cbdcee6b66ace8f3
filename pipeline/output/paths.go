package output

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/report"
)

// deid's own state files (manifests, shard reports, retain journals) name
// files that deid then deletes, overwrites or signs for. Whoever can write
// to an output can write those files too, so every path read from one is
// checked before anything acts on it: a manifest's or report's file path by
// CheckOutputPath, a run id by CheckRunID, a retain journal's locations by
// package retain against the root the journal belongs to.

// CheckOutputPath returns an error unless p, an output file's path as a
// manifest or report records it (relative to the destination's output,
// with "/" separators), is one a run could have published: not empty, in
// clean form (no "./", "//" or trailing "/"), local (filepath.IsLocal: not
// absolute, no ".." leaving the output), without a NUL byte or control
// character (nor, on Windows, a backslash: a separator there, a name's
// character elsewhere), and not inside deid's own folders (_reports,
// .deid-retain, ...) nor in a folder named .deid-commit.
func CheckOutputPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty file path")
	case strings.ContainsRune(p, 0) || strings.IndexFunc(p, unicode.IsControl) >= 0:
		return fmt.Errorf("file path %q holds a NUL byte or a control character", p)
	case filepath.Separator == '\\' && strings.ContainsRune(p, '\\'):
		// a separator on Windows; on other systems a name's character
		return fmt.Errorf("file path %q holds a backslash", p)
	case path.IsAbs(p) || !filepath.IsLocal(p) || p == ".":
		return fmt.Errorf("file path %q is not a relative path inside the output", p)
	case path.Clean(p) != p:
		return fmt.Errorf("file path %q is not in clean form (%q)", p, path.Clean(p))
	}
	first, _, _ := strings.Cut(p, "/")
	if slices.Contains(OwnNames, first) || first == RetainDir+".lock" || slices.Contains(strings.Split(p, "/"), CommitDir) {
		return fmt.Errorf("file path %q lies in deid's own %s", p, first)
	}
	return nil
}

// maxRunID bounds a run id's length: it names folders and objects.
const maxRunID = 200

// CheckRunID returns an error unless id has the form of a run id, which
// names a folder (<output>/_reports/<run id>, .deid-shards/<run id>, the
// retain work folder): not empty, not "." or "..", at most 200 bytes, and
// without "/", backslash, space or control character.
func CheckRunID(id string) error {
	switch {
	case id == "" || id == "." || id == "..":
		return fmt.Errorf("run id %q: want a name such as 20261101T020000Z-1a2b3c4d", id)
	case len(id) > maxRunID:
		return fmt.Errorf("run id of %d bytes: at most %d", len(id), maxRunID)
	case strings.IndexFunc(id, func(r rune) bool { return r == '/' || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("run id %q holds a slash, backslash, space or control character", id)
	}
	return nil
}

// CheckManifestPaths refuses manifest m, read from loc, if one of its file
// paths fails CheckOutputPath: a data error naming the manifest.
func CheckManifestPaths(loc string, m *Manifest) error {
	for i, f := range m.Files {
		if err := CheckOutputPath(f.Path); err != nil {
			return &dataerr.Error{Location: loc, Err: fmt.Errorf("files[%d]: %w: the manifest was not written by deid; restore it, or move it aside to start a new one", i, err)}
		}
	}
	return nil
}

// CheckReportPaths refuses report rep, read from loc, if one of the output
// file paths it records fails CheckOutputPath: a data error naming it.
func CheckReportPaths(loc string, rep *report.Run) error {
	for _, d := range rep.Destinations {
		for i, f := range d.Files {
			if err := CheckOutputPath(f.Path); err != nil {
				return &dataerr.Error{Location: loc, Err: fmt.Errorf("destination %q: files[%d]: %w: the report was not written by deid", d.Name, i, err)}
			}
		}
	}
	return nil
}

// NewRunID returns a sortable, unique run id: the UTC time and a random
// suffix. Every writer of an output (run, merge, retain) names its commits so.
func NewRunID(t time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
