package storage_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/storage/gcstest"
	"github.com/deidproject/deid/pipeline/storage/storagetest"
)

// TestGCSConformance runs the Store contract against the real client and
// an in-process fake-gcs-server.
func TestGCSConformance(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	storagetest.Run(t, gcstest.Store(t, emu.URL, storage.GCSOptions{}), "gs://lake/conformance")
}

// TestGCSConformanceStandalone runs it against the standalone emulator
// .ci/run starts, reached the way production reaches GCS: through
// STORAGE_EMULATOR_HOST and a plain client.
func TestGCSConformanceStandalone(t *testing.T) {
	bucket := gcstest.NewBucket(t)
	ctx := context.Background()
	g, err := storage.NewGCS(ctx, storage.GCSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	storagetest.Run(t, g, "gs://"+bucket+"/conformance")
}

func put(t *testing.T, s storage.Store, loc, data string) storage.Attrs {
	t.Helper()
	w, err := s.Create(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := io.WriteString(w, data); err != nil {
		t.Fatal(err)
	}
	a, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestGCSAttrs: Stat, List and Commit report the generation and the
// CRC32C the server computed, which equal the bytes' own.
func TestGCSAttrs(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	g := gcstest.Store(t, emu.URL, storage.GCSOptions{})
	ctx := context.Background()
	data := "hello, gcs"
	want := crc32.Checksum([]byte(data), crc32.MakeTable(crc32.Castagnoli))
	c := put(t, g, "gs://lake/x/a.json", data)
	s, err := g.Stat(ctx, "gs://lake/x/a.json")
	if err != nil {
		t.Fatal(err)
	}
	var l storage.Attrs
	g.List(ctx, "gs://lake/x/", func(a storage.Attrs) error { l = a; return nil })
	for name, a := range map[string]storage.Attrs{"commit": c, "stat": s, "list": l} {
		if a.Location != "gs://lake/x/a.json" || a.Size != int64(len(data)) || !a.HasCRC32C || a.CRC32C != want ||
			a.Generation == 0 || a.Generation != c.Generation {
			t.Errorf("%s: %+v, want CRC32C %08x and generation %d", name, a, want, c.Generation)
		}
	}
	c2 := put(t, g, "gs://lake/x/a.json", "replaced")
	if c2.Generation == c.Generation {
		t.Errorf("a replacement kept generation %d", c.Generation)
	}
}

// TestGCSPreconditions: writes carry preconditions the emulator checks
// (412 on writes, also resumable ones). A replacement is conditional on
// the generation Create saw, so a concurrent change is detected rather
// than overwritten. (fake-gcs-server ignores preconditions on delete,
// metadata updates, reads and copy destinations: DeleteIf and Move's
// copy conditions cannot be checked against it, and this test does not
// pretend to.)
func TestGCSPreconditions(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	ctx := context.Background()
	for _, chunk := range []int{0, 256 << 10} { // one-shot and resumable uploads
		g := gcstest.Store(t, emu.URL, storage.GCSOptions{ChunkSize: chunk})
		loc := fmt.Sprintf("gs://lake/pre/%d.bin", chunk)
		big := strings.Repeat("x", 600<<10) // 3 chunks when chunked
		first := put(t, g, loc, "v1")

		// someone else replaces the object between our Create and Commit
		w, err := g.Create(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, big)
		put(t, g, loc, "v2 by someone else")
		if _, err := w.Commit(); !errors.Is(err, storage.ErrPrecondition) {
			t.Errorf("chunk %d: commit over a concurrent change: %v, want ErrPrecondition", chunk, err)
		}
		if a, _ := g.Stat(ctx, loc); a.Generation == first.Generation || a.Size != int64(len("v2 by someone else")) {
			t.Errorf("chunk %d: the concurrent version was overwritten: %+v", chunk, a)
		}

		// DoesNotExist: a lock or journal entry that must be new
		w, err = g.CreateIf(ctx, loc, storage.Condition{DoesNotExist: true})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, big)
		if _, err := w.Commit(); !errors.Is(err, storage.ErrPrecondition) {
			t.Errorf("chunk %d: DoesNotExist over an object: %v", chunk, err)
		}
		// GenerationMatch on a stale generation
		w, err = g.CreateIf(ctx, loc, storage.Condition{GenerationMatch: first.Generation})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "stale")
		if _, err := w.Commit(); !errors.Is(err, storage.ErrPrecondition) {
			t.Errorf("chunk %d: stale GenerationMatch: %v", chunk, err)
		}
		// the current generation succeeds
		cur, _ := g.Stat(ctx, loc)
		w, _ = g.CreateIf(ctx, loc, storage.Condition{GenerationMatch: cur.Generation})
		io.WriteString(w, big)
		if a, err := w.Commit(); err != nil || a.Size != int64(len(big)) {
			t.Errorf("chunk %d: current GenerationMatch: %+v %v", chunk, a, err)
		}
		if _, err := g.CreateIf(ctx, loc, storage.Condition{}); err == nil {
			t.Error("an empty condition was accepted")
		}
	}
}

// TestGCSAbortMidUpload: aborting a resumable upload after chunks were
// sent leaves nothing.
func TestGCSAbortMidUpload(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	g := gcstest.Store(t, emu.URL, storage.GCSOptions{ChunkSize: 256 << 10})
	w, err := g.Create(context.Background(), "gs://lake/ab/x.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Stat(context.Background(), "gs://lake/ab/x.bin"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("aborted upload visible: %v", err)
	}
}

// TestGCSPermanentErrors: a missing bucket and a 403 fail at once, with
// the location in the message, and are not retried.
func TestGCSPermanentErrors(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	p := gcstest.NewProxy(t, emu.URL, 0, 1)
	p.Deny = func(r *http.Request) int {
		if strings.Contains(r.URL.Path, "/b/locked") {
			return http.StatusForbidden
		}
		return 0
	}
	g := gcstest.Store(t, p.URL, storage.GCSOptions{})
	ctx := context.Background()
	err := g.List(ctx, "gs://nobucket/x/", func(storage.Attrs) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "gs://nobucket/x/") || !strings.Contains(err.Error(), "bucket does not exist") {
		t.Errorf("list of a missing bucket: %v", err)
	}
	w, err := g.Create(ctx, "gs://nobucket/x/y.json")
	if err == nil {
		io.WriteString(w, "{}")
		_, err = w.Commit()
	}
	if err == nil || !strings.Contains(err.Error(), "gs://nobucket/x/y.json") {
		t.Errorf("write to a missing bucket: %v", err)
	}
	_, err = g.Stat(ctx, "gs://locked/x.parquet")
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "gs://locked/x.parquet") {
		t.Errorf("403: %v", err)
	}
	if g.Retries() != 0 {
		t.Errorf("permanent errors were retried %d times", g.Retries())
	}
}

