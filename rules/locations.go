package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// This file keeps the places a policy names apart: a destination's output
// must not be, contain or lie inside what deid reads (a dataset's source
// folder or root; a source file without glob characters, an erasure,
// consent or hold list; a key file, and the policy file itself) or another
// destination's output. Otherwise a run writes over the raw lake, reads its
// own outputs again, publishes a key with the data, or two destinations
// publish into one folder. A single file is protected as itself: an output
// beside a list, a key or the policy, in its folder, holds nothing deid
// reads (and is the usual layout of a policy, its lists, keys/ and out/).
//
// Locations are compared twice. Parse compares them lexically: local paths
// cleaned and made absolute (relative ones are already anchored at the
// policy's folder), gs:// ones by bucket and object prefix. Load then
// compares them again once the links on disk are resolved, and by folder
// identity (CheckLocations), so that a link or a bind mount cannot join two
// folders the text keeps apart.

// location is a folder or file a policy names.
type location struct {
	key  string // the dotted key naming it: datasets.orders.source; "" for the policy file
	what string // what it is, for messages: "the source folder"
	path string // the folder or file
	pos  Pos    // where the policy names it (outputs only)
	why  string // why an output must keep apart from it; "" for data deid reads
}

// named formats the location for messages: its path, and its key when it
// has one: "/w/lake/t" (datasets.orders.source).
func (l location) named() string {
	if l.key == "" {
		return fmt.Sprintf("%q", l.path)
	}
	return fmt.Sprintf("%q (%s)", l.path, l.key)
}

// readLocations returns what a run reads: the datasets' locations
// (datasetLocations), the key files and the policy file (secretLocations).
func readLocations(p *Policy) []location {
	return append(datasetLocations(p.Datasets), secretLocations(p)...)
}

// Why an output must not hold a key file or the policy file.
const (
	keyFileWhy = "an output is published, and a key file in it would be published with the data " +
		"(the key re-derives every pseudonym, or signs reports): keep key files outside every output"
	policyFileWhy = "a run would publish the policy with the data, or write over it: keep the policy file outside every output"
)

// secretLocations returns the files a run reads besides data, each
// protected as a single file: every file: key reference (keys: and
// audit_key:, at the path the key loader reads, KeyRef.filePath) and the
// policy file itself. env: keys name no location.
func secretLocations(p *Policy) []location {
	var out []location
	baseDir := filepath.Dir(p.File)
	for _, k := range p.Keys {
		if k.Ref.Source == "file" {
			out = append(out, location{key: join("keys", k.Name), what: "the key file", path: k.Ref.filePath(baseDir), why: keyFileWhy})
		}
	}
	if k := p.AuditKey; k != nil && k.Ref.Source == "file" {
		out = append(out, location{key: "audit_key", what: "the audit key file", path: k.Ref.filePath(baseDir), why: keyFileWhy})
	}
	if p.File != "" {
		out = append(out, location{what: "the policy file", path: p.File, why: policyFileWhy})
	}
	return out
}

// datasetLocations returns what the datasets read: the fixed folder of
// each source pattern and each root (a run must not write anywhere under
// them, where a later glob could find its outputs), and each single file (a
// source without glob characters, an erasure, consent or hold list), which
// an output must not be nor contain.
func datasetLocations(datasets []*DatasetDecl) []location {
	var out []location
	for _, ds := range datasets {
		p := join("datasets", ds.Name)
		switch {
		case ds.Source == "":
		case strings.ContainsAny(ds.Source, "*?["):
			out = append(out, location{key: join(p, "source"), what: "the source folder", path: sourceFolder(ds.Source)})
		default:
			out = append(out, location{key: join(p, "source"), what: "the source file", path: ds.Source})
		}
		if ds.Root != "" {
			out = append(out, location{key: join(p, "root"), what: "the root", path: ds.Root})
		}
		for i, e := range ds.Erasure {
			out = appendList(out, fmt.Sprintf("%s.erasure[%d].list", p, i), "the erasure list", e.List)
		}
		for i, c := range ds.Consent {
			out = appendList(out, fmt.Sprintf("%s.consent[%d].list", p, i), "the consent list", c.List)
		}
		for i, h := range ds.Holds {
			out = appendList(out, fmt.Sprintf("%s.holds[%d].list", p, i), "the hold list", h.List)
		}
	}
	return out
}

