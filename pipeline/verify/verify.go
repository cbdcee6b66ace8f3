package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/arrowpool"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
	"github.com/deidproject/deid/transforms/detect"
)

// Options control Outputs.
type Options struct {
	// Store reads the outputs and sources and writes verify.json; nil
	// means a storage.Router (local disk and gs://).
	Store storage.Store
	// Mem allocates the decoded batches; nil means a pool that gives
	// their buffers back to the next batches (arrowpool), as a run's.
	Mem memory.Allocator
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// BatchSize is the rows decoded at a time; 0 means 65,536.
	BatchSize int
	// ScratchDir holds the risk check's spilled class counts; empty means
	// the system's temporary folder.
	ScratchDir string
	// TallyLimit is how many classes the risk check counts in memory before
	// it spills sorted runs to ScratchDir; 0 means classes.DefaultTallyLimit.
	TallyLimit int
	// RunID limits the checks to the files that run wrote; empty checks
	// every file each destination's manifest lists.
	RunID string
	// Strict checks every text column with every validating detector.
	Strict bool
	// Now, when set, is the instant retention is measured from; by default
	// each file is checked against the now of the run that wrote it.
	Now time.Time
}

// defaults fills in what the caller left zero.
func (o *Options) defaults() {
	if o.Store == nil {
		o.Store = storage.NewRouter()
	}
	if o.Mem == nil {
		o.Mem = arrowpool.New(16 << 20 * runtime.GOMAXPROCS(0))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1 << 16
	}
	if o.ScratchDir == "" {
		o.ScratchDir = os.TempDir()
	}
}

// Result is what Outputs found, per destination.
type Result struct {
	Destinations []*report.Verification `json:"destinations"`
}

// OK reports whether no destination has a finding.
func (v *Result) OK() bool {
	for _, d := range v.Destinations {
		if len(d.Findings) > 0 {
			return false
		}
	}
	return true
}

