package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Local is the Store for the local file system. Locations are paths.
//
// Create writes to a hidden temporary file in the target's directory and
// Commit renames it into place after an fsync of the file and, after the
// rename, of the directory, so a crash leaves either the old object or the
// new one, never a partial file at the location.
//
// Every write (Create and Commit, Delete, Move, CreateExclusive, RemoveAll)
// refuses a symbolic link at its location or at a folder of its path below
// the location's root, with a *LinkError (see WithRoots), and goes through
// an os.Root so that it never leaves that root.
type Local struct{}

// tempPrefix marks files being written; List skips them.
const tempPrefix = ".deid-tmp-"

// List implements Store. It walks the directory part of prefix recursively;
// locations are cleaned paths (filepath.Clean). A symbolic link to a file is
// listed as that file (with the target's size and time); links to folders
// below the walked folder are not followed, and a dangling link is an
// error. Links in the walked folder's own path (the caller's: a dataset's
// root /data -> /mnt/disk/data, the walked folder itself included) are
// followed.
func (Local) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	sep := string(filepath.Separator)
	dirPrefix := strings.HasSuffix(prefix, sep) || strings.HasSuffix(prefix, "/")
	clean := filepath.Clean(prefix)
	root, match := filepath.Dir(clean), clean
	if dirPrefix {
		root = clean
		if clean != sep {
			match = clean + sep
		}
		if clean == "." {
			match = ""
		}
	}
	var found []Attrs
	walk := root
	if info, err := os.Lstat(root); err == nil && info.Mode()&fs.ModeSymlink != 0 {
		walk = root + sep // WalkDir follows a link to a folder named with a trailing separator
	}
	err := filepath.WalkDir(walk, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == walk {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) || !strings.HasPrefix(p, match) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			// a link to a file lists as the file; links to folders are not followed
			if info, err = os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				// not ErrNotExist: the folder being listed exists
				target, _ := os.Readlink(p)
				return &DanglingLinkError{Link: p, Target: target}
			} else if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		found = append(found, Attrs{Location: p, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Location < found[j].Location })
	for _, a := range found {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// Open implements Store.
// It opens without blocking (a FIFO cannot hang it) and refuses anything
// that is not a regular file once links are followed.
func (Local) Open(_ context.Context, location string) (Reader, error) {
	f, err := os.OpenFile(location, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if info.IsDir() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: location, Err: errors.New("is a directory")}
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: location,
			Err: fmt.Errorf("is not a regular file (%s): %w", info.Mode().Type(), ErrNotRegular)}
	}
	return &localReader{File: f, attrs: Attrs{Location: location, Size: info.Size(), ModTime: info.ModTime()}}, nil
}

type localReader struct {
	*os.File
	attrs Attrs
}

func (r *localReader) Size() int64  { return r.attrs.Size }
func (r *localReader) Attrs() Attrs { return r.attrs }

// Stat implements Store.
func (Local) Stat(_ context.Context, location string) (Attrs, error) {
	info, err := os.Stat(location)
	if err != nil {
		return Attrs{}, err
	}
	if info.IsDir() {
		return Attrs{}, &fs.PathError{Op: "stat", Path: location, Err: errors.New("is a directory")}
	}
	return Attrs{Location: location, Size: info.Size(), ModTime: info.ModTime()}, nil
}

// Delete implements Store. A link at location or at a folder of its path
// (below its root, see WithRoots) is refused, not removed.
func (Local) Delete(ctx context.Context, location string) error {
	r, rel, err := openRoot(ctx, location)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.noLinks("delete", location, rel); err != nil {
		return err
	}
	return named(r.Remove(rel), location)
}

// named puts location in place of the relative path of a *fs.PathError
// from an os.Root, so errors name what the caller named.
func named(err error, location string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: location, Err: pe.Err}
	}
	return err
}

// Create implements Store. A link at location or at a folder of its path
// (below its root, see WithRoots) is refused, now and again at Commit.
func (Local) Create(ctx context.Context, location string) (Writer, error) {
	r, rel, err := openRoot(ctx, location)
	if err != nil {
		return nil, err
	}
	if err := r.noLinks("create", location, rel); err != nil {
		r.Close()
		return nil, err
	}
	dir := filepath.Dir(rel)
	if err := r.MkdirAll(dir, 0o755); err != nil {
		r.Close()
		return nil, err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		r.Close()
		return nil, err
	}
	tmp := filepath.Join(dir, tempPrefix+processTag()+"-"+filepath.Base(rel)+"-"+hex.EncodeToString(rnd[:]))
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &localWriter{f: f, root: r, tmp: tmp, rel: rel, location: location}, nil
}

