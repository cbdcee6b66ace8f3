package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Writes on local disk never follow symbolic links below a root.
//
// A root is a folder the operator named in the policy: a destination's
// output, a dataset's root. Links in the path up to and including a root
// are the operator's (/data -> /mnt/disk/data) and are followed; every
// component below it is deid's own (staging folders, dataset folders of an
// output, manifests, reports, locks, retain's work and isolated folders,
// the source files retain rewrites), and a link there is refused with a
// *LinkError before anything is written, so that whoever can write a
// published folder (usually less trusted than the lake) cannot redirect a
// write onto the lake with a link. A local write under no root (a library
// caller that named none) treats the working directory as its root for
// relative paths, and the file system's root for others.
//
// Each write opens an os.Root at the root's longest existing prefix (its
// links resolved then) and does its work through it with *at system calls,
// so a folder swapped for a link between the check and the write cannot
// lead outside the root: os.Root refuses to leave it. What remains is a
// link that stays inside the root, made in that window by a hostile writer
// of the folder: the write may then land elsewhere inside the same output,
// never outside it. Whoever can replace a root itself (write its parent
// folder) is out of these checks' reach: deid's location checks resolve the
// policy's outputs on disk and refuse one that lands on the lake. Google
// Cloud Storage has no links.

// ErrLink is matched (errors.Is) by errors about a symbolic link where a
// local write would have gone through it.
var ErrLink = errors.New("a symbolic link where deid writes")

// LinkError is a write refused because a component of its path is a
// symbolic link.
type LinkError struct {
	// Op is the write: "create", "commit", "move", "delete", "remove", "rewrite".
	Op string
	// Location is the location being written.
	Location string
	// Link is the component of Location that is a link (Location itself,
	// or one of its folders).
	Link string
	// Target is what the link points to, as it reads.
	Target string
}

// Error names the write, the link and its target, and what to do.
func (e *LinkError) Error() string {
	what := fmt.Sprintf("%q is a symbolic link (to %q)", e.Link, e.Target)
	if e.Link == e.Location {
		what = fmt.Sprintf("it is a symbolic link (to %q)", e.Target)
	}
	return fmt.Sprintf("%s %q: %s, and deid never writes through a link below an output or dataset root: "+
		"replace the link with a real folder or file", e.Op, e.Location, what)
}

// Is makes every LinkError match ErrLink.
func (e *LinkError) Is(target error) bool { return target == ErrLink }

type rootsKey struct{}

// WithRoots returns a context under which the local store's writes treat
// roots (local folders the operator named: destination outputs, dataset
// roots) as the places where links stop being allowed: links in a root's
// own path are followed, links below it refused. Roots on gs:// are
// ignored. Roots already in ctx are kept.
func WithRoots(ctx context.Context, roots ...string) context.Context {
	prev, _ := ctx.Value(rootsKey{}).([]string)
	all := append([]string(nil), prev...)
	for _, r := range roots {
		if r == "" || IsURI(r) {
			continue
		}
		if abs, err := filepath.Abs(r); err == nil {
			all = append(all, abs)
		}
	}
	return context.WithValue(ctx, rootsKey{}, all)
}

// rootOf returns the root (absolute, cleaned) that holds abs, the
// location made absolute: the longest of ctx's roots that is abs or an
// ancestor of it, else the working directory when abs is below it, else
// the file system's root.
func rootOf(ctx context.Context, abs string) string {
	best := ""
	roots, _ := ctx.Value(rootsKey{}).([]string)
	for _, r := range roots {
		if within(abs, r) && len(r) > len(best) {
			best = r
		}
	}
	if best != "" {
		return best
	}
	if wd, err := os.Getwd(); err == nil && within(abs, wd) {
		return wd
	}
	return filepath.VolumeName(abs) + string(filepath.Separator)
}

// within reports whether path p is dir or below it (both cleaned).
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(p, dir)
}

// localRoot is an os.Root opened for the writes of one operation.
type localRoot struct {
	*os.Root
	base string // the folder it is opened at (absolute)
}

