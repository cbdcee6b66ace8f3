package scratch

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// A job's scratch folder holds its parts past the memory budget, class
// tallies' runs and, for deid retain, rows of the source it rewrites: raw
// data. A job removes its folder when it ends; one that is killed cannot.
// So each folder holds a lock file that its job keeps locked while it runs
// (an advisory lock the system drops when the process dies, however it
// dies), and the next job to make a folder in the same place removes every
// folder of deid's whose lock it can take: their jobs are gone.

// folderPrefix begins the name of every scratch folder a job makes.
const folderPrefix = "deid-"

// lockName is the lock file inside a scratch folder.
const lockName = ".deid-scratch.lock"

// Folder is a job's scratch folder, locked while the job runs.
type Folder struct {
	// Path is the folder.
	Path string
	lock *os.File
}

// NewFolder makes a scratch folder in parent (the system's temporary
// folder when empty; named folderPrefix, then name, then a random suffix),
// locks it for this process, and first removes the folders of jobs that
// ended without removing theirs (their locks free). Remove it with
// Folder.Remove.
func NewFolder(parent, name string, log *slog.Logger) (*Folder, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	RemoveStale(parent, log)
	for attempt := 0; ; attempt++ {
		f, err := makeFolder(parent, name)
		if err == nil || attempt == 2 || !errors.Is(err, errRaced) {
			return f, err
		}
	}
}

// errRaced is another job's stale-folder sweep taking the folder being
// made for one that is not: the folder is made again.
var errRaced = errors.New("another job took the new folder for a stale one")

// makeFolder makes and locks one folder. The lock file is locked under
// another name, then renamed: a sweep never finds the lock file unlocked.
// Another job's sweep can still meet the folder empty (and remove it) or
// its lock file before it is locked (and take it): errRaced.
func makeFolder(parent, name string) (*Folder, error) {
	dir, err := os.MkdirTemp(parent, folderPrefix+name+"-")
	if err != nil {
		return nil, fmt.Errorf("scratch folder: %w", err)
	}
	tmp := filepath.Join(dir, lockName+".new")
	lf, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		err = errRaced
	}
	if err == nil {
		var ok bool
		if ok, err = lock(lf); err == nil && !ok {
			err = errRaced
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, lockName))
		}
		if err != nil {
			lf.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("scratch folder %s: lock: %w", dir, err)
	}
	return &Folder{Path: dir, lock: lf}, nil
}

// Remove removes the folder and its lock: what it holds first, the lock
// file last, so that a job killed while removing it leaves a folder still
// locked by nobody, or empty, which the next sweep removes either way.
func (f *Folder) Remove() error {
	err := removeContents(f.Path)
	if err == nil {
		err = os.Remove(filepath.Join(f.Path, lockName))
	}
	if err == nil {
		err = os.Remove(f.Path)
	}
	f.lock.Close() // after the removal: no other job takes the folder meanwhile
	return err
}

// removeContents removes everything in dir but its lock file.
func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != lockName {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveStale removes parent's scratch folders (the system's temporary
// folder when empty) whose lock no process holds; NewFolder calls it, and
// a job that may end before it makes a folder (one killed after its
// commit leaves its folder, and its rerun has nothing to do) calls it
// first. It removes those whose lock no process holds: the lock file's, or that of one killed before it was renamed
// into place. A folder without either is removed only when empty (killed
// before its lock file was made; os.Remove removes no folder with
// something in it); a folder that cannot be removed is logged.
func RemoveStale(parent string, log *slog.Logger) {
	if parent == "" {
		parent = os.TempDir()
	}
	entries, err := os.ReadDir(parent)
	if err != nil || !locks {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), folderPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		lf, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			lf, err = os.OpenFile(filepath.Join(dir, lockName+".new"), os.O_RDWR, 0)
		}
		if errors.Is(err, fs.ErrNotExist) {
			os.Remove(dir) // only if empty
			continue
		}
		if err != nil {
			continue
		}
		if ok, err := lock(lf); err == nil && ok {
			if err := os.RemoveAll(dir); err != nil && log != nil {
				log.Warn("a scratch folder left by a job that ended could not be removed", "folder", dir, "error", err)
			} else if log != nil {
				log.Info("removed the scratch folder of a job that ended without removing it", "folder", dir)
			}
		}
		lf.Close()
	}
}
