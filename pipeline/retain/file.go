package retain

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// rgKind is what happens to a row group.
type rgKind uint8

const (
	rgCopy    rgKind = iota // kept byte for byte
	rgDrop                  // removed whole
	rgRewrite               // decoded, some rows go (and, anonymizing, are moved)
)

// ruleCols locates the rule columns in a file: leaf index and Arrow type,
// -1 when not read.
type ruleCols struct {
	time, fallback, subject             int
	timeType, fallbackType, subjectType arrow.DataType
}

// anonFolder is the dataset's anonymized part, isoFolder its isolated
// part, under its root.
const (
	anonFolder = "_anonymized"
	isoFolder  = "_restricted"
)

// sourceLink refuses a source file that is a symbolic link, as a data error
// naming the link and its target, and one with other hard links, naming
// their count (storage.LinkAt).
func sourceLink(dataset, location string) error {
	return fileLink(fmt.Sprintf("dataset %q", dataset), "source files", "point the dataset's source at the real files", location)
}

// outputLink refuses, as sourceLink does, a published file retain is about
// to rewrite.
func outputLink(dst, location string) error {
	return fileLink(fmt.Sprintf("destination %q", dst), "published files", "make the published file a real one", location)
}

// fileLink is sourceLink and outputLink: owner names the dataset or
// destination, files what retain changes there, fix how to mend a symbolic
// link.
func fileLink(owner, files, fix, location string) error {
	err := storage.LinkAt("rewrite", location)
	switch {
	case errors.Is(err, storage.ErrHardLink):
		return &dataerr.Error{Err: fmt.Errorf("%s: %w; deid retain changes %s in place, "+
			"and a rewritten file is a new file: the other names would keep the erased rows", owner, err, files)}
	case errors.Is(err, storage.ErrLink):
		return &dataerr.Error{Err: fmt.Errorf("%s: %w; deid retain changes %s in place, "+
			"and rewriting a link would leave the erased rows in its target: %s", owner, err, files, fix)}
	case err != nil:
		return fmt.Errorf("%s: %w", owner, err)
	}
	return nil
}

// open opens the job's file and locates its rule columns: the first stage
// of its work.
//
// A source file that is a symbolic link is refused: rewriting or deleting
// it would replace or remove the link and leave the rows in its target.
// So is one with other hard links: the rewrite is a new file under this
// name only, and the others keep the old rows.
func (j *job) open(ctx context.Context) error {
	d := j.d
	if err := sourceLink(d.ds.Name, j.m.Location); err != nil {
		return err
	}
	f, attrs, err := pqstore.Open(ctx, d.opt.Store, j.m.Location, d.opt.Mem)
	if err != nil {
		return &dataerr.Error{Err: err}
	}
	j.f = f
	j.m.Generation = attrs.Generation // the version read, which the rewrite must replace
	if j.cols, err = d.locate(f, j.rule); err != nil {
		return err
	}
	j.fr.RowGroups, j.fr.RowsIn = f.NumRowGroups(), f.NumRows()
	j.rgs = make([]rgDecision, f.NumRowGroups())
	return nil
}