// openRoot opens, for a write at location, an os.Root at the longest
// existing prefix of location's root, and returns location relative to it.
func openRoot(ctx context.Context, location string) (*localRoot, string, error) {
	abs, err := filepath.Abs(location)
	if err != nil {
		return nil, "", err
	}
	base := rootOf(ctx, abs)
	for {
		if info, err := os.Stat(base); err == nil && info.IsDir() {
			break
		}
		parent := filepath.Dir(base)
		if parent == base {
			break
		}
		base = parent
	}
	r, err := os.OpenRoot(base)
	if err != nil {
		return nil, "", err
	}
	rel, err := filepath.Rel(base, abs)
	if err != nil {
		r.Close()
		return nil, "", err
	}
	return &localRoot{Root: r, base: base}, rel, nil
}

// noLinks returns a *LinkError when a component of rel (the last one
// included) is a symbolic link. Components that do not exist end the check:
// the write makes them.
func (r *localRoot) noLinks(op, location, rel string) error {
	if rel == "." {
		return nil
	}
	parts := strings.Split(rel, string(filepath.Separator))
	for i := range parts {
		p := filepath.Join(parts[:i+1]...)
		info, err := r.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ := r.Readlink(p)
			return &LinkError{Op: op, Location: location, Link: linkName(location, rel, p), Target: target}
		}
	}
	return nil
}

// linkName spells the component p of rel as location spells it: the
// location's own prefix (relative or absolute, as the caller wrote it),
// cut where p ends.
func linkName(location, rel, p string) string {
	clean := filepath.Clean(location)
	below := strings.TrimPrefix(rel, p) // the part of rel after p
	return strings.TrimSuffix(clean, below)
}

// NoLinks returns a *LinkError (for the write op) when a component of the
// local location below its root (see WithRoots), the last one included,
// is a symbolic link, and nil otherwise or when location is on object
// storage. The local store's writes check this themselves; callers check
// ahead when a refusal half way would leave a half-done change (every file
// a publish moves into place, before the first move).
func NoLinks(ctx context.Context, op, location string) error {
	if IsURI(location) {
		return nil
	}
	r, rel, err := openRoot(ctx, location)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.noLinks(op, location, rel)
}

// ErrHardLink is matched (errors.Is) by errors about a file deid would
// replace that has other names (hard links).
var ErrHardLink = errors.New("a file with other hard links where deid rewrites")

// HardLinkError is a rewrite refused because the file has more than one
// name: the rewrite renames a new file over this name, and the old file,
// its content unchanged, would stay under the others.
type HardLinkError struct {
	// Op is the write: "rewrite".
	Op string
	// Location is the file.
	Location string
	// Links is the file's link count (its number of names), at least 2.
	Links uint64
}

// Error names the write, the file and its link count, and what to do.
func (e *HardLinkError) Error() string {
	return fmt.Sprintf("%s %q: the file has %d hard links (names), and a rewrite would leave its old content under the "+
		"other %d: remove the other names (find / -samefile %q) or replace the file with a copy of its own", e.Op, e.Location, e.Links, e.Links-1, e.Location)
}

// Is makes every HardLinkError match ErrHardLink.
func (e *HardLinkError) Is(target error) bool { return target == ErrHardLink }

// LinkAt returns a *LinkError (for the write op) when the local file at
// location is itself a symbolic link, a *HardLinkError when it is a
// regular file with more than one name (link count above 1), nil when it
// is neither, is missing, or location is on object storage, and the error
// of any other failure to examine it (permission denied). deid retain
// refuses such a source or published file: rewriting it would replace the
// link, or this one name, and leave the rows in the file the other names
// reach.
func LinkAt(op, location string) error {
	if IsURI(location) {
		return nil
	}
	info, err := os.Lstat(location)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: check for links: %w", op, location, err)
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(location)
		return &LinkError{Op: op, Location: location, Link: location, Target: target}
	}
	if n := linkCount(info); info.Mode().IsRegular() && n > 1 {
		return &HardLinkError{Op: op, Location: location, Links: n}
	}
	return nil
}
