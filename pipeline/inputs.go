package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// inputFile is one source file with everything needed to process it,
// decided from its footer before any data is read.
type inputFile struct {
	ds       *rules.Dataset
	match    storage.Match
	rows     int64
	rgRows   []int64
	schema   *arrow.Schema // the file's schema, strings dense
	readCols []int         // field indices read, in file order
	leaves   []int         // the Parquet leaf column index of each read field
	// batch positions of the row-filter columns, or -1
	timePos, subjectPos int
	// naive marks batch positions of timestamps without time zone, read as
	// local times of the dataset's zone
	naive map[int]bool
	// pos maps each read column's name to its batch position
	pos     map[string]int
	outputs []*fileOutput
	report  *report.InputFile
	// sha256 is the file's SHA-256 in hex, once a run hashed it (hashes)
	sha256 string
}

// fileOutput is what one destination receives from one input file.
type fileOutput struct {
	dst     *rules.Destination
	rep     *report.Destination
	cols    []outColumn
	rel     string // <dataset>/<input's path relative to the glob's prefix>
	columns []report.Column
	schema  *arrow.Schema // dense output schema, for outputs without rows
	// rules are the destination's own row rules (consent, children), or nil
	rules *outputRules
	// classes, when the destination sets min_k for the dataset, count its
	// equivalence classes; qi indexes the quasi-identifiers in cols
	classes *classes.Counts
	qi      []int
}

// outColumn is one output column: which batch column feeds which transform.
type outColumn struct {
	name string
	pos  int // position in the read batch
	bc   *rules.BoundColumn
}

