package scratch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFolderStale: a job's scratch folder is removed by the next job to
// make one in the same place once its job has ended without removing it
// (its lock dropped, or its lock file not yet renamed into place, or the
// folder still empty), and never while its job runs, in this process or
// another; folders of other programs, a folder with data and no lock file,
// and links are left alone.
func TestFolderStale(t *testing.T) {
	if !locks {
		t.Skip("no advisory locks on this system")
	}
	parent := t.TempDir()
	live, err := NewFolder(parent, "live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	dead, err := NewFolder(parent, "dead", nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead.Path, "part-1"), []byte("raw rows"), 0o600)
	dead.lock.Close() // as if its process had died
	other := filepath.Join(parent, "other-tool")
	noLock := filepath.Join(parent, "deid-nolock")
	empty := filepath.Join(parent, "deid-empty")   // killed before its lock file was made
	unrenamed := filepath.Join(parent, "deid-new") // killed before its lock file was renamed
	target := t.TempDir()
	os.WriteFile(filepath.Join(target, lockName), nil, 0o600)
	for _, d := range []string{other, noLock, empty, unrenamed} {
		os.Mkdir(d, 0o700)
	}
	os.WriteFile(filepath.Join(other, lockName), nil, 0o600)
	os.WriteFile(filepath.Join(noLock, "data"), nil, 0o600)
	os.WriteFile(filepath.Join(unrenamed, lockName+".new"), nil, 0o600)
	os.Symlink(target, filepath.Join(parent, "deid-link"))

	next, err := NewFolder(parent, "next", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Remove()
	for _, d := range []string{dead.Path, empty, unrenamed} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("the ended job's folder %s is still there: %v", d, err)
		}
	}
	for _, d := range []string{live.Path, other, noLock, target, filepath.Join(parent, "deid-link"), next.Path} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	if err := live.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.Path); !os.IsNotExist(err) {
		t.Errorf("Remove left %s", live.Path)
	}
}

// TestFolderKilled: the folder of a process killed with SIGKILL is removed
// by the next job's NewFolder; while the process lives it is not.
func TestFolderKilled(t *testing.T) {
	if !locks {
		t.Skip("no advisory locks on this system")
	}
	if dir := os.Getenv("DEID_SCRATCH_HOLD"); dir != "" {
		f, err := NewFolder(dir, "held", nil)
		if err != nil {
			os.Exit(3)
		}
		os.WriteFile(filepath.Join(dir, "ready"), []byte(f.Path), 0o600)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	parent := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFolderKilled$")
	cmd.Env = append(os.Environ(), "DEID_SCRATCH_HOLD="+parent)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var held string
	for deadline := time.Now().Add(30 * time.Second); held == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(parent, "ready"))
		held = string(b)
	}
	if !strings.HasPrefix(held, parent) {
		t.Fatalf("the child made no folder: %q", held)
	}
	f, err := NewFolder(parent, "mine", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Remove()
	if _, err := os.Stat(held); err != nil {
		t.Fatalf("a live process's folder was removed: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	f, err = NewFolder(parent, "mine", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Remove()
	if _, err := os.Stat(held); !os.IsNotExist(err) {
		t.Errorf("the killed process's folder is still there: %v", err)
	}
}
