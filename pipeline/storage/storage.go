// Package storage is where deid's bytes live: source files, outputs,
// manifests, reports and erasure lists. A Store is a small interface with a
// local-disk and a Google Cloud Storage implementation, and one conformance
// suite (package storagetest) that every implementation passes. It imports
// no other deid package (cmd/deid's TestLayoutRules checks it).
//
// Locations are plain strings: a local path ("/lake/x.parquet",
// "out/browsing") or a URI ("gs://bucket/x.parquet"). Router sends each
// location to the store for its scheme, so the pipeline never branches on
// where data is.
//
// Local writes never go through a link below a root (links.go): a root is a
// folder the operator named (a destination's output, a dataset's root,
// given to the context with WithRoots); links in its own path are followed,
// and a symbolic link at any folder or file below it where a write would go
// is refused with a *LinkError (ErrLink). Callers check ahead with NoLinks
// where a refusal half way would leave a half-done change. A file deid
// retain rewrites in place must be its own only name: LinkAt refuses a
// symbolic link there, and a file with other hard links (*HardLinkError,
// ErrHardLink), whose old content a rewrite would leave under them. Object
// storage has no links.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotExist is matched (errors.Is) by errors about missing objects; it is
// fs.ErrNotExist, so os errors match too.
var ErrNotExist = fs.ErrNotExist

// Attrs describes a stored object.
type Attrs struct {
	// Location is the object's full location, as List and Stat name it.
	Location string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is the last modification time (local files; GCS update time).
	ModTime time.Time
	// Generation identifies one version of a GCS object; 0 for local files.
	Generation int64
	// CRC32C is the object's CRC32C (Castagnoli) when the store keeps one.
	CRC32C uint32
	// HasCRC32C reports whether CRC32C is set.
	HasCRC32C bool
}

// Reader reads an object with random access. It is safe for concurrent
// ReadAt calls.
type Reader interface {
	io.ReaderAt
	io.Closer
	// Size returns the object's length.
	Size() int64
	// Attrs returns the attributes of the version being read.
	Attrs() Attrs
}

// Writer writes a new object. Nothing is visible at the location until
// Commit returns nil; Abort (or a failed Commit) leaves nothing behind. After
// Commit or Abort the writer must not be used, except that Abort after Commit
// is a no-op, so `defer w.Abort()` is always safe.
type Writer interface {
	io.Writer
	// Commit makes the object visible at its location, atomically replacing
	// any previous object there, and returns its attributes.
	Commit() (Attrs, error)
	// Abort discards what was written.
	Abort() error
}

// Store is one place where objects live.
type Store interface {
	// List calls fn for every object whose location starts with prefix, in
	// lexical order of location, stopping at the first error fn returns
	// (which List then returns). A prefix naming a directory should end in a
	// separator. A missing prefix lists nothing and is not an error.
	List(ctx context.Context, prefix string, fn func(Attrs) error) error
	// Open opens an object for ranged reads. A missing object gives an
	// error matching ErrNotExist.
	Open(ctx context.Context, location string) (Reader, error)
	// Create starts writing a new object at location (see Writer).
	Create(ctx context.Context, location string) (Writer, error)
	// Stat returns an object's attributes, or an error matching ErrNotExist.
	Stat(ctx context.Context, location string) (Attrs, error)
	// Delete removes an object. Deleting a missing object gives an error
	// matching ErrNotExist.
	Delete(ctx context.Context, location string) error
}

// Mover is implemented by stores that can move an object to another location
// of the same store cheaply and atomically (a rename on local disk).
type Mover interface {
	// Move makes src's object visible at dst, replacing what is there, and
	// removes it from src.
	Move(ctx context.Context, src, dst string) error
}

// ConditionalMover is implemented by stores that can move an object onto a
// target only if the target still is what the caller read (GCS): a rewrite
// swapped in this way cannot overwrite a concurrent change.
type ConditionalMover interface {
	// MoveIf is Mover.Move whose replacement of dst happens only if cond
	// holds on dst; otherwise it returns an error matching ErrPrecondition
	// and changes nothing. A move whose copy already happened (its answer
	// lost, or a crash before the source was removed) completes.
	MoveIf(ctx context.Context, src, dst string, cond Condition) error
}

// MoveIf moves an object within one store only if cond holds on dst, with
// the store's ConditionalMover; a store without one gives ErrUnsupported.
func MoveIf(ctx context.Context, s Store, src, dst string, cond Condition) error {
	if m, ok := s.(ConditionalMover); ok {
		return m.MoveIf(ctx, src, dst, cond)
	}
	return fmt.Errorf("move %s to %s with a precondition: %w", src, dst, ErrUnsupported)
}

// Move moves an object within one store: with the store's Mover when it has
// one, otherwise by copying and deleting.
func Move(ctx context.Context, s Store, src, dst string) error {
	if m, ok := s.(Mover); ok {
		return m.Move(ctx, src, dst)
	}
	return copyThenDelete(ctx, s, src, s, dst)
}