// TestGCSRetries: with a proxy failing ~30% of requests (503, 429,
// dropped connections, answers lost after the emulator acted), every
// operation still succeeds and the retries are counted.
func TestGCSRetries(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	p := gcstest.NewProxy(t, emu.URL, 0.3, 7)
	g := gcstest.Store(t, p.URL, storage.GCSOptions{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		MaxAttempts: 20, ChunkSize: 256 << 10})
	storagetest.Run(t, g, "gs://lake/flaky")
	u, m, d, l := p.Injected()
	if u == 0 || m == 0 || d == 0 || l == 0 {
		t.Errorf("the proxy injected %d 503s, %d 429s, %d drops, %d lost answers", u, m, d, l)
	}
	// every retry answers a fault; a fault may end an operation without a
	// retry (net/http resends some requests itself; an aborted upload
	// stops)
	if n := g.Retries(); n == 0 || n > u+m+d+l || n < (u+m+d+l)/2 {
		t.Errorf("%d retries counted for %d injected faults", n, u+m+d+l)
	}
	t.Logf("%d requests forwarded, faults: %d 503, %d 429, %d dropped, %d lost; %d retries", p.Forwarded(), u, m, d, l, g.Retries())
}

// TestGCSProtection: versioning on a bucket is reported, with a warning
// saying deleted data survives; a plain bucket gives none. (The emulator
// does not implement soft delete.)
func TestGCSProtection(t *testing.T) {
	emu := gcstest.Start(t, []string{"plain"}, "versioned")
	g := gcstest.Store(t, emu.URL, storage.GCSOptions{})
	r := &storage.Router{NewGCS: func(context.Context) (storage.Store, error) { return g, nil }}
	ctx := context.Background()
	cases := []struct {
		loc    string
		retain bool
	}{
		{"gs://versioned/out/x.parquet", true},
		{"gs://plain/out/x.parquet", false},
		{t.TempDir(), false},
	}
	for _, c := range cases {
		p, err := storage.DeleteProtection(ctx, r, c.loc)
		if err != nil {
			t.Fatal(err)
		}
		if p.Retains() != c.retain || (p.Warning() != "") != c.retain {
			t.Errorf("%s: %+v %q", c.loc, p, p.Warning())
		}
		if c.retain && !strings.Contains(p.Warning(), "gs://versioned") {
			t.Errorf("warning does not name the bucket: %q", p.Warning())
		}
	}
	// and versioning really keeps what deid deletes
	put(t, g, "gs://versioned/out/x.parquet", "data")
	if err := g.Delete(ctx, "gs://versioned/out/x.parquet"); err != nil {
		t.Fatal(err)
	}
	objs, _, err := emu.Server.ListObjectsWithOptions("versioned", fakestorage.ListOptions{Versions: true})
	if err != nil || len(objs) != 1 {
		t.Errorf("noncurrent versions after delete: %d %v", len(objs), err)
	}
}

