// Package gcstest runs the real fake-gcs-server (github.com/fsouza/fake-gcs-server)
// for tests of the GCS store: in-process as an HTTP server, or as the
// standalone process .ci/run starts (STORAGE_EMULATOR_HOST), and puts a
// fault-injecting reverse proxy in front of it. Nothing here imitates the
// client or the server: every request that is not a deliberate fault is
// served by the emulator.
package gcstest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gcs "cloud.google.com/go/storage"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/deidproject/deid/pipeline/storage"
)

// Emulator is a running fake-gcs-server with the memory backend.
type Emulator struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// Server is the in-process server (nil for a standalone one).
	Server *fakestorage.Server
}

// Start runs fake-gcs-server in-process, behind a real HTTP listener, with
// the given buckets (versioned ones named in versioned); it stops when the
// test ends.
func Start(t testing.TB, buckets []string, versioned ...string) *Emulator {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.HTTPHandler())
	t.Cleanup(func() { hs.Close(); srv.Stop() })
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	for _, b := range versioned {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b, VersioningEnabled: true})
	}
	return &Emulator{URL: hs.URL, Server: srv}
}

// Endpoint returns the JSON API endpoint of a server base URL, for
// storage.GCSOptions.Endpoint.
func Endpoint(baseURL string) string { return baseURL + "/storage/v1/" }