// copyThenDelete moves an object by copying it, then deleting the source.
func copyThenDelete(ctx context.Context, from Store, src string, to Store, dst string) error {
	r, err := from.Open(ctx, src)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := to.Create(ctx, dst)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := io.Copy(w, io.NewSectionReader(r, 0, r.Size())); err != nil {
		return err
	}
	if _, err := w.Commit(); err != nil {
		return err
	}
	return from.Delete(ctx, src)
}

// IsURI reports whether location has a scheme (gs://...).
func IsURI(location string) bool { return strings.Contains(location, "://") }

// Join joins path elements onto a location, with "/" for URIs and the
// operating system's separator for local paths.
func Join(base string, elem ...string) string {
	if IsURI(base) {
		scheme, rest, _ := strings.Cut(base, "://")
		return scheme + "://" + path.Join(append([]string{rest}, elem...)...)
	}
	return filepath.Join(append([]string{base}, elem...)...)
}

// Rel returns target relative to base, with "/" separators.
func Rel(base, target string) (string, error) {
	if IsURI(base) {
		b := strings.TrimSuffix(base, "/") + "/"
		if !strings.HasPrefix(target, b) {
			return "", errors.New(target + " is not under " + base)
		}
		return strings.TrimPrefix(target, b), nil
	}
	r, err := filepath.Rel(base, target)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(r), nil
}

// Dir returns the location's parent.
func Dir(location string) string {
	if IsURI(location) {
		scheme, rest, _ := strings.Cut(location, "://")
		return scheme + "://" + path.Dir(rest)
	}
	return filepath.Dir(location)
}

// Base returns the location's last element.
func Base(location string) string {
	if IsURI(location) {
		return path.Base(location)
	}
	return filepath.Base(location)
}

// ErrNotRegular is matched (errors.Is) by errors about a location that is
// not a regular file once links are followed (a FIFO, a device, a socket):
// deid reads only regular files, and opens them without blocking.
var ErrNotRegular = errors.New("deid reads only regular files")

// ErrExist is matched (errors.Is) by errors about an object that already
// exists where CreateExclusive was asked to create one; it is fs.ErrExist.
var ErrExist = fs.ErrExist

// ErrUnsupported is returned by the helpers of optional capabilities when a
// store has none.
var ErrUnsupported = errors.New("not supported by this store")

// ExclusiveCreator is implemented by stores that can create an object only
// where none exists, atomically: two callers racing for one location cannot
// both succeed. deid retain builds its per-dataset lock on it, job locks and
// sharded runs' frozen input lists too. (Local disk: O_CREATE|O_EXCL; Google
// Cloud Storage: a write with ifGenerationMatch=0.) data should be unique to
// the caller: a store that recovers from a lost answer recognises its own
// object by its bytes.
type ExclusiveCreator interface {
	// CreateExclusive writes data at location if no object is there and
	// returns its attributes; if one is, it returns an error matching
	// ErrExist and changes nothing. The object is never seen half written
	// (on local disk it is linked into place once complete).
	CreateExclusive(ctx context.Context, location string, data []byte) (Attrs, error)
}

// CreateExclusive creates an object only where none exists, with the
// store's ExclusiveCreator; a store without one gives ErrUnsupported.
func CreateExclusive(ctx context.Context, s Store, location string, data []byte) (Attrs, error) {
	if c, ok := s.(ExclusiveCreator); ok {
		return c.CreateExclusive(ctx, location, data)
	}
	return Attrs{}, fmt.Errorf("create %s exclusively: %w", location, ErrUnsupported)
}

// Remover is implemented by stores that can remove everything under a
// folder at once, including what List does not show (a local writer's
// temporary files left by a killed process) and the emptied folders.
type Remover interface {
	// RemoveAll removes every object whose location is under folder dir. A
	// missing folder is not an error.
	RemoveAll(ctx context.Context, dir string) error
}

// RemoveAll removes every object under folder dir: with the store's Remover
// when it has one, otherwise by listing and deleting.
func RemoveAll(ctx context.Context, s Store, dir string) error {
	if r, ok := s.(Remover); ok {
		return r.RemoveAll(ctx, dir)
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	return s.List(ctx, prefix, func(a Attrs) error {
		if err := s.Delete(ctx, a.Location); err != nil && !errors.Is(err, ErrNotExist) {
			return err
		}
		return nil
	})
}

// Condition is a precondition on the object at a location, checked
// atomically by the store when a write commits.
type Condition struct {
	// DoesNotExist: commit only if no object is there.
	DoesNotExist bool
	// GenerationMatch: commit only if the object there is this generation.
	GenerationMatch int64
}

// Conditional is implemented by stores that check preconditions on writes
// and deletes (GCS). A failed precondition gives an error matching
// ErrPrecondition. Journals, locks and rewrites of existing objects use it
// to detect concurrent changes instead of overwriting them.
type Conditional interface {
	// CreateIf is Create whose Commit succeeds only if cond holds then.
	// Exactly one of cond's fields is set.
	CreateIf(ctx context.Context, location string, cond Condition) (Writer, error)
	// DeleteIf deletes the object only if it is still that generation.
	DeleteIf(ctx context.Context, location string, generation int64) error
}

// RetryCounter is implemented by stores that retry transient errors; the
// run reports the count.
type RetryCounter interface {
	// Retries returns how many requests were retried so far.
	Retries() int64
}