// Outputs checks the published outputs of the plan's destinations, and
// writes each destination's result beside the report of the run checked
// (_reports/<run id>/verify.json). The error is for failures to read; what
// does not match is in the result.
func Outputs(ctx context.Context, plan *rules.Plan, opt Options) (*Result, error) {
	ctx = storage.WithRoots(ctx, plan.Outputs()...) // writes below an output never follow links
	opt.defaults()
	plan, _ = plan.WithoutEnded() // an ended dataset's files are no destination's promise
	s := opt.Store
	ids, err := newIdentifierSet(ctx, plan, opt)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	v := &verifier{opt: opt, ids: ids, erased: newErasedOutputs(plan, opt), candidates: candidates{}, short: candidates{}}
	defer func() {
		for _, t := range v.tallies {
			t.Close()
		}
	}()
	for _, dst := range plan.Destinations {
		dv := &report.Verification{Format: report.VerificationFormatV1, Destination: dst.Name, Output: dst.Output, RunID: opt.RunID, Strict: opt.Strict,
			Checks: []string{"schema", "pii", "pseudonym", "identifier", "erasure", "retention", "risk"}, Findings: []report.Finding{}}
		risk := map[string]*riskClasses{} // by dataset
		res.Destinations = append(res.Destinations, dv)
		m, err := output.ReadManifest(ctx, s, dst.Output)
		if err != nil {
			return nil, fmt.Errorf("destination %q: %w", dst.Name, err)
		}
		for _, mf := range m.Files {
			if opt.RunID != "" && mf.RunID != opt.RunID {
				continue
			}
			if err := v.checkFile(ctx, dst, dv, risk, mf); err != nil {
				return nil, err
			}
		}
		for _, name := range sortedKeys(risk) {
			rc := risk[name]
			r, err := rc.result(name)
			if err != nil {
				return nil, fmt.Errorf("destination %q: %w", dst.Name, err)
			}
			rc.tally.Close()
			dv.Risk = append(dv.Risk, r)
			where := storage.Join(dst.Output, name)
			if rc.incomplete {
				dv.Findings = append(dv.Findings, report.Finding{Check: "risk", File: where, RowGroup: -1,
					Msg: "some files lack a quasi-identifier column: the classes were counted on the others only"})
			}
			if r.MinK > 0 && r.Rows > 0 && r.K < int64(r.MinK) {
				dv.Findings = append(dv.Findings, report.Finding{Check: "risk", File: where, RowGroup: -1, Values: r.RowsBelow,
					Msg: fmt.Sprintf("k = %d, below min_k %d: %d classes of %d (%d rows) are smaller", r.K, r.MinK, r.ClassesBelow, r.Classes, r.RowsBelow)})
			}
		}
	}
	// exact confirmation: read the sources' identifier columns again
	if err := v.confirm(ctx); err != nil {
		return nil, err
	}
	for _, dv := range res.Destinations {
		if v.overflow {
			dv.Findings = append(dv.Findings, report.Finding{Check: "identifier", RowGroup: -1,
				Msg: fmt.Sprintf("more than %d distinct output values look like source identifiers; only those were confirmed", maxCandidates)})
		}
		sort.SliceStable(dv.Findings, func(i, j int) bool {
			a, b := dv.Findings[i], dv.Findings[j]
			if a.File != b.File {
				return a.File < b.File
			}
			return a.RowGroup < b.RowGroup
		})
	}
	// the result goes beside the report of the run checked, and into its page
	for _, dv := range res.Destinations {
		if err := publishVerification(ctx, s, plan, dv); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// columnChecks returns the detectors an output column is checked with, and
// whether the identifier check exempts it. bc is nil for a column the
// policy does not promise.
func columnChecks(bc *rules.BoundColumn, strict bool) (*detect.Set, bool, error) {
	if bc == nil {
		return detect.DefaultSet(), false, nil
	}
	result := bc.Spec.Result.String()
	if result == "pseudonym" || result == "removed" {
		return nil, false, nil
	}
	if bc.Spec.Name == "scrub" && !strict {
		names := bc.Params.Strings("detectors")
		if len(names) == 0 {
			names = detect.DefaultNames()
		}
		set, err := detect.LookupSet(names)
		return set, false, err
	}
	identifier := bc.Semantic != nil && (bc.Semantic.Category == rules.DirectIdentifier || bc.Semantic.Category == rules.DeviceIdentifier)
	if strict {
		names := detect.DefaultNames()
		if bc.Spec.Name == "generalize_ip" {
			// a network prefix is still written as an address, on purpose
			names = slices.DeleteFunc(names, func(n string) bool { return n == "ip" })
		}
		set, err := detect.LookupSet(names)
		return set, false, err
	}
	// a column the policy keeps raw on purpose (keep with allow)
	return nil, identifier && result == "raw" && bc.Allow != "", nil
}

// eachText calls fn with the text of every non-NULL value of a string,
// binary or integer array (integers as decimal text); other types have no
// text to check.
func eachText(a arrow.Array, fn func([]byte)) {
	var tmp []byte
	switch a := a.(type) {
	case *array.Dictionary:
		eachText(a.Dictionary(), fn)
	case *array.String:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn([]byte(a.Value(i)))
			}
		}
	case *array.LargeString:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn([]byte(a.Value(i)))
			}
		}
	case *array.Binary:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(a.Value(i))
			}
		}
	case *array.Int64:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				tmp = strconv.AppendInt(tmp[:0], a.Value(i), 10)
				fn(tmp)
			}
		}
	case *array.Int32:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				tmp = strconv.AppendInt(tmp[:0], int64(a.Value(i)), 10)
				fn(tmp)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// verifier holds what Outputs' checks share across files and destinations.
type verifier struct {
	opt        Options
	ids        *identifierSet
	erased     *erasedOutputs
	candidates candidates       // by value: the identifier check's hits
	short      candidates       // by shortKey: its hits of short whole values
	overflow   bool             // more candidates than maxCandidates
	tallies    []*classes.Tally // the risk check's, removed on return
}

