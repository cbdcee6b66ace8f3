package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Match is one object a pattern matched.
type Match struct {
	Attrs
	// Rel is the object's path relative to the pattern's fixed prefix, with
	// "/" separators: "dt=2026-10-31/part-0.parquet" for the pattern
	// /lake/browsing/dt=*/*.parquet. Outputs mirror it.
	Rel string
}

// HasMeta reports whether pattern holds glob characters.
func HasMeta(pattern string) bool { return strings.ContainsAny(pattern, "*?[") }

// Glob lists the objects matching pattern, sorted by location, and returns
// the pattern's fixed prefix (the directory before the first segment with a
// glob character). In a pattern, * and ? match within one path segment (as
// path.Match), ** matches any number of whole segments, including none.
// Segments starting with '.' or '_' (hidden files, _SUCCESS, staging
// folders) match only a pattern segment that starts with the same character.
// A pattern without glob characters names one object, which must exist.
func Glob(ctx context.Context, s Store, pattern string) (root string, matches []Match, err error) {
	if !HasMeta(pattern) {
		a, err := s.Stat(ctx, pattern)
		if err != nil {
			if isFolder(ctx, s, pattern) {
				return "", nil, &FolderError{Pattern: pattern}
			}
			return "", nil, err
		}
		return Dir(a.Location), []Match{{Attrs: a, Rel: Base(a.Location)}}, nil
	}
	prefix, rest := splitFixed(pattern)
	segs := strings.Split(rest, "/")
	for _, sg := range segs {
		if sg == "" {
			return "", nil, fmt.Errorf("pattern %q: empty path segment", pattern)
		}
		if _, err := path.Match(strings.ReplaceAll(sg, "**", "*"), ""); err != nil {
			return "", nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
	}
	root = prefix
	if !IsURI(prefix) {
		root = filepath.Clean(prefix)
	}
	listPrefix := strings.TrimSuffix(root, "/") + "/"
	if !IsURI(root) && root != "/" {
		listPrefix = root + string(filepath.Separator)
	}
	err = s.List(ctx, listPrefix, func(a Attrs) error {
		rel, err := Rel(root, a.Location)
		if err != nil {
			return nil
		}
		if matchSegments(segs, strings.Split(rel, "/")) {
			matches = append(matches, Match{Attrs: a, Rel: rel})
		}
		return nil
	})
	return root, matches, err
}

// ErrFolder is matched (errors.Is) by the error of a pattern without glob
// characters that names a folder: a pattern without them names one file.
var ErrFolder = errors.New("a folder where deid reads a file")

// FolderError is a pattern without glob characters naming a folder.
type FolderError struct {
	// Pattern is the pattern, as written.
	Pattern string
}

// Error says how to name the folder's files.
func (e *FolderError) Error() string {
	dir := strings.TrimRight(e.Pattern, "/")
	return fmt.Sprintf("%q is a folder, and a source without glob characters names one file: name the folder's files with a glob, "+
		"such as %q (or %q across its subfolders)", e.Pattern, dir+"/*.parquet", dir+"/**/*.parquet")
}

// Is makes every FolderError match ErrFolder.
func (e *FolderError) Is(target error) bool { return target == ErrFolder }

// isFolder reports whether location, which Stat could not read as a file,
// is a folder: a local one, or an object prefix holding objects.
func isFolder(ctx context.Context, s Store, location string) bool {
	if !IsURI(location) {
		fi, err := os.Stat(location)
		return err == nil && fi.IsDir()
	}
	found := false
	_ = s.List(ctx, strings.TrimRight(location, "/")+"/", func(Attrs) error {
		found = true
		return errStopList
	})
	return found
}

// errStopList stops a listing at its first object.
var errStopList = errors.New("stop listing")

// ErrDanglingLink is matched (errors.Is) by the error of a listing that
// met a symbolic link whose target does not exist.
var ErrDanglingLink = errors.New("a symbolic link to nothing")

// DanglingLinkError is a symbolic link, met while listing a folder, whose
// target does not exist.
type DanglingLinkError struct {
	// Link is the link's path; Target is what it points to.
	Link, Target string
}

// Error names the link and its target, and what to do.
func (e *DanglingLinkError) Error() string {
	return fmt.Sprintf("%q is a symbolic link to %q, which does not exist: remove the link or restore its target", e.Link, e.Target)
}

// Is makes every DanglingLinkError match ErrDanglingLink.
func (e *DanglingLinkError) Is(target error) bool { return target == ErrDanglingLink }

// FixedPrefix returns the fixed prefix of a glob pattern, the folder Glob
// lists: the segments before the first one holding a glob character ("."
// or "/" when there are none, gs://bucket for a pattern at the bucket's
// top).
func FixedPrefix(pattern string) string {
	prefix, _ := splitFixed(pattern)
	return prefix
}

// splitFixed splits pattern into its fixed prefix (without a trailing
// separator) and the rest, which starts with the first segment holding a
// glob character.
func splitFixed(pattern string) (prefix, rest string) {
	head := ""
	body := pattern
	if IsURI(pattern) {
		scheme, r, _ := strings.Cut(pattern, "://")
		bucket, objs, _ := strings.Cut(r, "/")
		head, body = scheme+"://"+bucket, objs
	}
	segs := strings.Split(body, "/")
	i := 0
	for i < len(segs) && !HasMeta(segs[i]) {
		i++
	}
	fixed := strings.Join(segs[:i], "/")
	switch {
	case head != "" && fixed != "":
		prefix = head + "/" + fixed
	case head != "":
		prefix = head
	case fixed == "" && strings.HasPrefix(body, "/"):
		prefix = "/"
	case fixed == "":
		prefix = "."
	default:
		prefix = fixed
	}
	return prefix, strings.Join(segs[i:], "/")
}

// matchSegments matches path segments against pattern segments.
func matchSegments(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		// ** absorbs zero or more visible segments
		for i := 0; i <= len(name); i++ {
			if matchSegments(pat[1:], name[i:]) {
				return true
			}
			if i < len(name) && hidden(name[i], "") {
				return false
			}
		}
		return false
	}
	if len(name) == 0 || hidden(name[0], pat[0]) {
		return false
	}
	ok, _ := path.Match(pat[0], name[0])
	return ok && matchSegments(pat[1:], name[1:])
}

// hidden reports whether segment name is hidden from pattern segment pat.
func hidden(name, pat string) bool {
	if name == "" || name[0] != '.' && name[0] != '_' {
		return false
	}
	return pat == "" || pat[0] != name[0]
}