// listInputs globs every dataset's source and reads each file's footer to
// check its schema against the policy, before any data is read or written.
func (r *runner) listInputs(ctx context.Context) error {
	for _, ds := range r.plan.Datasets {
		dsr := r.datasetReport(ds)
		matches, err := globDataset(ctx, r.opt.Store, ds)
		if err != nil {
			return err
		}
		if r.opt.Inputs == nil {
			// a re-derivation (opt.Inputs) takes the files it is given;
			// otherwise a source matching nothing is not a run with nothing
			// to do but, unless the policy says so, a mistake
			if err := checkNotEmpty(ds, matches); err != nil {
				return err
			}
			if w, _ := CheckNotEmpty(ds.DatasetDecl, len(matches)); w != "" && r.opt.Shard == nil {
				r.rep.Warn(w)
			}
		}
		if r.opt.Shard != nil {
			if matches, err = r.opt.Shard.select_(ds, matches); err != nil {
				return err
			}
		}
		if r.opt.Inputs != nil {
			matches = slices.DeleteFunc(matches, func(m storage.Match) bool { return !r.opt.Inputs(m.Location) })
		}
		var first *inputFile
		for _, m := range matches {
			in, err := r.inspect(ctx, ds, m, first)
			if err != nil {
				return err
			}
			if first == nil {
				first = in
			}
			r.inputs = append(r.inputs, in)
			dsr.Files = append(dsr.Files, in.report)
		}
		if first != nil && !r.skipErasure {
			if err := r.loadErasure(ctx, ds, first, dsr); err != nil {
				return err
			}
			if err := r.loadConsent(ctx, ds, first, dsr); err != nil {
				return err
			}
			if first.subjectPos >= 0 {
				kind, _ := transforms.KindOf(first.schema.Field(first.readCols[first.subjectPos]).Type)
				if err := r.loadBirths(ctx, ds, kind); err != nil {
					return err
				}
			}
			for _, in := range r.inputs {
				if in.ds == ds {
					if err := r.bindOutputRules(in, in.pos); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// ErrNoInput is matched (errors.Is) by the data error of a dataset whose
// source matches no file while the dataset does not say allow_empty: true.
var ErrNoInput = errors.New("no input file")

// checkNotEmpty refuses a dataset whose source matched no file, unless it
// allows that: a scheduled run that finds nothing to read is more often a
// wrong path, a renamed folder or an empty mount than a quiet day.
func checkNotEmpty(ds *rules.Dataset, matches []storage.Match) error {
	_, err := CheckNotEmpty(ds.DatasetDecl, len(matches))
	return err
}

// SourceError classifies the error of listing the source of dataset name
// (storage.Glob): a missing source file, a folder named without a glob and
// a symbolic link to nothing in the source folder are data errors (the
// lake or the policy's source must change: exit 3); anything else is an
// I/O failure, wrapped.
func SourceError(name, source string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotExist) && !errors.Is(err, storage.ErrDanglingLink):
		return dataerr.Errorf(source, "", "dataset %q: source file does not exist", name)
	case errors.Is(err, storage.ErrFolder):
		return &DataError{Err: fmt.Errorf("dataset %q: source %w", name, err)}
	case errors.Is(err, storage.ErrDanglingLink):
		return &DataError{Err: fmt.Errorf("dataset %q: %w", name, err)}
	}
	return fmt.Errorf("dataset %q: list %q: %w", name, source, err)
}

// CheckNotEmpty refuses, as a data error matching ErrNoInput, a dataset
// whose source matched no file (n is the number of files it matched),
// unless the dataset says allow_empty: true; it returns the warning to
// record then. A run, a plan and a retain run apply the same rule.
func CheckNotEmpty(ds *rules.DatasetDecl, n int) (warning string, err error) {
	if n > 0 {
		return "", nil
	}
	if ds.AllowEmpty {
		return fmt.Sprintf("dataset %q: no input file matches %q (allow_empty: true)", ds.Name, ds.Source), nil
	}
	return "", &DataError{Location: ds.Source, Err: fmt.Errorf("%w: the source of dataset %q (%s) matches no file: check the path and "+
		"the glob (* within one folder, ** across folders), or set allow_empty: true on the dataset if an empty source is expected",
		ErrNoInput, ds.Name, ds.Pos)}
}

// globDataset lists a dataset's input files, with output paths relative
// to its root.
func globDataset(ctx context.Context, store storage.Store, ds *rules.Dataset) ([]storage.Match, error) {
	_, matches, err := storage.Glob(ctx, store, ds.Source)
	if err != nil {
		return nil, SourceError(ds.Name, ds.Source, err)
	}
	if ds.Root != "" {
		// outputs are named relative to the declared root instead
		for i := range matches {
			rel, err := storage.Rel(ds.Root, matches[i].Location)
			if err != nil || strings.HasPrefix(rel, "../") {
				return nil, dataerr.Errorf(matches[i].Location, "", "not under the root %q of dataset %q", ds.Root, ds.Name)
			}
			matches[i].Rel = rel
		}
	}
	return matches, nil
}

// checkOutputs refuses to replace an output file that the destination's
// manifest attributes to another input. Two inputs that map to one output
// path (daily partitions globbed one day at a time, say, when the glob's
// fixed prefix swallows the partition folder) would otherwise overwrite each
// other's data.
func (r *runner) checkOutputs(ctx context.Context) error {
	for _, dst := range r.plan.Destinations {
		if err := r.checkNoRetainJournal(ctx, dst.Name, dst.Output); err != nil {
			return err
		}
		r.checkProtection(ctx, dst.Name, dst.Output)
		owners := map[string]string{}
		m, err := output.ReadManifest(ctx, r.opt.Store, dst.Output)
		switch {
		case errors.Is(err, storage.ErrNotExist):
		case err != nil:
			return err
		default:
			for _, f := range m.Files {
				owners[f.Path] = f.Input.Location
			}
		}
		for _, in := range r.inputs {
			for _, out := range in.outputs {
				if out.dst != dst {
					continue
				}
				if owner, ok := owners[out.rel]; ok && owner != in.match.Location {
					return dataerr.Errorf(storage.Join(dst.Output, out.rel), "", "already holds the output of %q; this run would replace it "+
						"with the output of %q. Give the dataset a root: (the folder output paths are relative to, e.g. the table's "+
						"folder above its dt=... partitions) or glob the partition folder (dt=*/...), so that each input keeps its own output",
						owner, in.match.Location)
				}
				owners[out.rel] = in.match.Location
			}
		}
	}
	return nil
}

// inspect reads a file's footer and plans its processing. first, when not
// nil, is the dataset's first file: every later file must have the same
// column types (schema drift is an error, not a guess).
func (r *runner) inspect(ctx context.Context, ds *rules.Dataset, m storage.Match, first *inputFile) (*inputFile, error) {
	f, attrs, err := pqstore.Open(ctx, r.opt.Store, m.Location, r.opt.Mem)
	if err != nil {
		if errors.Is(err, parquetio.ErrCorrupt) {
			return nil, dataerr.Mark(err)
		}
		return nil, fmt.Errorf("dataset %q: %w", ds.Name, err)
	}
	defer f.Close()
	if err := dataerr.CheckColumnNames(m.Location, f.Schema()); err != nil {
		return nil, err
	}
	in := &inputFile{ds: ds, match: m, rows: f.NumRows(), schema: f.Schema(), timePos: -1, subjectPos: -1, naive: map[int]bool{}}
	in.match.Attrs = attrs
	for i := 0; i < f.NumRowGroups(); i++ {
		in.rgRows = append(in.rgRows, f.RowGroupRows(i))
	}
	in.report = &report.InputFile{Location: m.Location, Size: in.match.Size, ModTime: in.match.ModTime.UTC(),
		Generation: in.match.Generation, CRC32C: crcHex(in.match.Attrs), RowGroups: f.NumRowGroups(), Removed: map[string]int64{}}

	loc := m.Location
	sch := f.Schema()
	// every column of the data must be classified (fail closed)
	var unclassified []string
	for _, fld := range sch.Fields() {
		if ds.Column(fld.Name) == nil {
			unclassified = append(unclassified, fld.Name)
		}
	}
	if len(unclassified) > 0 {
		if ds.Unclassified != "drop" {
			return nil, dataerr.Errorf(loc, "", "column(s) %s are not classified by dataset %q (%s): classify each with a semantic type, "+
				"or set unclassified: drop to leave them out of every output", rules.QuoteNames(unclassified), ds.Name, ds.Pos)
		}
		r.noteDropped(ds, unclassified)
	}
	for _, c := range ds.Columns {
		if sch.FieldIndices(c.Name) == nil {
			return nil, dataerr.Errorf(loc, c.Name, "classified in the policy (%s) but missing from the file", c.Pos)
		}
	}
	if first != nil {
		for _, fld := range sch.Fields() {
			idx := first.schema.FieldIndices(fld.Name)
			if idx != nil && !arrow.TypeEqual(first.schema.Field(idx[0]).Type, fld.Type) {
				return nil, dataerr.Errorf(loc, fld.Name, "type changed: %s here, %s in %q (schema drift; rewrite one of them or split the dataset)",
					fld.Type, first.schema.Field(idx[0]).Type, first.match.Location)
			}
		}
	}

	// the columns to read: those some destination outputs, plus the row
	// rules' columns
	need := map[string]bool{}
	if rt := ds.Retention; rt != nil {
		need[rt.TimeColumn] = true
	}
	if len(ds.Erasure) > 0 {
		need[ds.Subject] = true
	}
	for _, c := range rowRuleColumns(ds) {
		need[c] = true
	}
	for _, dst := range r.plan.Destinations {
		if b := dst.Binding(ds.Name); b != nil {
			for _, bc := range b.Columns {
				if !bc.Spec.Drops {
					need[bc.Name] = true
				}
				if bc.Spec.Subject { // shift_date: the same shift for all of a subject's rows
					need[ds.Subject] = true
				}
			}
		}
	}
	pos := map[string]int{}
	for i, fld := range sch.Fields() {
		if !need[fld.Name] {
			continue
		}
		if err := checkFlat(fld); err != nil {
			return nil, dataerr.Errorf(loc, fld.Name, "%w", err)
		}
		if ts, ok := fld.Type.(*arrow.TimestampType); ok && ts.TimeZone == "" {
			if ds.TimeZone == nil {
				return nil, dataerr.Errorf(loc, fld.Name, "timestamp stored without the UTC flag (isAdjustedToUTC=false): "+
					"declare the dataset's time_zone (%s) so deid knows which clock the values use", ds.Pos)
			}
			in.naive[len(in.readCols)] = true
		}
		pos[fld.Name] = len(in.readCols)
		in.readCols = append(in.readCols, i)
		in.leaves = append(in.leaves, f.LeafIndex(fld.Name))
	}
	if rt := ds.Retention; rt != nil {
		in.timePos = pos[rt.TimeColumn]
		if _, ok := sch.Field(in.readCols[in.timePos]).Type.(*arrow.TimestampType); !ok {
			return nil, dataerr.Errorf(loc, rt.TimeColumn, "retention time column is %s, not a timestamp (%s)",
				sch.Field(in.readCols[in.timePos]).Type, rt.Pos)
		}
	}
	in.pos = pos
	if len(ds.Erasure) > 0 || need[ds.Subject] {
		in.subjectPos = pos[ds.Subject]
		if k, ok := transforms.KindOf(sch.Field(in.readCols[in.subjectPos]).Type); !ok || k != transforms.KindInteger && k != transforms.KindString {
			return nil, dataerr.Errorf(loc, ds.Subject, "subject column is %s: erasure and consent lists match integer or string ids",
				sch.Field(in.readCols[in.subjectPos]).Type)
		}
	}

	// what each destination receives, in the file's column order
	for _, dst := range r.plan.Destinations {
		b := dst.Binding(ds.Name)
		if b == nil {
			continue
		}
		out := &fileOutput{dst: dst, rep: r.destReport(dst), rel: ds.Name + "/" + m.Rel}
		if err := output.CheckOutputPath(out.rel); err != nil {
			// (a .deid-commit folder in the source, a name with a control character)
			return nil, dataerr.Errorf(loc, "", "cannot be published under this name: %w", err)
		}
		var fields []arrow.Field
		for _, fld := range sch.Fields() {
			bc := b.Columns[fld.Name]
			if bc == nil {
				continue // unclassified and dropped
			}
			col := report.Column{Name: fld.Name, SemanticType: bc.Semantic.Name, Transform: bc.Spec.Name,
				Params: paramsForReport(bc), Result: bc.Spec.Result.String(), Meaning: bc.Meaning, SourceType: fld.Type.String(),
				Default: bc.Default, Allow: bc.Allow}
			if bc.Spec.Drops {
				out.columns = append(out.columns, col)
				continue
			}
			inType := fld.Type
			if in.naive[pos[fld.Name]] {
				inType = &arrow.TimestampType{Unit: inType.(*arrow.TimestampType).Unit, TimeZone: "UTC"}
			}
			ot, err := bc.Transform.OutputType(inType)
			if err != nil {
				return nil, dataerr.Errorf(loc, fld.Name, "the policy asks for %s (%s), which cannot take this column: %w", bc.Spec.Name, bc.Pos, err)
			}
			col.OutputType = denseField(fld.Name, ot).Type.String()
			out.columns = append(out.columns, col)
			out.cols = append(out.cols, outColumn{name: fld.Name, pos: pos[fld.Name], bc: bc})
			fields = append(fields, denseField(fld.Name, ot))
		}
		out.schema = arrow.NewSchema(fields, nil)
		if b.MinK > 0 {
			k := dst.Name + "\x00" + ds.Name
			if r.classes[k] == nil {
				r.classes[k] = classes.NewCounts(dst.Name, b)
			}
			out.classes = r.classes[k]
			if out.qi, err = qiIndices(out.classes, loc, out.cols); err != nil {
				return nil, err
			}
		}
		in.outputs = append(in.outputs, out)
	}
	return in, nil
}

// checkFlat refuses nested columns: they cannot be classified column by column.
func checkFlat(f arrow.Field) error {
	switch f.Type.ID() {
	case arrow.STRUCT, arrow.LIST, arrow.LARGE_LIST, arrow.MAP, arrow.FIXED_SIZE_LIST, arrow.DENSE_UNION, arrow.SPARSE_UNION:
		return fmt.Errorf("nested type %s is not supported: flatten it, or drop it (treatment drop)", f.Type)
	}
	return nil
}

func paramsForReport(bc *rules.BoundColumn) map[string]any {
	if len(bc.Params) == 0 {
		return nil
	}
	m := make(map[string]any, len(bc.Params))
	for k, v := range bc.Params {
		m[k] = v
	}
	return m
}

func (r *runner) noteDropped(ds *rules.Dataset, cols []string) {
	dsr := r.datasetReport(ds)
	r.rep.Lock()
	for _, c := range cols {
		found := false
		for _, d := range dsr.DroppedColumns {
			found = found || d == c
		}
		if !found {
			dsr.DroppedColumns = append(dsr.DroppedColumns, c)
		}
	}
	sort.Strings(dsr.DroppedColumns)
	r.rep.Unlock()
}

// statExists reports whether an object exists at location.
func (r *runner) statExists(ctx context.Context, location string) bool {
	_, err := r.opt.Store.Stat(ctx, location)
	return err == nil
}

// checkProtection warns, in the report, when an output lives in a bucket
// that keeps what deid deletes or replaces (object versioning, soft
// delete): staged files and replaced outputs, with the rows a later run
// removes (erasure, retention), survive there until the bucket's own rules
// remove them. Not being allowed to read the bucket's settings is logged,
// not fatal.
func (r *runner) checkProtection(ctx context.Context, name, output string) {
	if !storage.IsURI(output) {
		return
	}
	p, err := storage.DeleteProtection(ctx, r.opt.Store, output)
	if err != nil {
		r.opt.Logger.Warn("could not read the bucket's versioning and soft delete settings", "destination", name, "error", err)
		return
	}
	if w := p.Warning(); w != "" {
		r.rep.Warn(fmt.Sprintf("destination %q: %s (replaced outputs and staged files included)", name, w))
	}
}