// checkFile checks one published file of destination dst (manifest entry
// mf): its schema, PII left by detectors, candidate raw identifiers,
// erased subjects' and expired rows; and adds its quasi-identifiers' classes
// to risk. Findings go into dv.
func (vr *verifier) checkFile(ctx context.Context, dst *rules.Destination, dv *report.Verification, risk map[string]*riskClasses, mf *output.ManifestFile) error {
	loc := storage.Join(dst.Output, mf.Path)
	dv.Files++
	find := func(check, column string, rg int, n int64, format string, args ...any) {
		dv.Findings = append(dv.Findings, report.Finding{Check: check, File: loc, Column: column, RowGroup: rg, Values: n, Msg: fmt.Sprintf(format, args...)})
	}
	b := dst.Binding(mf.Dataset)
	f, _, err := pqstore.Open(ctx, vr.opt.Store, loc, vr.opt.Mem)
	if err != nil {
		return err
	}
	sch := f.Schema()
	if err := dataerr.CheckColumnNames(loc, sch); err != nil {
		// the columns would be read by name, one in place of the other
		var de *dataerr.Error
		errors.As(err, &de)
		find("schema", "", -1, 0, "%v", de.Err)
	}
	// schema: the policy's output columns, no more, no fewer
	expected := map[string]*rules.BoundColumn{}
	if b == nil {
		find("schema", "", -1, 0, "dataset %q is not sent to destination %q by the policy", mf.Dataset, dst.Name)
	} else {
		for name, bc := range b.Columns {
			if !bc.Spec.Drops {
				expected[name] = bc
			}
		}
	}
	present := map[string]bool{}
	for _, fld := range sch.Fields() {
		present[fld.Name] = true
		if _, ok := expected[fld.Name]; !ok && b != nil {
			find("schema", fld.Name, -1, 0, "the policy promises no column %q in dataset %q of destination %q", fld.Name, mf.Dataset, dst.Name)
		}
	}
	for _, name := range sortedKeys(expected) {
		if !present[name] {
			find("schema", name, -1, 0, "the policy's column %q is missing", name)
		}
	}
	// the detectors each column is checked with
	sets := make([]*detect.Set, sch.NumFields())
	exempt := make([]bool, sch.NumFields())
	cols := make([]int, sch.NumFields())
	for j, fld := range sch.Fields() {
		cols[j] = j
		sets[j], exempt[j], err = columnChecks(expected[fld.Name], vr.opt.Strict)
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: column %q: %w", storage.QuoteLocation(loc), fld.Name, err)
		}
	}
	// pseudonym: the form of what a column's transform writes; identifier:
	// the source column whose short values are looked for, as whole
	// values, in the output column written from it (an identifier column's)
	forms := make([]transforms.OutputForm, sch.NumFields())
	misses := make([]formMisses, sch.NumFields())
	shortSource := make([]string, sch.NumFields())
	for j, fld := range sch.Fields() {
		if bc := expected[fld.Name]; bc != nil && bc.Transform != nil {
			forms[j], _ = bc.Transform.(transforms.OutputForm)
		}
		if b != nil && !exempt[j] {
			if c := b.Dataset.Column(fld.Name); c != nil && c.Type != nil && (c.Type.Category == rules.DirectIdentifier || c.Type.Category == rules.DeviceIdentifier) {
				shortSource[j] = b.Dataset.Name + "." + fld.Name
			}
		}
	}
	// erasure: the erased subjects as this destination writes them
	var gone map[string]bool
	subjectCol := -1
	if b != nil {
		gone, err = vr.erased.forBinding(ctx, dst, b)
		if err != nil {
			f.Close()
			return err
		}
		if idx := sch.FieldIndices(b.Dataset.Subject); gone != nil && len(idx) > 0 {
			subjectCol = idx[0] // a missing subject column is a schema finding
		}
	}
	// retention: no time before the cut-off, as the destination writes it
	timeCol, cut := -1, int64(0)
	cutNow := mf.Now
	if !vr.opt.Now.IsZero() {
		cutNow = vr.opt.Now
	}
	if b != nil {
		if j, c, ok, err := retentionBound(vr.opt.Mem, b, sch, cutNow); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", storage.QuoteLocation(loc), err)
		} else if ok {
			timeCol, cut = j, c
		}
	}
	// risk: count the classes of the quasi-identifiers' values
	var rc *riskClasses
	var qiCols []int
	if b != nil && len(b.QuasiIdentifiers) > 0 {
		if rc = risk[mf.Dataset]; rc == nil {
			rc = &riskClasses{binding: b, tally: classes.NewTally(vr.opt.ScratchDir, vr.opt.TallyLimit)}
			vr.tallies = append(vr.tallies, rc.tally)
			risk[mf.Dataset] = rc
		}
		for _, q := range b.QuasiIdentifiers {
			if idx := sch.FieldIndices(q); len(idx) > 0 {
				qiCols = append(qiCols, idx[0])
			}
		}
		if len(qiCols) != len(b.QuasiIdentifiers) {
			rc.incomplete = true
			qiCols = nil
		}
	}
	var buf detect.Buffer
	var matches []detect.Match
	var fileRows int64 // rows of the file before the batch
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		found := make([]map[string]int64, sch.NumFields())
		clear(misses)
		var erasedRows, expiredRows int64
		err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: cols, BatchSize: int64(vr.opt.BatchSize)}, func(rec arrow.RecordBatch) error {
			dv.Rows += rec.NumRows()
			base := fileRows
			fileRows += rec.NumRows()
			for j, form := range forms {
				if form != nil {
					misses[j].check(rec.Column(j), form, base)
				}
			}
			if timeCol >= 0 {
				expiredRows += countBefore(rec.Column(timeCol), cut)
			}
			if qiCols != nil {
				if err := rc.add(rec, qiCols); err != nil {
					return fmt.Errorf("%s: %w", storage.QuoteLocation(loc), err)
				}
			}
			if subjectCol >= 0 {
				eachText(rec.Column(subjectCol), func(v []byte) {
					if gone[string(v)] {
						erasedRows++
					}
				})
			}
			for j := range cols {
				set := sets[j]
				eachText(rec.Column(j), func(v []byte) {
					if set != nil {
						matches = set.Find(matches[:0], v, &buf)
						for _, mt := range matches {
							if found[j] == nil {
								found[j] = map[string]int64{}
							}
							found[j][set.Detectors()[mt.Detector].Name()]++
						}
					}
					if exempt[j] {
						return
					}
					if len(v) < minIdentifierLen {
						// a short whole value, in a column written from an
						// identifier column: compared with that column's
						// own values
						if src := shortSource[j]; src != "" && len(v) > 0 && vr.ids.hasShort(src, v) &&
							!vr.short.add(vr.ids.shortKey(src, v), vr.room(), dv, loc, sch.Field(j).Name, rg) {
							vr.overflow = true
						}
						return
					}
					words(v, func(w []byte) {
						if vr.ids.has(w) && !vr.candidates.add(w, vr.room(), dv, loc, sch.Field(j).Name, rg) {
							vr.overflow = true
						}
					})
				})
			}
			return nil
		})
		if err != nil {
			f.Close()
			return err
		}
		if expiredRows > 0 {
			find("retention", sch.Field(timeCol).Name, rg, expiredRows, "%d rows older than the retention cut-off (%s before %s)", expiredRows, b.Dataset.Retention.Keep, cutNow.Format(time.RFC3339))
		}
		if erasedRows > 0 {
			find("erasure", b.Dataset.Subject, rg, erasedRows, "%d rows of subjects on the dataset's erasure lists", erasedRows)
		}
		for j, m := range misses {
			if m.n > 0 {
				find("pseudonym", sch.Field(j).Name, rg, m.n, "%s", m.message(forms[j], sch.Field(j).Type))
			}
		}
		for j, byDetector := range found {
			for _, name := range sortedKeys(byDetector) {
				find("pii", sch.Field(j).Name, rg, byDetector[name], "%d values the %s detector recognises, where the policy says none may remain", byDetector[name], name)
			}
		}
	}
	f.Close()
	return nil
}
