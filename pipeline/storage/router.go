package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Router is the Store the pipeline uses: it sends each location to the
// store for its scheme, gs:// to Google Cloud Storage and plain paths to
// the local disk, so a policy may mix them (sources on GCS, outputs on
// disk, or the reverse). The GCS client is made on the first gs://
// location, so local runs need no credentials. A Router is safe for
// concurrent use; its zero value is ready.
type Router struct {
	// Local serves plain paths; nil means Local{}.
	Local Store
	// NewGCS makes the gs:// store on first use; nil means NewGCS with the
	// default options (Application Default Credentials, or
	// STORAGE_EMULATOR_HOST).
	NewGCS func(ctx context.Context) (Store, error)

	mu   sync.Mutex
	made bool
	gcs  Store
	err  error
}

// NewRouter returns a Router with the default stores.
func NewRouter() *Router { return &Router{} }

// ErrUnsupportedScheme is matched by errors about a location whose scheme
// no store serves.
var ErrUnsupportedScheme = errors.New("unsupported location scheme (deid reads and writes local paths and gs://bucket/path)")

// storeFor returns the store of a location.
func (r *Router) storeFor(ctx context.Context, location string) (Store, error) {
	if !IsURI(location) {
		if r.Local == nil {
			return Local{}, nil
		}
		return r.Local, nil
	}
	if !strings.HasPrefix(location, "gs://") {
		scheme, _, _ := strings.Cut(location, "://")
		return nil, fmt.Errorf("%s: %q: %w", location, scheme, ErrUnsupportedScheme)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.made {
		r.made = true
		if r.NewGCS != nil {
			r.gcs, r.err = r.NewGCS(ctx)
		} else if g, err := NewGCS(ctx, GCSOptions{}); err != nil {
			r.err = err
		} else {
			r.gcs = g
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %w", location, r.err)
	}
	return r.gcs, nil
}

// gcsStore returns the GCS store if it was made.
func (r *Router) gcsStore() Store {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gcs
}

// List implements Store.
func (r *Router) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	s, err := r.storeFor(ctx, prefix)
	if err != nil {
		return err
	}
	return s.List(ctx, prefix, fn)
}

// Open implements Store.
func (r *Router) Open(ctx context.Context, location string) (Reader, error) {
	s, err := r.storeFor(ctx, location)
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, location)
}

// Create implements Store.
func (r *Router) Create(ctx context.Context, location string) (Writer, error) {
	s, err := r.storeFor(ctx, location)
	if err != nil {
		return nil, err
	}
	return s.Create(ctx, location)
}

// Stat implements Store.
func (r *Router) Stat(ctx context.Context, location string) (Attrs, error) {
	s, err := r.storeFor(ctx, location)
	if err != nil {
		return Attrs{}, err
	}
	return s.Stat(ctx, location)
}

// Delete implements Store.
func (r *Router) Delete(ctx context.Context, location string) error {
	s, err := r.storeFor(ctx, location)
	if err != nil {
		return err
	}
	return s.Delete(ctx, location)
}

// RemoveAll implements Remover with the store of dir's own Remover when it
// has one (local disk: temporary files of killed writers and the emptied
// folders go too), otherwise by listing and deleting.
func (r *Router) RemoveAll(ctx context.Context, dir string) error {
	s, err := r.storeFor(ctx, dir)
	if err != nil {
		return err
	}
	return RemoveAll(ctx, s, dir)
}

// Move implements Mover: within one store with its own Move, across stores
// by copying and deleting.
func (r *Router) Move(ctx context.Context, src, dst string) error {
	from, err := r.storeFor(ctx, src)
	if err != nil {
		return err
	}
	to, err := r.storeFor(ctx, dst)
	if err != nil {
		return err
	}
	if from == to {
		return Move(ctx, from, src, dst)
	}
	return copyThenDelete(ctx, from, src, to, dst)
}

// MoveIf implements ConditionalMover within one store that does; others,
// and moves across stores, give an error matching ErrUnsupported.
func (r *Router) MoveIf(ctx context.Context, src, dst string, cond Condition) error {
	from, err := r.storeFor(ctx, src)
	if err != nil {
		return err
	}
	to, err := r.storeFor(ctx, dst)
	if err != nil {
		return err
	}
	if from != to {
		return fmt.Errorf("move %s to %s with a precondition: across stores: %w", src, dst, ErrUnsupported)
	}
	return MoveIf(ctx, from, src, dst, cond)
}

// CreateIf implements Conditional for stores that do; others give an
// error matching errors.ErrUnsupported.
func (r *Router) CreateIf(ctx context.Context, location string, cond Condition) (Writer, error) {
	s, err := r.storeFor(ctx, location)
	if err != nil {
		return nil, err
	}
	c, ok := s.(Conditional)
	if !ok {
		return nil, fmt.Errorf("conditional write of %s: %w", location, errors.ErrUnsupported)
	}
	return c.CreateIf(ctx, location, cond)
}

// DeleteIf implements Conditional for stores that do; others give an
// error matching errors.ErrUnsupported.
func (r *Router) DeleteIf(ctx context.Context, location string, generation int64) error {
	s, err := r.storeFor(ctx, location)
	if err != nil {
		return err
	}
	c, ok := s.(Conditional)
	if !ok {
		return fmt.Errorf("conditional delete of %s: %w", location, errors.ErrUnsupported)
	}
	return c.DeleteIf(ctx, location, generation)
}

// CreateExclusive implements ExclusiveCreator for stores that do; others
// give an error matching ErrUnsupported.
func (r *Router) CreateExclusive(ctx context.Context, location string, data []byte) (Attrs, error) {
	s, err := r.storeFor(ctx, location)
	if err != nil {
		return Attrs{}, err
	}
	return CreateExclusive(ctx, s, location, data)
}

// Retries implements RetryCounter: the retries of the stores made so far.
func (r *Router) Retries() int64 {
	if c, ok := r.gcsStore().(RetryCounter); ok {
		return c.Retries()
	}
	return 0
}

// Protection returns what the bucket of a gs:// location does with deleted
// objects (versioning, soft delete); local paths have none.
func (r *Router) Protection(ctx context.Context, location string) (BucketProtection, error) {
	return DeleteProtection(ctx, r, location)
}

// DeleteProtection returns what deleting at location leaves behind in s:
// noncurrent versions or soft-deleted objects on a GCS bucket with
// versioning or soft delete. Retention calls it before deleting, and
// reports BucketProtection.Warning when it is not empty. Stores without
// such features return the zero value.
func DeleteProtection(ctx context.Context, s Store, location string) (BucketProtection, error) {
	if r, ok := s.(*Router); ok {
		if !strings.HasPrefix(location, "gs://") {
			return BucketProtection{}, nil
		}
		st, err := r.storeFor(ctx, location)
		if err != nil {
			return BucketProtection{}, err
		}
		s = st
	}
	if g, ok := s.(*GCS); ok {
		return g.Protection(ctx, location)
	}
	return BucketProtection{}, nil
}

// Close releases the GCS client, if one was made.
func (r *Router) Close() error {
	if c, ok := r.gcsStore().(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