// settle adds the file's decided row groups to the report and decides
// what becomes of the file: untouched, deleted, or rewritten (its new
// version to stage, stage true). Deleting a file whose every row goes
// needs no staging: j.action is set.
func (j *job) settle() (stage bool, err error) {
	d, fr, iso := j.d, j.fr, j.rule.Isolated
	var counts transforms.RetainCounts
	var rc report.RowGroupCounts
	var local transforms.LocalCounts
	for _, dec := range j.rgs {
		counts.Add(dec.counts)
		rc.Add(dec.rowGroups)
		local.Nonexistent += dec.local.Nonexistent
		local.Ambiguous += dec.local.Ambiguous
	}
	removed := counts.Removed()
	if !iso {
		// every restricted row of a source file moves to the isolated part
		fr.Isolated = counts.Restricted
	}
	fr.RowsKept = fr.RowsIn - removed - fr.Isolated
	anonymize := d.ds.Anonymizes()
	if anonymize {
		fr.Anonymized = removed
	}
	d.mu.Lock()
	d.addCounts(fr, counts, rc, local, iso)
	files := &d.rep.Files
	if iso {
		files = &d.rep.Isolation.Files
	}
	prefix := ""
	if d.opt.DryRun {
		prefix = "would be "
	}
	switch {
	case removed+fr.Isolated == 0:
		fr.Action = "untouched"
		files.Untouched++
	case fr.RowsKept == 0 && !anonymize && fr.Isolated == 0:
		fr.Action = prefix + "deleted"
		files.Deleted++
	case fr.RowsKept == 0:
		fr.Action = prefix + "deleted"
		files.Deleted++
		stage = true
	default:
		fr.Action = prefix + "rewritten"
		files.Rewritten++
		stage = true
	}
	d.mu.Unlock()
	switch {
	case removed+fr.Isolated == 0:
		return false, nil
	case !stage && d.opt.DryRun:
		if p := d.opt.predict; p != nil && !iso {
			p.note(j.m.Location, "")
		}
		return false, nil
	case !stage:
		j.action = &action{File: j.m.Location, Delete: true, Generation: j.m.Generation}
		return false, nil
	}
	rel, err := storage.Rel(d.root, j.m.Location)
	if err != nil {
		return false, fmt.Errorf("%s: %w", storage.QuoteLocation(j.m.Location), err)
	}
	// the source file's path without .parquet names its folders in the
	// isolated and anonymized parts
	stem, name := strings.TrimSuffix(rel, ".parquet"), d.opt.RunID+".parquet"
	if iso {
		// <isoFolder>/<stem>/<isolating run>.parquet: released rows are
		// named after both runs, apart from the source file's own
		stem = strings.TrimPrefix(path.Dir(rel), isoFolder+"/")
		name = d.opt.RunID + "-released-" + path.Base(rel)
	}
	if anonymize && removed > 0 {
		fr.AnonymizedTo = storage.Join(d.root, anonFolder, stem, name)
	}
	if fr.Isolated > 0 {
		fr.IsolatedTo = storage.Join(d.root, isoFolder, stem, name)
	}
	// a dry run stages only to predict the outputs, in the scratch folder
	return !d.opt.DryRun || (d.opt.predict != nil && !iso), nil
}

// addCounts adds a file's counts to the dataset's report; the caller holds
// d.mu.
func (d *dataset) addCounts(fr *report.RetainFile, counts transforms.RetainCounts, rc report.RowGroupCounts, local transforms.LocalCounts, iso bool) {
	files := &d.rep.Files
	if iso {
		files = &d.rep.Isolation.Files
	} else {
		d.rep.RowsIn += fr.RowsIn
	}
	files.Scanned++
	d.rep.RowGroups.Add(rc)
	d.rep.NonexistentLocalTime += local.Nonexistent
	d.rep.AmbiguousLocalTime += local.Ambiguous
	removed := counts.Removed()
	for k, v := range map[string]int64{report.RemovedRetention: counts.Expired, report.RemovedNullTime: counts.ExpiredNull,
		report.RemovedFutureTime: counts.ExpiredFuture, report.RemovedErasure: counts.Erased, report.RemovedServiceEnded: counts.Ended} {
		if v == 0 && k == report.RemovedServiceEnded && d.rep.Ended == nil {
			continue // a key of ended datasets only
		}
		if v > 0 {
			fr.Removed[k] = v
		}
		d.rep.Removed[k] += v
	}
	d.rep.Held[report.HeldLegalHold] += counts.Held
	d.rep.Held[report.HeldLegalMinimum] += counts.Restricted
	if iso {
		d.rep.Isolation.Released += removed
		d.rep.Isolation.Remaining += fr.RowsKept
	} else {
		d.rep.NullTimeKept += counts.NullKept
		d.rep.FutureTimeKept += counts.FutureKept
		d.rep.RowsKept += fr.RowsKept
		d.rep.Isolation.Isolated += fr.Isolated
	}
	if d.ds.Anonymizes() {
		d.rep.Anonymized += removed
	}
}

