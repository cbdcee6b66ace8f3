package storage

import (
	"context"
	"fmt"
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
