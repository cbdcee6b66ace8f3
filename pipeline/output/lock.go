package output

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/storage"
)

// publishLockTTL is the lease of a publish lock; its holder renews it every
// third of it, so only a holder that died keeps others waiting this long.
const publishLockTTL = time.Minute

// DefaultPublishWait is how long a commit waits for an output's publish
// lock when the caller gives no wait.
const DefaultPublishWait = 10 * time.Minute

// HoldOutput takes the publish lock of output (lock.PublishPath), waiting
// at most wait (0: DefaultPublishWait) while another run, merge or
// retention sweep holds it, and renews its lease until the returned release
// is called. Every commit of files, report and manifest to an output
// happens under it, so that two writers (a manual run and a scheduled one,
// the shards of a run, a run and deid retain) never interleave their
// read-merge-write of the manifest or fork the report chain.
func HoldOutput(ctx context.Context, st storage.Store, output string, wait time.Duration, log *slog.Logger) (release func(), err error) {
	if wait <= 0 {
		wait = DefaultPublishWait
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l, err := lock.At(st, lock.PublishPath(output), "publish", lock.NewOwner(), publishLockTTL, nil)
	if err != nil {
		return nil, err
	}
	err = lock.AcquireWait(ctx, l, wait, 250*time.Millisecond, func(err error) {
		log.Info("waiting for the output's publish lock", "output", output, "reason", err)
	})
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", output, err)
	}
	stop := lock.Renewing(ctx, l, publishLockTTL, func(err error) {
		log.Error("publish lock lease could not be renewed", "output", output, "error", err)
	})
	return func() {
		stop()
		if err := l.Release(context.WithoutCancel(ctx)); err != nil {
			log.Warn("publish lock could not be released: it expires with its lease", "output", output, "error", err)
		}
	}, nil
}

// RemoveTree deletes every object under prefix (and, on local disk, the
// temporary files of killed writers and the emptied folders, then the
// parent staging folder when no other run uses it).
func RemoveTree(ctx context.Context, s storage.Store, prefix string) error {
	if err := storage.RemoveAll(ctx, s, strings.TrimSuffix(prefix, "/")); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, storage.ErrNotExist) {
		return err
	}
	if !storage.IsURI(prefix) {
		storage.Local{}.Delete(ctx, storage.Dir(strings.TrimSuffix(prefix, "/"))) // fails, harmlessly, when not empty
	}
	return nil
}
