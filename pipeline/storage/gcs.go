package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gcs "cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// GCSOptions configure the Google Cloud Storage store. The zero value is
// what deid uses in production: Application Default Credentials, or the
// emulator named by STORAGE_EMULATOR_HOST.
type GCSOptions struct {
	// Endpoint, when set, is the JSON API endpoint to talk to without
	// credentials, such as an emulator's "http://127.0.0.1:4443/storage/v1/".
	// Empty means STORAGE_EMULATOR_HOST when set, otherwise Google's
	// endpoint with Application Default Credentials.
	Endpoint string
	// OpTimeout bounds one operation (a metadata read, one ranged read, a
	// delete, a copy) with all its retries; 0 means 2 minutes. Uploads are
	// bounded per chunk by ChunkRetryDeadline, listings (which may be long)
	// per page by MaxAttempts, and everything by the caller's context.
	OpTimeout time.Duration
	// MaxAttempts bounds the tries of one request, the first included; 0
	// means 8.
	MaxAttempts int
	// InitialBackoff and MaxBackoff shape the exponential backoff between
	// tries (multiplier 2, with jitter); 0 means 100 ms and 10 s.
	InitialBackoff, MaxBackoff time.Duration
	// ChunkSize is the resumable upload chunk, buffered in memory per open
	// writer; 0 means 8 MiB. An object smaller than a chunk is sent in one
	// request when committed.
	ChunkSize int
	// ChunkRetryDeadline bounds the retries of one upload chunk; 0 means
	// 32 s (the client's default).
	ChunkRetryDeadline time.Duration
}

// GCS is the Store for Google Cloud Storage. Locations are
// gs://bucket/object URIs; "folders" are name prefixes ending in "/".
//
// Atomicity: an upload becomes visible only when it completes (Commit), as
// one new generation; Abort cancels it and nothing appears. Every upload is
// conditional: Create reads the target's generation and Commit succeeds only
// if the object is still that generation (or still absent), so a concurrent
// change fails the commit with ErrPrecondition instead of being overwritten.
// Those preconditions also make uploads idempotent, so they are retried.
//
// Retries: the client's policy is RetryIdempotent: transient errors (408,
// 429, 5xx, connection resets) are retried with exponential backoff for
// reads, listings, and for writes, copies and deletes that carry a
// precondition or a generation, which all of deid's do. Permanent errors
// (403, 404 on a bucket, 412) are never retried. Retries counts them.
//
// Reads of an opened object are pinned to the generation Open saw: a
// replacement during the read fails it rather than mixing two versions.
type GCS struct {
	client  *gcs.Client
	opt     GCSOptions
	retries atomic.Int64
}

// ErrPrecondition is matched (errors.Is) by errors about a precondition
// that did not hold: the object changed (or appeared) since it was read.
var ErrPrecondition = errors.New("precondition failed: the object was changed by someone else")

// NewGCS returns a GCS store. It reads credentials the client library's
// usual way (Application Default Credentials) unless an emulator is used;
// it never logs or reports them.
func NewGCS(ctx context.Context, opt GCSOptions) (*GCS, error) {
	if opt.OpTimeout <= 0 {
		opt.OpTimeout = 2 * time.Minute
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 8
	}
	if opt.InitialBackoff <= 0 {
		opt.InitialBackoff = 100 * time.Millisecond
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 10 * time.Second
	}
	if opt.ChunkSize <= 0 {
		opt.ChunkSize = 8 << 20
	}
	if opt.ChunkRetryDeadline <= 0 {
		opt.ChunkRetryDeadline = 32 * time.Second
	}
	var copts []option.ClientOption
	switch {
	case opt.Endpoint != "":
		copts = append(copts, option.WithEndpoint(opt.Endpoint), option.WithoutAuthentication(), gcs.WithJSONReads())
	case os.Getenv("STORAGE_EMULATOR_HOST") != "":
		// the emulator serves XML reads only on its configured public
		// host; JSON reads work whatever it is
		copts = append(copts, gcs.WithJSONReads())
	}
	client, err := gcs.NewClient(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("google cloud storage client: %w", err)
	}
	g := &GCS{client: client, opt: opt}
	client.SetRetry(
		gcs.WithPolicy(gcs.RetryIdempotent),
		gcs.WithBackoff(gax.Backoff{Initial: opt.InitialBackoff, Max: opt.MaxBackoff, Multiplier: 2}),
		gcs.WithMaxAttempts(opt.MaxAttempts),
		gcs.WithErrorFunc(func(err error) bool {
			if gcs.ShouldRetry(err) {
				g.retries.Add(1)
				return true
			}
			return false
		}),
	)
	return g, nil
}