func appendList(out []location, key, what, list string) []location {
	if list == "" {
		return out
	}
	return append(out, location{key: key, what: what, path: list})
}

// outputLocations returns the destinations' outputs.
func outputLocations(dsts []*DestinationDecl) []location {
	var out []location
	for _, dst := range dsts {
		if dst.Output != "" {
			out = append(out, location{key: join(join("destinations", dst.Name), "output"), what: "the output", path: dst.Output, pos: dst.OutputPos})
		}
	}
	return out
}

// sourceFolder returns the fixed folder of a source pattern: the folder
// before its first segment with a glob character. It is the folder
// storage.Glob lists (storage.FixedPrefix; rules does not import the
// storage package, so a test keeps the two in step).
func sourceFolder(pattern string) string {
	head, body := "", pattern
	if scheme, rest, ok := strings.Cut(pattern, "://"); ok {
		bucket, objects, _ := strings.Cut(rest, "/")
		head, body = scheme+"://"+bucket+"/", objects
	}
	segs := strings.Split(body, "/")
	i := 0
	for i < len(segs) && !strings.ContainsAny(segs[i], "*?[") {
		i++
	}
	fixed := strings.Join(segs[:i], "/")
	if head == "" && fixed == "" {
		if strings.HasPrefix(body, "/") {
			return "/"
		}
		return "."
	}
	return head + fixed
}

// place is a location in comparable form: a scheme ("" for local paths), a
// bucket (gs://) and the path's segments.
type place struct {
	scheme, bucket string
	segs           []string
}

// String formats the place back as a location.
func (p place) String() string {
	if p.scheme == "" {
		return string(filepath.Separator) + filepath.Join(p.segs...)
	}
	return p.scheme + "://" + strings.Join(append([]string{p.bucket}, p.segs...), "/")
}

// lexicalPlaces returns the places a location can mean, compared without
// the file system: a local path cleaned and made absolute; a URI both as
// written (trailing slashes aside: gs://b/a/ is gs://b/a) and cleaned as
// deid joins output paths (gs://b/a//c is gs://b/a/c), so that either
// reading is kept apart.
func lexicalPlaces(loc string) ([]place, error) {
	scheme, rest, ok := strings.Cut(loc, "://")
	if !ok {
		abs, err := filepath.Abs(loc)
		if err != nil {
			return nil, err
		}
		return []place{localPlace(abs)}, nil
	}
	bucket, object, _ := strings.Cut(rest, "/")
	written := place{scheme: scheme, bucket: bucket, segs: splitSegs(strings.TrimRight(object, "/"))}
	cleanBucket, cleanObject, _ := strings.Cut(strings.TrimPrefix(path.Clean("/"+rest), "/"), "/")
	cleaned := place{scheme: scheme, bucket: cleanBucket, segs: splitSegs(cleanObject)}
	return []place{written, cleaned}, nil
}

func localPlace(abs string) place {
	return place{segs: splitSegs(filepath.ToSlash(strings.TrimPrefix(filepath.Clean(abs), filepath.VolumeName(abs))))}
}

