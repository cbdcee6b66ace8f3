// Package storagetest is the conformance suite every storage.Store passes:
// local disk here, and Google Cloud Storage through its emulator.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

// Run checks the Store contract on s. root is an empty location the suite
// may write under (a temporary directory, or gs://bucket/prefix).
func Run(t *testing.T, s storage.Store, root string) {
	ctx := context.Background()
	put := func(t *testing.T, loc string, data []byte) storage.Attrs {
		t.Helper()
		w, err := s.Create(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		a, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if a.Size != int64(len(data)) {
			t.Errorf("commit of %s reported %d bytes, wrote %d", loc, a.Size, len(data))
		}
		return a
	}
	get := func(t *testing.T, loc string) []byte {
		t.Helper()
		r, err := s.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("write is invisible until commit", func(t *testing.T) {
		loc := storage.Join(root, "a", "new.bin")
		w, err := s.Create(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		if _, err := s.Stat(ctx, loc); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("object visible before commit: %v", err)
		}
		n := 0
		s.List(ctx, storage.Join(root, "a")+"/", func(storage.Attrs) error { n++; return nil })
		if n != 0 {
			t.Errorf("listing shows %d objects before commit", n)
		}
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("abort after commit: %v", err)
		}
		if got := get(t, loc); string(got) != "partial" {
			t.Errorf("read back %q", got)
		}
	})

	t.Run("abort leaves nothing", func(t *testing.T) {
		loc := storage.Join(root, "b", "aborted.bin")
		w, err := s.Create(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bytes.Repeat([]byte("x"), 1<<16))
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, loc); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("aborted object exists: %v", err)
		}
		n := 0
		s.List(ctx, storage.Join(root, "b")+"/", func(storage.Attrs) error { n++; return nil })
		if n != 0 {
			t.Errorf("aborted write left %d objects", n)
		}
	})

	t.Run("commit replaces", func(t *testing.T) {
		loc := storage.Join(root, "c", "x.bin")
		put(t, loc, []byte("one"))
		put(t, loc, []byte("second"))
		if got := get(t, loc); string(got) != "second" {
			t.Errorf("read back %q", got)
		}
	})

	t.Run("ranged reads", func(t *testing.T) {
		loc := storage.Join(root, "d", "r.bin")
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(i * 7)
		}
		put(t, loc, data)
		r, err := s.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Size() != int64(len(data)) || r.Attrs().Size != int64(len(data)) {
			t.Errorf("size %d", r.Size())
		}
		buf := make([]byte, 8)
		for _, off := range []int64{0, 12345, int64(len(data)) - 8} {
			if _, err := r.ReadAt(buf, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, data[off:off+8]) {
				t.Errorf("ReadAt(%d) = %x", off, buf)
			}
		}
		if n, err := r.ReadAt(buf, int64(len(data))-3); n != 3 || err == nil {
			t.Errorf("read past the end: n=%d err=%v", n, err)
		}
	})

	t.Run("concurrent ranged reads", func(t *testing.T) {
		loc := storage.Join(root, "d", "c.bin")
		data := make([]byte, 300<<10)
		for i := range data {
			data[i] = byte(i*13 + i>>8)
		}
		put(t, loc, data)
		r, err := s.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		const readers = 8
		errs := make(chan error, readers)
		for g := 0; g < readers; g++ {
			go func() {
				buf := make([]byte, 4096+g)
				for off := int64(g * 1000); off+int64(len(buf)) <= int64(len(data)); off += 37 << 10 {
					if _, err := r.ReadAt(buf, off); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
						errs <- fmt.Errorf("ReadAt(%d) returned other bytes", off)
						return
					}
				}
				errs <- nil
			}()
		}
		for g := 0; g < readers; g++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("missing objects", func(t *testing.T) {
		loc := storage.Join(root, "nope", "missing.bin")
		if _, err := s.Open(ctx, loc); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Open: %v", err)
		}
		if _, err := s.Stat(ctx, loc); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Stat: %v", err)
		}
		if err := s.Delete(ctx, loc); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Delete: %v", err)
		}
		if err := s.List(ctx, storage.Join(root, "nope")+"/", func(storage.Attrs) error { return nil }); err != nil {
			t.Errorf("List of a missing prefix: %v", err)
		}
	})

	t.Run("list is sorted and can stop", func(t *testing.T) {
		base := storage.Join(root, "e")
		names := []string{"b/2.parquet", "a.parquet", "b/10.parquet", "c/d/e.parquet", "b/1.parquet"}
		for _, n := range names {
			put(t, storage.Join(base, n), []byte(n))
		}
		var got []string
		err := s.List(ctx, base+"/", func(a storage.Attrs) error { got = append(got, a.Location); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(names) || !sort.StringsAreSorted(got) {
			t.Errorf("listing %v", got)
		}
		stop := errors.New("stop")
		n := 0
		err = s.List(ctx, base+"/", func(storage.Attrs) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("List did not stop: n=%d err=%v", n, err)
		}
		_, matches, err := storage.Glob(ctx, s, storage.Join(base, "b", "*.parquet"))
		if err != nil || len(matches) != 3 || matches[0].Rel != "1.parquet" {
			t.Errorf("glob: %v %v", matches, err)
		}
		_, matches, err = storage.Glob(ctx, s, storage.Join(base, "**", "*.parquet"))
		if err != nil || len(matches) != 5 {
			t.Errorf("glob **: %v %v", matches, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		loc := storage.Join(root, "f", "gone.bin")
		put(t, loc, []byte("x"))
		if err := s.Delete(ctx, loc); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, loc); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("deleted object still there: %v", err)
		}
	})

	t.Run("move", func(t *testing.T) {
		src, dst := storage.Join(root, "g", "src.bin"), storage.Join(root, "g", "sub", "dst.bin")
		put(t, src, []byte("moved"))
		if err := storage.Move(ctx, s, src, dst); err != nil {
			t.Fatal(err)
		}
		if got := get(t, dst); string(got) != "moved" {
			t.Errorf("moved object reads %q", got)
		}
		if _, err := s.Stat(ctx, src); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("source still there: %v", err)
		}
	})

	t.Run("create exclusively", func(t *testing.T) {
		if _, ok := s.(storage.ExclusiveCreator); !ok {
			t.Skip("the store has no ExclusiveCreator")
		}
		loc := storage.Join(root, "h", "lock")
		if _, err := storage.CreateExclusive(ctx, s, loc, []byte("first")); err != nil {
			t.Fatal(err)
		}
		if _, err := storage.CreateExclusive(ctx, s, loc, []byte("second")); !errors.Is(err, storage.ErrExist) {
			t.Errorf("second exclusive create: %v, want ErrExist", err)
		}
		if got := get(t, loc); string(got) != "first" {
			t.Errorf("lock reads %q after a refused create", got)
		}
		if err := s.Delete(ctx, loc); err != nil {
			t.Fatal(err)
		}
		if _, err := storage.CreateExclusive(ctx, s, loc, []byte("third")); err != nil {
			t.Errorf("create after delete: %v", err)
		}
	})

	t.Run("remove all", func(t *testing.T) {
		dir := storage.Join(root, "i")
		put(t, storage.Join(dir, "x.bin"), []byte("x"))
		put(t, storage.Join(dir, "sub", "y.bin"), []byte("y"))
		put(t, storage.Join(root, "i-sibling.bin"), []byte("z"))
		w, err := s.Create(ctx, storage.Join(dir, "unfinished.bin")) // never committed
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		if err := storage.RemoveAll(ctx, s, dir); err != nil {
			t.Fatal(err)
		}
		w.Abort()
		var left []string
		s.List(ctx, dir+"/", func(a storage.Attrs) error { left = append(left, a.Location); return nil })
		if len(left) != 0 {
			t.Errorf("left under %s: %v", dir, left)
		}
		if got := get(t, storage.Join(root, "i-sibling.bin")); string(got) != "z" {
			t.Errorf("sibling reads %q", got)
		}
		if err := storage.RemoveAll(ctx, s, storage.Join(root, "missing")); err != nil {
			t.Errorf("remove a missing folder: %v", err)
		}
	})
}