// TestRouter: plain paths go to the disk, gs:// to GCS, other schemes fail.
func TestRouter(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	g := gcstest.Store(t, emu.URL, storage.GCSOptions{})
	r := &storage.Router{NewGCS: func(context.Context) (storage.Store, error) { return g, nil }}
	ctx := context.Background()
	dir := t.TempDir()
	put(t, r, filepath.Join(dir, "a.txt"), "local")
	put(t, r, "gs://lake/r/a.txt", "remote")
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); err != nil {
		t.Error(err)
	}
	if a, err := g.Stat(ctx, "gs://lake/r/a.txt"); err != nil || a.Size != 6 {
		t.Errorf("%+v %v", a, err)
	}
	// a move across stores copies
	if err := storage.Move(ctx, r, filepath.Join(dir, "a.txt"), "gs://lake/r/b.txt"); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Stat(ctx, "gs://lake/r/b.txt"); err != nil || a.Size != 5 {
		t.Errorf("moved: %+v %v", a, err)
	}
	if _, err := r.Stat(ctx, "s3://x/y"); !errors.Is(err, storage.ErrUnsupportedScheme) {
		t.Errorf("s3: %v", err)
	}
	if _, err := r.CreateIf(ctx, filepath.Join(dir, "c"), storage.Condition{DoesNotExist: true}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("conditional local write: %v", err)
	}
}

// TestGCSLostAnswers: when the emulator did what was asked but the answer
// never came back, the client retries; the retried upload then fails its
// own DoesNotExist precondition, the retried copy its own, the retried
// delete finds nothing. Commit and Move recognise their own result (same
// size and CRC32C) and succeed; a different object is still refused.
func TestGCSLostAnswers(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	p := gcstest.NewProxy(t, emu.URL, 0, 1)
	lost := map[string]bool{}
	p.Lose = func(r *http.Request) bool {
		var kind string
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "multipart":
			kind = "upload"
		case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/rewriteTo/"):
			kind = "copy"
		case r.Method == http.MethodDelete:
			kind = "delete"
		default:
			return false
		}
		if lost[kind] {
			return false
		}
		lost[kind] = true
		return true
	}
	g := gcstest.Store(t, p.URL, storage.GCSOptions{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	ctx := context.Background()
	a := put(t, g, "gs://lake/lost/a.bin", "first")
	if a.Size != 5 || !lost["upload"] {
		t.Errorf("commit after a lost answer: %+v (answer lost: %v)", a, lost["upload"])
	}
	if err := storage.Move(ctx, g, "gs://lake/lost/a.bin", "gs://lake/lost/b.bin"); err != nil || !lost["copy"] || !lost["delete"] {
		t.Fatalf("move after lost answers: %v (lost: %v)", err, lost)
	}
	direct := gcstest.Store(t, emu.URL, storage.GCSOptions{})
	if _, err := direct.Stat(ctx, "gs://lake/lost/a.bin"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("source after move: %v", err)
	}
	if b, err := direct.Stat(ctx, "gs://lake/lost/b.bin"); err != nil || b.Size != 5 {
		t.Errorf("target after move: %+v %v", b, err)
	}
	if g.Retries() < 3 {
		t.Errorf("%d retries for 3 lost answers", g.Retries())
	}
	// a different object in the way is not mistaken for ours
	w, _ := g.CreateIf(ctx, "gs://lake/lost/b.bin", storage.Condition{DoesNotExist: true})
	io.WriteString(w, "other")
	if _, err := w.Commit(); !errors.Is(err, storage.ErrPrecondition) {
		t.Errorf("DoesNotExist over another object: %v", err)
	}
}

// TestGCSDeleteAndCopyPreconditions: fake-gcs-server ignores
// ifGenerationMatch on deletes and copy destinations, so a proxy enforces
// it here, as GCS does; the test covers deid's side: a delete or a move
// onto an object that changed since it was read is refused with
// ErrPrecondition and removes nothing.
func TestGCSDeleteAndCopyPreconditions(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	p := gcstest.NewProxy(t, emu.URL, 0, 1)
	p.EnforcePreconditions = true
	g := gcstest.Store(t, p.URL, storage.GCSOptions{})
	ctx := context.Background()
	v1 := put(t, g, "gs://lake/pc/x.bin", "one")
	v2 := put(t, g, "gs://lake/pc/x.bin", "two")
	if err := g.DeleteIf(ctx, "gs://lake/pc/x.bin", v1.Generation); !errors.Is(err, storage.ErrPrecondition) {
		t.Errorf("delete of a replaced generation: %v", err)
	}
	if a, err := g.Stat(ctx, "gs://lake/pc/x.bin"); err != nil || a.Generation != v2.Generation {
		t.Errorf("after a refused delete: %+v %v", a, err)
	}
	if err := g.DeleteIf(ctx, "gs://lake/pc/x.bin", v2.Generation); err != nil {
		t.Errorf("delete of the current generation: %v", err)
	}

	// a move whose target appears between Move's look and its copy
	put(t, g, "gs://lake/pc/src.bin", "source")
	direct := gcstest.Store(t, emu.URL, storage.GCSOptions{})
	var once sync.Once
	p.Before = func(r *http.Request) {
		if strings.Contains(r.URL.Path, "/rewriteTo/") {
			once.Do(func() {
				w, _ := direct.Create(ctx, "gs://lake/pc/dst.bin")
				io.WriteString(w, "someone else's")
				w.Commit()
			})
		}
	}
	if err := storage.Move(ctx, g, "gs://lake/pc/src.bin", "gs://lake/pc/dst.bin"); !errors.Is(err, storage.ErrPrecondition) {
		t.Errorf("move onto a new object: %v", err)
	}
	if a, err := g.Stat(ctx, "gs://lake/pc/dst.bin"); err != nil || a.Size != int64(len("someone else's")) {
		t.Errorf("the other object was overwritten: %+v %v", a, err)
	}
	if _, err := g.Stat(ctx, "gs://lake/pc/src.bin"); err != nil {
		t.Errorf("the source of a refused move is gone: %v", err)
	}
}

// TestGCSCreateExclusiveRace: many goroutines create one object
// exclusively, each with its own bytes; exactly one wins, the others get
// ErrExist, and the object holds the winner's bytes. Through a proxy that
// also fails and loses answers, a winner whose answer was lost still wins
// (it recognises its own object) and no loser mistakes the winner's object
// for its own. (fake-gcs-server checks DoesNotExist on uploads atomically,
// under its backend's lock, as GCS does.)
func TestGCSCreateExclusiveRace(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	for _, rate := range []float64{0, 0.3} {
		t.Run(fmt.Sprintf("faults %.0f%%", rate*100), func(t *testing.T) {
			p := gcstest.NewProxy(t, emu.URL, rate, 11)
			g := gcstest.Store(t, p.URL, storage.GCSOptions{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 20})
			ctx := context.Background()
			for round := 0; round < 5; round++ {
				loc := fmt.Sprintf("gs://lake/race/%.0f/%d.lock", rate*100, round)
				const n = 12
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, errs[i] = storage.CreateExclusive(ctx, g, loc, []byte(fmt.Sprintf("owner-%02d", i)))
					}()
				}
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Errorf("round %d: owners %d and %d both created %s", round, winner, i, loc)
					case err == nil:
						winner = i
					case !errors.Is(err, storage.ErrExist):
						t.Errorf("round %d: owner %d: %v, want ErrExist", round, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: nobody created %s: %v", round, loc, errs)
				}
				r, err := g.Open(ctx, loc)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
				if want := fmt.Sprintf("owner-%02d", winner); string(b) != want {
					t.Errorf("round %d: object holds %q, the winner wrote %q", round, b, want)
				}
			}
		})
	}
}

