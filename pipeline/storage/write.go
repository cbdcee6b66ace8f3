package storage

import (
	"context"
	"fmt"
	"io"
)

// WriteFile writes b as the whole object at location, atomically: nothing
// is visible there unless every byte was written and committed.
func WriteFile(ctx context.Context, s Store, location string, b []byte) error {
	w, err := s.Create(ctx, location)
	if err != nil {
		return fmt.Errorf("write %s: %w", location, err)
	}
	defer w.Abort()
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", location, err)
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("write %s: %w", location, err)
	}
	return nil
}

// ReadFile reads the whole (small) file at location: a manifest, a report,
// a shard's list. Its errors name the location and wrap the store's
// (errors.Is(err, ErrNotExist) holds for a missing file, and also for one
// removed between the open and the read: a caller for whom the two differ
// opens the file itself).
func ReadFile(ctx context.Context, s Store, location string) ([]byte, error) {
	r, err := s.Open(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", location, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", location, err)
	}
	return b, nil
}