// splitSegs splits a slash-separated path into segments, without the empty
// ones at its ends.
func splitSegs(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// relation says how place a stands to place b: "is", "contains",
// "lies inside", or "" when they do not overlap.
func relation(a, b place) string {
	if a.scheme != b.scheme || a.bucket != b.bucket {
		return ""
	}
	n := min(len(a.segs), len(b.segs))
	for i := range n {
		if a.segs[i] != b.segs[i] {
			return ""
		}
	}
	switch {
	case len(a.segs) == len(b.segs):
		return "is"
	case len(a.segs) < len(b.segs):
		return "contains"
	}
	return "lies inside"
}

// resolver returns the places a location means: lexically, or once the
// links on disk are resolved.
type resolver func(loc string) ([]place, error)

// locationErrors checks every output of dsts against what the policy p
// reads and the outputs before it, and returns a problem positioned on the
// output for each overlap.
func locationErrors(p *Policy, dsts []*DestinationDecl, resolve resolver, same relate, how string) ErrorList {
	reads, outs := readLocations(p), outputLocations(dsts)
	type resolved struct {
		places []place
		err    error
	}
	cache := map[string]resolved{}
	placesOf := func(l location) ([]place, error) {
		r, ok := cache[l.path]
		if !ok {
			r.places, r.err = resolve(l.path)
			cache[l.path] = r
		}
		return r.places, r.err
	}
	var errs ErrorList
	for i, o := range outs {
		ops, err := placesOf(o)
		if err != nil {
			errs = append(errs, o.errorf("cannot tell whether output %q overlaps a folder deid reads: %v", o.path, err))
			continue
		}
		for _, other := range append(reads[:len(reads):len(reads)], outs[:i]...) {
			otherPs, err := placesOf(other)
			if err != nil {
				errs = append(errs, o.errorf("cannot tell whether output %q overlaps %s %s: %v", o.path, other.what, other.named(), err))
				continue
			}
			if e := overlap(o, other, ops, otherPs, same, how); e != nil {
				errs = append(errs, e)
			}
		}
	}
	return errs
}

// errorf returns a problem positioned on location l.
func (l location) errorf(format string, args ...any) *Error {
	return &Error{File: l.pos.File, Line: l.pos.Line, Column: l.pos.Column, Path: l.key, Msg: fmt.Sprintf(format, args...)}
}

// relate says how place a stands to place b, as relation does.
type relate func(a, b place) string

// overlap returns the problem of output o overlapping location other, or
// nil; same, when set, also compares the folders' identities on disk.
func overlap(o, other location, ops, otherPs []place, same relate, how string) *Error {
	for _, a := range ops {
		for _, b := range otherPs {
			rel, note := relation(a, b), ""
			if rel == "" && same != nil {
				if rel = same(a, b); rel != "" {
					note = " on disk (one folder under two names: a bind mount, or a file system that ignores case)"
				}
			}
			if rel == "" {
				continue
			}
			why := other.why
			switch {
			case why != "":
			case other.what == "the output":
				why = "each destination needs a folder of its own, apart from the other destinations' outputs"
			default:
				why = "a run would write among the data it reads, overwriting it or reading its own output again: choose an output folder outside every source folder and root, holding no source file or list"
			}
			msg := fmt.Sprintf("output %q %s %s %s", o.path, rel, other.what, other.named())
			if how != "" {
				if note == "" {
					note = " " + how + movedByLinks(o.path, a, other.path, b)
				}
				msg += note
			}
			return o.errorf("%s: %s", msg, why)
		}
	}
	return nil
}

// movedByLinks names the locations whose links moved them: ` ("pub" is
// "/lake/t")`, or "".
func movedByLinks(aPath string, a place, bPath string, b place) string {
	var moved []string
	for _, l := range []struct {
		path string
		p    place
	}{{aPath, a}, {bPath, b}} {
		if abs, err := filepath.Abs(l.path); err == nil && l.p.scheme == "" && abs != l.p.String() {
			moved = append(moved, fmt.Sprintf("%q is %q", abs, l.p))
		}
	}
	if len(moved) == 0 {
		return ""
	}
	return " (" + strings.Join(moved, ", ") + ")"
}

// CheckLocations compares the policy's locations again once the links on
// disk are resolved, and refuses (ErrPolicy) an output that is, contains or
// lies inside a folder or file deid reads (a key file and the policy file
// among them) or another destination's output. It reads
// the names of folders and links, never the data in them; Load calls it, so
// every command loading a policy file checks when it starts. gs://
// locations have no links and are compared as Parse compares them.
func (p *Policy) CheckLocations() error {
	if errs := locationErrors(p, p.Destinations, resolvedPlaces, newSameFile().relation, "once links are resolved"); len(errs) > 0 {
		return errs.sorted()
	}
	return nil
}

// checkLocations records the lexical overlaps of the outputs dsts with
// what policy p (its keys, audit key and datasets decoded) reads.
func (d *decoder) checkLocations(p *Policy, dsts []*DestinationDecl) {
	d.errs = append(d.errs, locationErrors(p, dsts, lexicalPlaces, nil, "")...)
}

// resolvedPlaces returns the places a location means once the links of its
// local path are resolved; a URI's places are its lexical ones.
func resolvedPlaces(loc string) ([]place, error) {
	if strings.Contains(loc, "://") {
		return lexicalPlaces(loc)
	}
	abs, err := filepath.Abs(loc)
	if err != nil {
		return nil, err
	}
	real, err := resolveLinks(abs)
	if err != nil {
		return nil, err
	}
	return []place{localPlace(real)}, nil
}

// maxLinks bounds the links followed while resolving one path, as the
// kernel's ELOOP does.
const maxLinks = 255

// resolveLinks resolves the links of an absolute, clean path component by
// component, as the kernel does when it opens the path: the part that
// exists is resolved (a link's target, relative or absolute, replaces it,
// even a dangling link's), and the rest, from the first missing component,
// is joined as written.
func resolveLinks(abs string) (string, error) {
	vol := filepath.VolumeName(abs)
	done := vol + string(filepath.Separator)
	rest := splitSegs(filepath.ToSlash(abs[len(vol):]))
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", fmt.Errorf("resolve links: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("resolve links of %q: more than %d links (a loop?)", abs, maxLinks)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("resolve links: %w", err)
		}
		if filepath.IsAbs(target) {
			tv := filepath.VolumeName(target)
			done = tv + string(filepath.Separator)
			target = target[len(tv):]
		}
		rest = append(splitSegs(filepath.ToSlash(target)), rest...)
	}
	return done, nil
}