// locate finds the rule columns and checks their types.
func (d *dataset) locate(f *parquetio.File, rule transforms.RetainRule) (ruleCols, error) {
	c := ruleCols{time: -1, fallback: -1, subject: -1}
	sch := f.Schema()
	if err := dataerr.CheckColumnNames(f.Location(), sch); err != nil {
		return c, err
	}
	find := func(name, what string, leaf *int, typ *arrow.DataType) error {
		idx := sch.FieldIndices(name)
		if idx == nil {
			return &dataerr.Error{Location: f.Location(), Column: name, Err: fmt.Errorf("the %s column is missing", what)}
		}
		*leaf, *typ = f.LeafIndex(name), sch.Field(idx[0]).Type
		if what != "subject" {
			tt, ok := (*typ).(*arrow.TimestampType)
			if !ok {
				return &dataerr.Error{Location: f.Location(), Column: name, Err: fmt.Errorf("the %s column is %s, not a timestamp", what, *typ)}
			}
			if tt.TimeZone == "" && d.ds.TimeZone == nil {
				return &dataerr.Error{Location: f.Location(), Column: name, Err: fmt.Errorf("timestamp without the UTC flag: declare the dataset's time_zone (%s) so deid knows which clock the values use", d.ds.Pos)}
			}
		}
		return nil
	}
	if r := d.ds.Retention; r != nil {
		if err := find(r.TimeColumn, "retention time", &c.time, &c.timeType); err != nil {
			return c, err
		}
		if fb := r.OnNullFallback; fb != nil {
			if err := find(fb.TimeColumn, "fallback time", &c.fallback, &c.fallbackType); err != nil {
				return c, err
			}
		}
	}
	if rule.NeedsSubjects() { // the job's rule: a file of the isolated part always needs them
		if err := find(d.ds.Subject, "subject", &c.subject, &c.subjectType); err != nil {
			return c, err
		}
	}
	for i := 0; i < sch.NumFields(); i++ {
		if _, nested := sch.Field(i).Type.(arrow.NestedType); nested {
			return c, &dataerr.Error{Location: f.Location(), Column: sch.Field(i).Name, Err: errors.New("nested columns are not supported")}
		}
	}
	return c, nil
}