type localWriter struct {
	f        *os.File
	root     *localRoot // closed when the writer finishes
	tmp      string     // the temporary file, relative to root
	rel      string     // the location, relative to root
	location string
	done     bool
	written  int64 // bytes written
	flushed  int64 // bytes whose writeback has been started
}

// writebackEvery is how many bytes a local writer lets pile up in the page
// cache before it starts their writeback: on the 10M-row bench's 789 MB
// output the fsync at commit took 0.4 s of the run's single-core tail.
const writebackEvery = 32 << 20

func (w *localWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.flushed >= writebackEvery {
		startWriteback(w.f, w.flushed, w.written-w.flushed)
		w.flushed = w.written
	}
	return n, err
}

func (w *localWriter) Commit() (Attrs, error) {
	if w.done {
		return Attrs{}, fmt.Errorf("commit %s: writer already finished", w.location)
	}
	w.done = true
	defer w.root.Close()
	fail := func(err error) (Attrs, error) {
		w.f.Close()
		w.root.Remove(w.tmp)
		return Attrs{}, fmt.Errorf("commit %s: %w", w.location, err)
	}
	if err := w.f.Sync(); err != nil {
		return fail(err)
	}
	info, err := w.f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := w.f.Close(); err != nil {
		return fail(err)
	}
	// a folder may have become a link since Create; the rename would
	// replace a link at the location itself, but it must not be there
	if err := w.root.noLinks("commit", w.location, w.rel); err != nil {
		w.root.Remove(w.tmp)
		return Attrs{}, err
	}
	if err := w.root.Rename(w.tmp, w.rel); err != nil {
		w.root.Remove(w.tmp)
		return Attrs{}, fmt.Errorf("commit %s: %w", w.location, err)
	}
	if err := syncDir(w.root.Open(filepath.Dir(w.rel))); err != nil {
		return Attrs{}, fmt.Errorf("commit %s: %w", w.location, err)
	}
	return Attrs{Location: w.location, Size: info.Size(), ModTime: info.ModTime()}, nil
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.root.Close()
	w.f.Close()
	if err := w.root.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Move implements Mover with a rename, creating the target's directory.
// A link at src or dst or at a folder of their paths (below their root, see
// WithRoots) is refused.
func (Local) Move(ctx context.Context, src, dst string) error {
	r, dstRel, err := openRoot(ctx, dst)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.noLinks("move", dst, dstRel); err != nil {
		return err
	}
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	srcRel, err := filepath.Rel(r.base, srcAbs)
	if err != nil || !filepath.IsLocal(srcRel) {
		return moveAcross(ctx, src, dst)
	}
	if err := r.noLinks("move", src, srcRel); err != nil {
		return err
	}
	if err := r.MkdirAll(filepath.Dir(dstRel), 0o755); err != nil {
		return named(err, dst)
	}
	if err := r.Rename(srcRel, dstRel); err != nil {
		return renamed(err, "rename", src, dst)
	}
	return syncDir(r.Open(filepath.Dir(dstRel)))
}

// renamed names old and new in an error of an os.Root's rename or link.
func renamed(err error, op, old, new string) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return &os.LinkError{Op: op, Old: old, New: new, Err: le.Err}
	}
	return named(err, new)
}