// Close releases the client's connections.
func (g *GCS) Close() error { return g.client.Close() }

// Retries returns how many transient errors requests met since the store
// was made: each was retried, unless MaxAttempts or a deadline ran out
// (the operation then failed).
func (g *GCS) Retries() int64 { return g.retries.Load() }

// ParseGS splits a gs://bucket/object location. The object may be empty
// (the bucket itself, or a prefix at its root).
func ParseGS(location string) (bucket, object string, err error) {
	rest, ok := strings.CutPrefix(location, "gs://")
	if !ok {
		return "", "", fmt.Errorf("%s: not a gs:// location", location)
	}
	bucket, object, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%s: no bucket name", location)
	}
	return bucket, object, nil
}

// object returns the handle of an object location.
func (g *GCS) object(location string) (*gcs.ObjectHandle, error) {
	b, o, err := ParseGS(location)
	if err != nil {
		return nil, err
	}
	if o == "" || strings.HasSuffix(o, "/") {
		return nil, fmt.Errorf("%s: not an object location (it names a folder)", location)
	}
	return g.client.Bucket(b).Object(o), nil
}

// gsError wraps a client error with the operation and location, so that
// errors.Is finds ErrNotExist for missing objects, ErrPrecondition for 412
// and fs.ErrPermission for 401/403, and says what to do about the latter.
func gsError(op, location string, err error) error {
	if err == nil {
		return nil
	}
	var ae *googleapi.Error
	switch {
	case errors.Is(err, gcs.ErrObjectNotExist):
		return fmt.Errorf("%s %s: %w", op, location, fs.ErrNotExist)
	case errors.Is(err, gcs.ErrBucketNotExist):
		return fmt.Errorf("%s %s: the bucket does not exist: %w", op, location, err)
	case errors.As(err, &ae) && ae.Code == http.StatusPreconditionFailed:
		return fmt.Errorf("%s %s: %w", op, location, ErrPrecondition)
	case errors.As(err, &ae) && (ae.Code == http.StatusForbidden || ae.Code == http.StatusUnauthorized):
		return fmt.Errorf("%s %s: permission denied (check the credentials' IAM roles on the bucket): %w: %w",
			op, location, fs.ErrPermission, err)
	case errors.As(err, &ae) && ae.Code == http.StatusNotFound:
		// a 404 other than a missing object: a missing bucket on upload
		return fmt.Errorf("%s %s: not found (does the bucket exist?): %w", op, location, err)
	}
	return fmt.Errorf("%s %s: %w", op, location, err)
}

func (g *GCS) attrs(a *gcs.ObjectAttrs) Attrs {
	return Attrs{Location: "gs://" + a.Bucket + "/" + a.Name, Size: a.Size, ModTime: a.Updated,
		Generation: a.Generation, CRC32C: a.CRC32C, HasCRC32C: true}
}