// Store returns a GCS store talking to the server at baseURL (the emulator,
// or a proxy in front of it), closed when the test ends.
func Store(t testing.TB, baseURL string, opt storage.GCSOptions) *storage.GCS {
	t.Helper()
	opt.Endpoint = Endpoint(baseURL)
	g, err := storage.NewGCS(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// Standalone returns the standalone emulator's host (STORAGE_EMULATOR_HOST,
// as .ci/run sets it). When it is unset the test is skipped, unless
// DEID_REQUIRE_GCS is set: then it fails.
func Standalone(t testing.TB) string {
	t.Helper()
	host := os.Getenv("STORAGE_EMULATOR_HOST")
	if host == "" {
		if os.Getenv("DEID_REQUIRE_GCS") != "" {
			t.Fatal("DEID_REQUIRE_GCS is set but STORAGE_EMULATOR_HOST is not: start fake-gcs-server (see .ci/run)")
		}
		t.Skip("STORAGE_EMULATOR_HOST is not set: no standalone fake-gcs-server (set DEID_REQUIRE_GCS=1 to fail instead)")
	}
	return host
}

// NewBucket creates a bucket with a fresh name on the standalone emulator
// (see Standalone) and returns its name.
func NewBucket(t testing.TB) string {
	t.Helper()
	Standalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := gcs.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name := fmt.Sprintf("deid-test-%d-%d", time.Now().UnixNano(), rand.Uint32())
	if err := c.Bucket(name).Create(ctx, "test-project", nil); err != nil {
		t.Fatalf("create bucket %s on the standalone emulator: %v", name, err)
	}
	return name
}

// Fault is what the proxy does instead of forwarding a request.
type Fault int

// The faults a Proxy injects.
const (
	// Unavailable answers 503.
	Unavailable Fault = iota
	// TooMany answers 429.
	TooMany
	// Drop closes the connection without an answer.
	Drop
	// Lost forwards the request, then closes the connection instead of
	// answering: the emulator acted, the client does not know it. Chunks
	// of resumable uploads are exempt: fake-gcs-server appends a resent
	// chunk again (it ignores Content-Range's start, which GCS honours),
	// and the corrupt object would only test the emulator. (deid's commit
	// would catch it by CRC32C.)
	Lost
	numFaults
)

// Proxy is a reverse proxy in front of an emulator. It forwards every
// request, except that, at a seeded rate, it answers 503 or 429 or drops
// the connection instead of forwarding, or forwards and then loses the
// answer (Lost); and it answers Deny's status to the requests Deny picks
// (a permanent error such as 403).
type Proxy struct {
	// URL is the proxy's base URL.
	URL string
	// Deny, when set, picks requests to refuse with a permanent status
	// (return 0 to forward).
	Deny func(*http.Request) int
	// Before, when set, is called first with every request (a test's
	// concurrent writer acts there).
	Before func(*http.Request)
	// Lose, when set, picks requests to forward and then hang up on (as
	// Lost), beyond the random faults.
	Lose func(*http.Request) bool
	// EnforcePreconditions makes the proxy check ifGenerationMatch on
	// deletes and on copy (rewrite) destinations against the emulator,
	// answering 412 as GCS would: fake-gcs-server ignores them there.
	// Every request with ifGenerationMatch (uploads too, which the emulator
	// checks itself) is forwarded one at a time, so that no conditional
	// write lands between the proxy's check and the emulator acting; a
	// conditional delete of a missing object is answered 404, as GCS does.
	EnforcePreconditions bool

	target string

	enforceMu sync.Mutex // serializes precondition-checked requests
	mu        sync.Mutex
	rng       *rand.Rand
	rate      float64
	injected  [numFaults]atomic.Int64
	forwarded atomic.Int64
}

// NewProxy starts a proxy to the server at target that injects a fault
// into about rate of the requests, chosen by a generator seeded with seed.
func NewProxy(t testing.TB, target string, rate float64, seed uint64) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), rate: rate, target: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	// keep the client's Host header: the emulator builds resumable upload
	// URLs from it, so they come back through the proxy
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Before != nil {
			p.Before(r)
		}
		if p.Deny != nil {
			if code := p.Deny(r); code != 0 {
				writeError(w, code)
				return
			}
		}
		if p.EnforcePreconditions && r.URL.Query().Has("ifGenerationMatch") {
			// conditional requests one at a time, so that no write lands
			// between a check here and the emulator acting
			p.enforceMu.Lock()
			defer p.enforceMu.Unlock()
			if code := p.preconditionFails(r); code != 0 {
				writeError(w, code)
				return
			}
		}
		f, ok := p.fault()
		if p.Lose != nil && p.Lose(r) {
			f, ok = Lost, true
		} else if f == Lost && r.URL.Query().Has("upload_id") {
			ok = false
		}
		if ok {
			p.injected[f].Add(1)
			switch f {
			case Unavailable:
				writeError(w, http.StatusServiceUnavailable)
			case TooMany:
				writeError(w, http.StatusTooManyRequests)
			case Drop:
				hangUp(w)
			case Lost:
				p.forwarded.Add(1)
				rp.ServeHTTP(httptest.NewRecorder(), r)
				hangUp(w)
			}
			return
		}
		p.forwarded.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

func (p *Proxy) fault() (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() >= p.rate {
		return 0, false
	}
	return Fault(p.rng.IntN(int(numFaults))), true
}

// preconditionFails checks ifGenerationMatch of a delete or of a copy's
// destination by reading the object's generation from the emulator, and
// returns the status GCS would answer when it fails (0 when it holds).
func (p *Proxy) preconditionFails(r *http.Request) int {
	q := r.URL.Query()
	if !q.Has("ifGenerationMatch") {
		return 0
	}
	want, err := strconv.ParseInt(q.Get("ifGenerationMatch"), 10, 64)
	if err != nil {
		return http.StatusBadRequest
	}
	// /storage/v1/b/B/o/O, or /storage/v1/b/SB/o/SO/rewriteTo/b/DB/o/DO
	segs := strings.Split(r.URL.EscapedPath(), "/")
	var bucket, object string
	switch {
	case r.Method == http.MethodDelete && len(segs) == 7 && segs[3] == "b" && segs[5] == "o":
		bucket, object = segs[4], segs[6]
	case r.Method == http.MethodPost && len(segs) == 12 && segs[7] == "rewriteTo":
		bucket, object = segs[9], segs[11]
	default:
		return 0
	}
	resp, err := http.Get(p.target + "/storage/v1/b/" + bucket + "/o/" + object + "?alt=json")
	if err != nil {
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		switch {
		case want == 0:
			return 0
		case r.Method == http.MethodDelete:
			// GCS answers a delete of a missing object 404, whatever its
			// precondition; answered here, not forwarded, since an
			// object created meanwhile would be deleted by the emulator
			return http.StatusNotFound
		}
		return http.StatusPreconditionFailed
	}
	var meta struct {
		Generation string `json:"generation"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		return http.StatusBadGateway
	}
	if gen, err := strconv.ParseInt(meta.Generation, 10, 64); err != nil || gen != want {
		return http.StatusPreconditionFailed
	}
	return 0
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Injected returns how many faults of each kind were injected: 503s, 429s,
// connections dropped before forwarding, and answers lost after it.
func (p *Proxy) Injected() (unavailable, tooMany, dropped, lost int64) {
	return p.injected[Unavailable].Load(), p.injected[TooMany].Load(), p.injected[Drop].Load(), p.injected[Lost].Load()
}

// Forwarded returns how many requests reached the emulator.
func (p *Proxy) Forwarded() int64 { return p.forwarded.Load() }

// writeError answers a GCS JSON API error.
func writeError(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": http.StatusText(code) + " (injected by gcstest.Proxy)",
		"errors": []map[string]any{{"reason": "injected", "message": http.StatusText(code)}},
	}})
}