// moveAcross is Move between two roots: each path is checked in its own,
// then renamed by name (a folder swapped for a link in between is followed).
func moveAcross(ctx context.Context, src, dst string) error {
	for _, p := range []string{src, dst} {
		r, rel, err := openRoot(ctx, p)
		if err != nil {
			return err
		}
		err = r.noLinks("move", p, rel)
		r.Close()
		if err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return syncDir(os.Open(filepath.Dir(dst)))
}

// syncDir makes a rename in a folder durable, given the folder as opened,
// by path or below a root: syncDir(os.Open(dir)), syncDir(r.Open(dir)). It
// closes the folder; a file system that cannot sync a folder (os.ErrInvalid)
// is not an error.
func syncDir(d *os.File, err error) error {
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// createTemp opens a new temporary file in dir of r, named after pattern
// as os.CreateTemp names; tests remove the folder before it.
// exclusiveTempPrefix begins the name of CreateExclusive's temporary
// file, followed by processTag and a random part: a process killed between
// creating it and linking it into place leaves it, and RemoveOrphanTemps
// can tell whose it was.
const exclusiveTempPrefix = ".new-"

// processTag names this process on this host in a file name: the host
// (characters other than letters, digits, '.' and '_' replaced by '_'), a
// '~' and the process id.
func processTag() string {
	host, _ := os.Hostname()
	clean := strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, host)
	return fmt.Sprintf("%s~%d", clean, os.Getpid())
}

// RemoveOrphanTemps removes from local folder dir the temporary files of
// Create and CreateExclusive (both named after processTag) that processes
// of this host killed before they finished left. Files of running
// processes, or of other hosts (a shared folder), are kept.
func RemoveOrphanTemps(ctx context.Context, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	host := strings.SplitN(processTag(), "~", 2)[0]
	for _, e := range entries {
		tag, ok := strings.CutPrefix(e.Name(), exclusiveTempPrefix)
		if !ok {
			tag, ok = strings.CutPrefix(e.Name(), tempPrefix)
		}
		if !ok || e.IsDir() {
			continue
		}
		h, rest, ok := strings.Cut(tag, "~")
		pidText, _, ok2 := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || !ok2 || err != nil || h != host || pid <= 0 || pid == os.Getpid() || processRuns(pid) {
			continue
		}
		Local{}.Delete(ctx, filepath.Join(dir, e.Name()))
	}
}

// processRuns reports whether process pid of this host runs.
func processRuns(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

var createTemp = func(r *os.Root, dir, pattern string) (*os.File, string, error) {
	for try := 0; ; try++ {
		var rnd [6]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, "", err
		}
		name := filepath.Join(dir, strings.Replace(pattern, "*", hex.EncodeToString(rnd[:]), 1))
		f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10 {
			continue
		}
		return f, name, err
	}
}

// CreateExclusive implements ExclusiveCreator: data is written and synced
// to a temporary file in the folder, which is then hard-linked into place
// (a link, like O_EXCL, fails when the name exists), so the object is never
// seen half written, even after a crash. A symbolic link at location or at
// a folder of its path (below its root, see WithRoots) is refused.
//
// The folder is made when missing, and made again when it goes missing
// before the temporary file is in it: a lock's holder removes the emptied
// lock folder when it releases the lock, and a contender may have found
// the folder there just before.
func (Local) CreateExclusive(ctx context.Context, location string, data []byte) (Attrs, error) {
	r, rel, err := openRoot(ctx, location)
	if err != nil {
		return Attrs{}, err
	}
	defer r.Close()
	if err := r.noLinks("create", location, rel); err != nil {
		return Attrs{}, err
	}
	dir := filepath.Dir(rel)
	var tmp *os.File
	var tmpName string
	for attempt := 0; ; attempt++ {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			return Attrs{}, named(err, location)
		}
		tmp, tmpName, err = createTemp(r.Root, dir, exclusiveTempPrefix+processTag()+"-*")
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 100 {
			return Attrs{}, fmt.Errorf("create %s: %w", location, err)
		}
	}
	defer r.Remove(tmpName)
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Attrs{}, fmt.Errorf("create %s: %w", location, err)
	}
	if err := r.noLinks("create", location, rel); err != nil {
		return Attrs{}, err
	}
	if err := r.Link(tmpName, rel); err != nil {
		return Attrs{}, renamed(err, "link", tmpName, location) // matches fs.ErrExist when the name is taken
	}
	if err := syncDir(r.Open(dir)); err != nil {
		return Attrs{}, fmt.Errorf("create %s: %w", location, err)
	}
	info, err := r.Lstat(rel)
	if err != nil {
		return Attrs{}, named(err, location)
	}
	return Attrs{Location: location, Size: info.Size(), ModTime: info.ModTime()}, nil
}

// RemoveAll implements Remover: the folder, temporary files and all. A link
// at dir or at a folder of its path (below its root, see WithRoots) is
// refused; links inside dir are removed, never followed.
func (Local) RemoveAll(ctx context.Context, dir string) error {
	r, rel, err := openRoot(ctx, dir)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.noLinks("remove", dir, rel); err != nil {
		return err
	}
	if rel == "." {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return syncDir(os.Open(filepath.Dir(dir)))
	}
	if err := r.Root.RemoveAll(rel); err != nil {
		return named(err, dir)
	}
	return syncDir(r.Open(filepath.Dir(rel)))
}