// List implements Store. Objects whose names end in "/" (folder
// placeholders made by consoles) are skipped. A missing bucket is an error.
func (g *GCS) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	b, p, err := ParseGS(prefix)
	if err != nil {
		return err
	}
	q := &gcs.Query{Prefix: p}
	if err := q.SetAttrSelection([]string{"Name", "Bucket", "Size", "Updated", "Generation", "CRC32C"}); err != nil {
		return err
	}
	var found []Attrs
	it := g.client.Bucket(b).Objects(ctx, q)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return gsError("list", prefix, err)
		}
		if strings.HasSuffix(a.Name, "/") {
			continue
		}
		found = append(found, g.attrs(a))
	}
	// GCS lists in UTF-8 byte order already; sorting states the contract
	sort.Slice(found, func(i, j int) bool { return found[i].Location < found[j].Location })
	for _, a := range found {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// Stat implements Store.
func (g *GCS) Stat(ctx context.Context, location string) (Attrs, error) {
	o, err := g.object(location)
	if err != nil {
		return Attrs{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.opt.OpTimeout)
	defer cancel()
	a, err := o.Attrs(ctx)
	if err != nil {
		return Attrs{}, gsError("stat", location, err)
	}
	return g.attrs(a), nil
}

// Delete implements Store. The delete is conditional on the generation
// Stat finds, which makes it idempotent (retried) and never removes a newer
// version written meanwhile. (fake-gcs-server ignores preconditions on
// delete.) An object that vanishes between the Stat and the delete is
// deleted: no error.
func (g *GCS) Delete(ctx context.Context, location string) error {
	a, err := g.Stat(ctx, location)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	// the object was there: a 404 now is a retried delete whose first
	// answer was lost (or a concurrent delete), and the object is gone
	if err := g.DeleteIf(ctx, location, a.Generation); err != nil && !errors.Is(err, ErrNotExist) {
		return err
	}
	return nil
}

// DeleteIf implements Conditional.
func (g *GCS) DeleteIf(ctx context.Context, location string, generation int64) error {
	o, err := g.object(location)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.opt.OpTimeout)
	defer cancel()
	// a precondition, not a generation selector: on a versioned bucket the
	// live version becomes noncurrent, as with an unconditional delete
	return gsError("delete", location, o.If(gcs.Conditions{GenerationMatch: generation}).Delete(ctx))
}

// Open implements Store. ReadAt issues one ranged request per call, pinned
// to the generation Open saw; calls may run concurrently.
func (g *GCS) Open(ctx context.Context, location string) (Reader, error) {
	o, err := g.object(location)
	if err != nil {
		return nil, err
	}
	a, err := g.Stat(ctx, location)
	if err != nil {
		return nil, err
	}
	return &gcsReader{g: g, ctx: ctx, o: o.Generation(a.Generation), attrs: a}, nil
}

type gcsReader struct {
	g     *GCS
	ctx   context.Context
	o     *gcs.ObjectHandle
	attrs Attrs
}

func (r *gcsReader) Size() int64  { return r.attrs.Size }
func (r *gcsReader) Attrs() Attrs { return r.attrs }
func (r *gcsReader) Close() error { return nil }

// ReadAt implements io.ReaderAt with one range request.
func (r *gcsReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset", r.attrs.Location)
	}
	if off >= r.attrs.Size {
		return 0, io.EOF
	}
	want := int64(len(p))
	var eof error
	if off+want > r.attrs.Size {
		want, eof = r.attrs.Size-off, io.EOF
	}
	if want == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.g.opt.OpTimeout)
	defer cancel()
	rd, err := r.o.NewRangeReader(ctx, off, want)
	if err != nil {
		return 0, gsError("read", r.attrs.Location, err)
	}
	defer rd.Close()
	n, err := io.ReadFull(rd, p[:want])
	if err != nil {
		return n, gsError("read", r.attrs.Location, fmt.Errorf("bytes %d-%d: %w", off, off+want-1, err))
	}
	return n, eof
}

// Create implements Store: the commit replaces the object only if it is
// still the generation found now (or still absent).
func (g *GCS) Create(ctx context.Context, location string) (Writer, error) {
	cond := Condition{DoesNotExist: true}
	a, err := g.Stat(ctx, location)
	switch {
	case err == nil:
		cond = Condition{GenerationMatch: a.Generation}
	case !errors.Is(err, ErrNotExist):
		return nil, fmt.Errorf("create: %w", err)
	}
	return g.CreateIf(ctx, location, cond)
}