// TestGCSCreateExclusiveLostAnswer: the answer to a successful exclusive
// create is lost; the retried upload fails its DoesNotExist precondition on
// the caller's own object, which CreateExclusive recognises byte for byte
// and reports as created. A second create with other bytes whose answer is
// lost too is still refused with ErrExist.
func TestGCSCreateExclusiveLostAnswer(t *testing.T) {
	emu := gcstest.Start(t, []string{"lake"})
	p := gcstest.NewProxy(t, emu.URL, 0, 1)
	var lost atomic.Int64
	p.Lose = func(r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "multipart" && lost.Load() < 2 {
			lost.Add(1)
			return true
		}
		return false
	}
	g := gcstest.Store(t, p.URL, storage.GCSOptions{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	ctx := context.Background()
	a, err := storage.CreateExclusive(ctx, g, "gs://lake/lostx/lock", []byte("mine"))
	if err != nil || a.Size != 4 || a.Generation == 0 {
		t.Fatalf("create after a lost answer: %+v %v", a, err)
	}
	if _, err := storage.CreateExclusive(ctx, g, "gs://lake/lostx/lock", []byte("them")); !errors.Is(err, storage.ErrExist) {
		t.Errorf("second create with a lost answer: %v, want ErrExist", err)
	}
	if lost.Load() != 2 || g.Retries() < 2 {
		t.Errorf("%d answers lost, %d retries", lost.Load(), g.Retries())
	}
	if b, _ := g.Stat(ctx, "gs://lake/lostx/lock"); b.Generation != a.Generation {
		t.Errorf("the object changed: %+v, created %+v", b, a)
	}
}