// sameFile compares local places by the identity of their folders on disk
// (os.SameFile), which tells one folder under two names that links do not
// explain: a bind mount, or a file system that ignores case.
type sameFile struct {
	infos map[string]fs.FileInfo // by path; nil when it does not exist
}

func newSameFile() *sameFile { return &sameFile{infos: map[string]fs.FileInfo{}} }

// stat returns the path's file info, or nil when it cannot be read.
func (s *sameFile) stat(p string) fs.FileInfo {
	fi, ok := s.infos[p]
	if !ok {
		fi, _ = os.Stat(p)
		s.infos[p] = fi
	}
	return fi
}

// relation says how local place a stands to b by identity: "is" when both
// are one folder, "lies inside" when a folder above a is b, "contains" when
// a folder above b is a, or "".
func (s *sameFile) relation(a, b place) string {
	if a.scheme != "" || b.scheme != "" {
		return ""
	}
	fa, fb := s.stat(a.String()), s.stat(b.String())
	switch {
	case fa != nil && fb != nil && os.SameFile(fa, fb):
		return "is"
	case fb != nil && s.above(a, fb):
		return "lies inside"
	case fa != nil && s.above(b, fa):
		return "contains"
	}
	return ""
}

// above reports whether a folder above p (its root aside) is the file fi.
func (s *sameFile) above(p place, fi fs.FileInfo) bool {
	for i := len(p.segs) - 1; i > 0; i-- {
		if up := s.stat((place{segs: p.segs[:i]}).String()); up != nil && os.SameFile(up, fi) {
			return true
		}
	}
	return false
}