// CreateIf implements Conditional.
func (g *GCS) CreateIf(ctx context.Context, location string, cond Condition) (Writer, error) {
	o, err := g.object(location)
	if err != nil {
		return nil, err
	}
	var c gcs.Conditions
	switch {
	case cond.DoesNotExist && cond.GenerationMatch == 0:
		c.DoesNotExist = true
	case !cond.DoesNotExist && cond.GenerationMatch > 0:
		c.GenerationMatch = cond.GenerationMatch
	default:
		return nil, fmt.Errorf("create %s: a condition needs exactly one of DoesNotExist and GenerationMatch", location)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := o.If(c).NewWriter(wctx)
	w.ChunkSize = g.opt.ChunkSize
	w.ChunkRetryDeadline = g.opt.ChunkRetryDeadline
	w.ContentType = contentType(location)
	return &gcsWriter{g: g, ctx: ctx, w: w, cancel: cancel, location: location, crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}, nil
}

func contentType(location string) string {
	switch {
	case strings.HasSuffix(location, ".json"):
		return "application/json"
	case strings.HasSuffix(location, ".parquet"):
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}

type gcsWriter struct {
	g        *GCS
	ctx      context.Context
	mu       sync.Mutex
	w        *gcs.Writer
	cancel   context.CancelFunc
	location string
	crc      hashWriter
	n        int64
	done     bool
	// recovered: the commit met an object with the bytes written after a
	// 412 (a lost answer, or an identical object someone else wrote)
	recovered bool
}

type hashWriter interface {
	io.Writer
	Sum32() uint32
}

func (w *gcsWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, fmt.Errorf("write %s: writer already finished", w.location)
	}
	n, err := w.w.Write(p)
	w.crc.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, gsError("write", w.location, err)
	}
	return n, nil
}

// Commit completes the upload and checks the stored CRC32C against the
// bytes written.
//
// A retried upload whose first try succeeded but whose answer was lost
// fails its own precondition (the object now exists). Commit then reads the
// object: if it holds exactly the bytes written (size and CRC32C), the
// upload did succeed and Commit returns it.
func (w *gcsWriter) Commit() (Attrs, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return Attrs{}, fmt.Errorf("commit %s: writer already finished", w.location)
	}
	w.done = true
	defer w.cancel()
	if err := w.w.Close(); err != nil {
		err = gsError("commit", w.location, err)
		if errors.Is(err, ErrPrecondition) {
			if a, serr := w.g.Stat(w.ctx, w.location); serr == nil && a.Size == w.n && a.CRC32C == w.crc.Sum32() {
				w.recovered = true
				return a, nil
			}
		}
		return Attrs{}, err
	}
	a := w.w.Attrs()
	if a.Size != w.n || a.CRC32C != w.crc.Sum32() {
		// GCS itself rejects such uploads (the client sends the CRC32C);
		// should one get through, remove exactly the version just made
		derr := w.g.DeleteIf(context.WithoutCancel(w.ctx), w.location, a.Generation)
		return Attrs{}, errors.Join(fmt.Errorf("commit %s: stored %d bytes with CRC32C %08x, wrote %d with %08x",
			w.location, a.Size, a.CRC32C, w.n, w.crc.Sum32()), derr)
	}
	return Attrs{Location: w.location, Size: a.Size, ModTime: a.Updated, Generation: a.Generation,
		CRC32C: a.CRC32C, HasCRC32C: true}, nil
}

// Abort cancels the upload: the object never appears.
func (w *gcsWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	w.cancel()
	w.w.Close() // returns the cancellation; waits for the upload to stop
	return nil
}

