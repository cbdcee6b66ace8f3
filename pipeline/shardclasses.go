package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
)

// min_k in a sharded run: a class can span the files of several shards, so
// each shard counts the classes of its own files (pass 1), writes its
// counts beside the frozen input list, waits until every shard of the run
// has written its counts (a barrier), adds them up and only then drops the
// rows of classes below min_k (pass 2). Addition commutes, so every shard
// sees the counts a single run would and the merged outputs equal a single
// run's. The shards must therefore run at the same time: a shard that
// never writes its counts makes the others fail once Options.ShardWait
// expires, before anything is published.

// DefaultShardWait is how long a shard of a run enforcing min_k waits for
// the other shards' class counts when Options.ShardWait is zero.
const DefaultShardWait = 30 * time.Minute

// classesLocation is where shard index of count writes its class counts:
// in the first destination's output, beside the frozen input list.
func classesLocation(s *Shard, firstOutput string, index int) string {
	return storage.Join(firstOutput, output.ShardsDir, s.Inputs.RunID, fmt.Sprintf("classes-%d-of-%d.bin", index, s.Count))
}

// exchangeClasses is the barrier of a sharded run enforcing min_k, between
// its two passes: it writes this shard's class counts, waits until every
// other shard has written its own, and finishes its counts with theirs
// (mergeClasses).
func (r *runner) exchangeClasses(ctx context.Context) error {
	s := r.opt.Shard
	first := r.plan.Destinations[0].Output
	log := r.opt.Logger
	var groups []classes.Group
	for _, c := range r.classes {
		groups = append(groups, classes.Group{Dst: c.Dst, Dataset: c.Dataset, Tally: c.Tally})
	}
	own := classesLocation(s, first, s.Index)
	w, err := r.opt.Store.Create(ctx, own)
	if err != nil {
		return fmt.Errorf("write %s: %w", own, err)
	}
	defer w.Abort()
	if err := classes.Encode(w, groups); err != nil {
		return fmt.Errorf("write %s: %w", own, err)
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("write %s: %w", own, err)
	}
	log.Info("class counts written, waiting for the other shards", "location", own, "shards", s.Count)

	wait := r.opt.ShardWait
	if wait <= 0 {
		wait = DefaultShardWait
	}
	// the barrier's deadline is real time, not Options.Clock (fixed in tests)
	deadline := time.Now().Add(wait)
	pending := map[int]bool{}
	var others []classes.ShardFile
	for i := 0; i < s.Count; i++ {
		if i != s.Index {
			pending[i] = true
			others = append(others, classes.ShardFile{Index: i, Count: s.Count, Loc: classesLocation(s, first, i)})
		}
	}
	delay, logged := 50*time.Millisecond, time.Now()
	for len(pending) > 0 {
		for _, i := range slices.Sorted(maps.Keys(pending)) {
			loc := classesLocation(s, first, i)
			if _, err := r.opt.Store.Stat(ctx, loc); err != nil {
				if errors.Is(err, storage.ErrNotExist) {
					continue
				}
				return fmt.Errorf("shard %d of %d: %s: %w", i, s.Count, loc, err)
			}
			delete(pending, i)
		}
		if len(pending) == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			var missing []string
			for _, i := range slices.Sorted(maps.Keys(pending)) {
				missing = append(missing, fmt.Sprint(i))
			}
			return fmt.Errorf("min_k in a sharded run: after waiting %s, shard(s) %s of %d have not written their class counts in %s: "+
				"the shards of a run enforcing min_k must run at the same time (Indexed Job parallelism = completions, Cloud Run parallelism = task count); "+
				"nothing was published: rerun every shard at once: %w",
				wait, strings.Join(missing, ", "), s.Count, storage.Dir(own), ErrShardWait)
		}
		if time.Since(logged) >= time.Minute {
			logged = time.Now()
			log.Info("still waiting for the other shards' class counts", "missing", slices.Sorted(maps.Keys(pending)), "shards", s.Count, "deadline", deadline.UTC())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the other shards' class counts: %w", ctx.Err())
		case <-time.After(min(delay, max(time.Until(deadline), time.Millisecond))):
		}
		delay = min(delay*2, 5*time.Second)
	}
	if err := r.mergeClasses(ctx, others); err != nil {
		return err
	}
	log.Info("class counts of every shard merged", "shards", s.Count)
	return nil
}

// mergeClasses finishes this shard's counts (classes.Counts.finish) with the
// other shards' counts files: each file is read once, in step with this
// shard's tally, both in key order, and a class this shard holds gets the
// rows the others counted for it; classes only the others hold are skipped
// (the rows this shard may drop are its own). So memory stays bounded by
// the small classes this shard holds. A damaged file fails the run, so
// nothing finish built before the damage was found is used.
func (r *runner) mergeClasses(ctx context.Context, files []classes.ShardFile) error {
	var curs []*classes.Cursor
	defer func() {
		for _, c := range curs {
			c.Close()
		}
	}()
	for _, f := range files {
		c, err := classes.OpenCursor(ctx, r.opt.Store, f)
		if err != nil {
			return err
		}
		curs = append(curs, c)
	}
	for _, g := range slices.Sorted(maps.Keys(r.classes)) {
		err := r.classes[g].Finish(func(k classes.Key) (uint32, error) {
			var n uint32
			for _, c := range curs {
				m, err := c.CountOf(g, k)
				if err != nil {
					return 0, err
				}
				n = classes.SatAdd(n, m)
			}
			return n, nil
		})
		if err != nil {
			return err
		}
	}
	// read every file to its end: its checksum is checked there
	for _, c := range curs {
		if err := c.Drain(); err != nil {
			return err
		}
	}
	return nil
}

// ErrShardWait is matched (errors.Is) by the error of a shard of a run
// enforcing min_k whose wait for the other shards' class counts expired.
var ErrShardWait = errors.New("the other shards' class counts did not arrive")
