package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestDeadHolderOnThisHost: a lock whose lease still runs is taken over at
// once when its holder is a process of this host that has exited, and not
// when the holder runs (this process) or lives on another host.
func TestDeadHolderOnThisHost(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		owner string
		taken bool
	}{
		{fmt.Sprintf("%s/%d/x", host, dead.Process.Pid), true},
		{fmt.Sprintf("%s/%d/x", host, os.Getpid()), false},
		{fmt.Sprintf("%s/%d/x", host, os.Getppid()), false},
		{fmt.Sprintf("other-%s/%d/x", host, dead.Process.Pid), false},
		{"not an owner of ours", false},
	} {
		path := filepath.Join(t.TempDir(), Dir, "publish.json")
		os.MkdirAll(filepath.Dir(path), 0o755)
		b, _ := json.Marshal(lockRecord{Job: "publish", Owner: tc.owner, Expires: time.Now().Add(time.Hour).UTC()})
		os.WriteFile(path, b, 0o644)
		l, err := At(nil, path, "publish", NewOwner(), time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = l.Acquire(context.Background())
		if tc.taken && err != nil {
			t.Errorf("held by %s, which exited: %v", tc.owner, err)
		}
		if !tc.taken && !errors.Is(err, ErrLocked) {
			t.Errorf("held by %s: %v, want ErrLocked", tc.owner, err)
		}
	}
}

// TestFileLockFolderRace: holders releasing the lock remove its emptied
// folder; a contender that made the folder just before must not fail with
// "no such file or directory" but take the lock or find it held.
func TestFileLockFolderRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", Dir, "publish.json")
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			l := &FileLock{Path: path, Job: "publish", Owner: fmt.Sprintf("%s-%d", NewOwner(), g), TTL: time.Minute}
			for range 600 {
				err := l.Acquire(context.Background())
				if errors.Is(err, ErrLocked) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if err := l.Release(context.Background()); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