// CreateExclusive implements ExclusiveCreator with a write conditional on
// DoesNotExist (ifGenerationMatch=0): of callers racing for one location,
// GCS lets exactly one upload commit; the others get ErrExist and change
// nothing.
//
// A retried upload whose first try succeeded but whose answer was lost
// meets its own object and fails its precondition: CreateExclusive then
// reads the object and, when it holds exactly data, reports the success.
// So data should be unique to the caller (an owner id, a run id): an
// object with the same bytes written by someone else is taken for ours.
func (g *GCS) CreateExclusive(ctx context.Context, location string, data []byte) (Attrs, error) {
	wr, err := g.CreateIf(ctx, location, Condition{DoesNotExist: true})
	if err != nil {
		return Attrs{}, err
	}
	w := wr.(*gcsWriter)
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return Attrs{}, err
	}
	a, err := w.Commit()
	switch {
	case errors.Is(err, ErrPrecondition):
		return Attrs{}, fmt.Errorf("create %s exclusively: %w", location, ErrExist)
	case err != nil:
		return Attrs{}, err
	case w.recovered:
		// size and CRC32C matched; compare the bytes themselves
		got, rerr := g.readAll(ctx, location)
		if rerr != nil {
			return Attrs{}, fmt.Errorf("create %s exclusively: check the object after a lost answer: %w", location, rerr)
		}
		if !bytes.Equal(got, data) {
			return Attrs{}, fmt.Errorf("create %s exclusively: %w", location, ErrExist)
		}
	}
	return a, nil
}

// readAll reads a whole (small) object.
func (g *GCS) readAll(ctx context.Context, location string) ([]byte, error) {
	return ReadFile(ctx, g, location)
}

// Move implements Mover with a server-side copy, conditional on the
// target's generation, then a delete of the source's generation. The
// object is visible at dst before it leaves src.
func (g *GCS) Move(ctx context.Context, src, dst string) error {
	so, err := g.object(src)
	if err != nil {
		return err
	}
	do, err := g.object(dst)
	if err != nil {
		return err
	}
	c := Condition{DoesNotExist: true}
	switch da, err := g.Stat(ctx, dst); {
	case err == nil:
		c = Condition{GenerationMatch: da.Generation}
	case !errors.Is(err, ErrNotExist):
		return fmt.Errorf("move: %w", err)
	}
	return g.moveIf(ctx, so, do, src, dst, c)
}

// MoveIf implements ConditionalMover: Move, with the copy conditional on
// cond instead of on the target's generation found now. A failed
// condition gives ErrPrecondition and leaves both objects as they were.
func (g *GCS) MoveIf(ctx context.Context, src, dst string, cond Condition) error {
	so, err := g.object(src)
	if err != nil {
		return err
	}
	do, err := g.object(dst)
	if err != nil {
		return err
	}
	return g.moveIf(ctx, so, do, src, dst, cond)
}

func (g *GCS) moveIf(ctx context.Context, so, do *gcs.ObjectHandle, src, dst string, cond Condition) error {
	var c gcs.Conditions
	switch {
	case cond.DoesNotExist && cond.GenerationMatch == 0:
		c.DoesNotExist = true
	case !cond.DoesNotExist && cond.GenerationMatch > 0:
		c.GenerationMatch = cond.GenerationMatch
	default:
		return fmt.Errorf("move %s to %s: a condition needs exactly one of DoesNotExist and GenerationMatch", src, dst)
	}
	sa, err := g.Stat(ctx, src)
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, g.opt.OpTimeout)
	defer cancel()
	if _, err := do.If(c).CopierFrom(so.Generation(sa.Generation)).Run(cctx); err != nil {
		err = gsError("copy "+src+" to", dst, err)
		// a retried copy whose first answer was lost meets its own result
		if !errors.Is(err, ErrPrecondition) || !g.holds(ctx, dst, sa) {
			return err
		}
	}
	// a retried delete whose first answer was lost finds nothing: moved
	if err := g.DeleteIf(ctx, src, sa.Generation); err != nil && !errors.Is(err, ErrNotExist) {
		return err
	}
	return nil
}

// holds reports whether the object at location has the content of a.
func (g *GCS) holds(ctx context.Context, location string, a Attrs) bool {
	b, err := g.Stat(ctx, location)
	return err == nil && b.Size == a.Size && b.CRC32C == a.CRC32C
}