// decide settles row group rg: from statistics alone where they suffice,
// else from its rule columns. Its fates are set for a rewritten row group.
// Row groups are decided concurrently: each counts in its own rgDecision.
func (j *job) decide(ctx context.Context, rg int) (rgDecision, error) {
	d, f, c := j.d, j.f, j.cols
	var dec rgDecision
	rows := f.RowGroupRows(rg)
	rc, counts := &dec.rowGroups, &dec.counts
	rc.Scanned++
	anonymize := d.ds.Anonymizes()
	span := transforms.SpanInside
	var ts transforms.TimeStats
	if c.time >= 0 {
		ts = timeStats(f, c, rg)
		span = j.rule.Classify(ts)
	}
	if span == transforms.SpanExpired && !anonymize {
		if may, bloom := d.subjectsMayMatch(f, c, rg, j.rule.Hold); !may {
			nulls := max(ts.Nulls, 0)
			counts.Expired += rows - nulls
			counts.ExpiredNull += nulls
			rc.Dropped++
			if bloom {
				rc.BloomSkipped++
			}
			return dec.set(rgDrop, nil)
		}
	}
	if span == transforms.SpanInside {
		if may, bloom := j.mayErase(rg, ts); !may {
			switch {
			case j.rule.Isolated:
				counts.Restricted += rows // every row is still inside the legal minimum
			case c.time >= 0:
				counts.NullKept += max(ts.Nulls, 0)
			}
			rc.Copied++
			if bloom {
				rc.BloomSkipped++
			}
			return dec.set(rgCopy, nil)
		}
	}
	// decode the rule columns only: the time column is not needed inside
	// retention unless a legal minimum restricts erasure
	var leaves []int
	pos := map[string]int{}
	add := func(name string, leaf int) {
		if leaf >= 0 {
			pos[name] = len(leaves)
			leaves = append(leaves, leaf)
		}
	}
	needTime := c.time >= 0 && (span != transforms.SpanInside || j.rule.LegalMinimum)
	if needTime {
		add("time", c.time)
		add("fallback", c.fallback)
	} else if c.time >= 0 && !j.rule.Ended { // an ended dataset keeps no NULL time
		counts.NullKept += max(ts.Nulls, 0)
	}
	if j.rule.NeedsSubjects() {
		add("subject", c.subject)
	}
	fates := make([]transforms.Fate, rows)
	off := 0
	err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: leaves, BatchSize: d.opt.BatchSize}, func(b arrow.RecordBatch) error {
		n := int(b.NumRows())
		col := func(name string) (arrow.Array, error) {
			i, ok := pos[name]
			if !ok {
				return nil, nil
			}
			a := b.Column(i)
			if tt, ok := a.DataType().(*arrow.TimestampType); ok && tt.TimeZone == "" {
				return transforms.LocalToInstantCounted(d.opt.Mem, a, d.ds.TimeZone, &dec.local)
			}
			a.Retain()
			return a, nil
		}
		var arrs [3]arrow.Array
		defer func() {
			for _, a := range arrs {
				if a != nil {
					a.Release()
				}
			}
		}()
		for i, name := range []string{"time", "fallback", "subject"} {
			a, err := col(name)
			if err != nil {
				return err
			}
			arrs[i] = a
		}
		if err := j.rule.Decide(arrs[0], arrs[1], arrs[2], fates[off:off+n], counts); err != nil {
			return &dataerr.Error{Location: f.Location(), Err: fmt.Errorf("row group %d: %w", rg, err)}
		}
		if arrs[2] != nil {
			d.noteErased(arrs[2], fates[off:off+n])
		}
		off += n
		return nil
	})
	if err != nil {
		return dec, err
	}
	kept, isolated := 0, 0
	for _, fate := range fates {
		switch fate {
		case transforms.FateKeep:
			kept++
		case transforms.FateRestricted:
			isolated++
		}
	}
	switch {
	case kept == len(fates):
		rc.RuleColumnsOnly++
		return dec.set(rgCopy, nil)
	case kept == 0 && !anonymize && isolated == 0:
		rc.RuleColumnsOnly++
		return dec.set(rgDrop, nil)
	}
	rc.Rewritten++
	return dec.set(rgRewrite, fates)
}

// noteErased records the subjects of erased rows, for the report. Of an
// ended dataset, whose every row goes, only the subjects on its erasure
// lists are recorded: the others were not erased on request.
func (d *dataset) noteErased(subjects arrow.Array, fates []transforms.Fate) {
	d.mu.Lock()
	defer d.mu.Unlock()
	listed := func(v any) bool {
		if !d.rule.Ended {
			return true
		}
		e := d.rule.Erasure
		switch v := v.(type) {
		case string:
			return e != nil && e.ContainsString(v)
		case int64:
			return e != nil && e.ContainsInt(v)
		}
		return false
	}
	for i, fate := range fates {
		if fate != transforms.FateErased || subjects.IsNull(i) {
			continue
		}
		var v any
		switch s := subjects.(type) {
		case *array.String:
			v = s.Value(i)
		case *array.LargeString:
			v = s.Value(i)
		default:
			n, ok := transforms.IntValue(subjects, i)
			if !ok {
				continue
			}
			v = n
		}
		if listed(v) {
			d.erased[v] = true
		}
	}
}
