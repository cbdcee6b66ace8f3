package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestLocalWriterStartsWriteback: a file larger than writebackEvery, written
// in uneven pieces, starts the writeback of what it has written along the
// way and commits the same bytes.
func TestLocalWriterStartsWriteback(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "big.bin")
	w, err := Local{}.Create(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, writebackEvery*2+12345)
	for i := range want {
		want[i] = byte(i * 7)
	}
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 3<<20+17)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	lw := w.(*localWriter)
	if lw.flushed == 0 || lw.flushed > lw.written || lw.written-lw.flushed >= writebackEvery {
		t.Errorf("writeback started for %d of %d bytes", lw.flushed, lw.written)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(loc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("committed file differs (%v)", err)
	}
}
