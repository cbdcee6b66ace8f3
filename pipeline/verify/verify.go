package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// minIdentifierLen is the shortest value the identifier check looks for in
// every output column, as a whole value or a word of a text: shorter ones
// (small integers, codes) match by chance.
const minIdentifierLen = 6

// MinShortDistinct is how many distinct values shorter than
// minIdentifierLen of one source identifier column must appear, as whole
// values, in the output column the destination writes from that column (a
// dataset's column in a destination, over all its files checked) for the
// identifier check to report them. Only such columns are compared, and only
// with their own source column's values: a short value elsewhere (an
// amount, a bucket, a year, a record id) is no evidence, since the
// legitimate values of those columns share the small integers' space. In
// the columns compared, what the policy writes is never a short raw value:
// a pseudonym is 16 to 64 hex characters (a chance equality with a source
// value is impossible), a mask keeps its mask characters, redact writes one
// constant, birth_year writes years from 18-character resident ids. What
// remains is a transform's small set of labels coinciding with raw values;
// ten distinct coincidences with one column's own ids are well beyond such
// chance. Take a column of D distinct short values unrelated to the ids,
// uniform over the 90,000 five-digit ids of which the source holds M: it
// matches about D·M/90,000 of them, so with 150 labels and the sample's 120
// users 0.2, and ten or more with probability below 1e-13; a column of
// replaced ids matches every one of its distinct ids.
const MinShortDistinct = 10

// maxCandidates bounds the distinct output values kept for exact
// confirmation.
const maxCandidates = 1 << 20

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

// publishVerification writes the destination's verification beside the
// report of the run checked (the manifest's last run by default), signed
// with the audit key when the policy has one, and renders that report's
// page again with the verification in it.
func publishVerification(ctx context.Context, s storage.Store, plan *rules.Plan, v *report.Verification) error {
	runID := v.RunID
	if runID == "" {
		m, err := output.ReadManifest(ctx, s, v.Output)
		if err != nil {
			return err
		}
		runID = m.RunID
	}
	b, err := v.JSON()
	if err != nil {
		return err
	}
	if k := plan.AuditKey; k != nil {
		if b, err = report.SignJSON(b, k.Secret(), k.Fingerprint()); err != nil {
			return err
		}
	}
	dir := storage.Join(v.Output, output.ReportsDir, runID)
	if err := storage.WriteFile(ctx, s, storage.Join(dir, "verify.json"), b); err != nil {
		return err
	}
	data, err := storage.ReadFile(ctx, s, storage.Join(dir, "report.json"))
	if errors.Is(err, storage.ErrNotExist) {
		return nil // files of a run whose report is gone: nothing to render
	}
	if err != nil {
		return err
	}
	r, _, err := report.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", storage.Join(dir, "report.json"), err)
	}
	if r.Verification, err = report.ParseVerification(b); err != nil {
		return err
	}
	page, err := r.HTML()
	if err != nil {
		return err
	}
	return storage.WriteFile(ctx, s, storage.Join(dir, "report.html"), page)
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

// words calls fn with the value itself and, when it is longer, each run of
// the characters identifiers are written with (ASCII letters and digits and
// @ . _ + - :), of at least minIdentifierLen bytes.
func words(v []byte, fn func([]byte)) {
	if len(v) >= minIdentifierLen {
		fn(v)
	}
	start := -1
	for i := 0; i <= len(v); i++ {
		in := i < len(v) && isIdentByte(v[i])
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if i-start >= minIdentifierLen && i-start < len(v) {
				fn(v[start:i])
			}
			start = -1
		}
	}
}

func isIdentByte(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' || c == '@' || c == '.' || c == '_' || c == '+' || c == '-' || c == ':'
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// candidateAt is an output value that the identifier filter says may be a
// source identifier, where it was found; confirm settles it.
type candidateAt struct {
	dv             *report.Verification
	file, column   string
	rg             int
	sources        map[string]bool
	confirmedValue bool
}

// candidates holds the identifier check's hits by value (or by shortKey
// for short values), each with where it was found.
type candidates map[string][]*candidateAt

// add records that value k was found at (dv, file, column, rg), once per
// row group; it reports false, recording nothing, when there are already
// limit values and k is not one of them.
func (cs candidates) add(k []byte, limit int, dv *report.Verification, file, column string, rg int) bool {
	at := cs[string(k)]
	if at == nil && limit <= 0 {
		return false
	}
	if n := len(at); n > 0 && at[n-1].dv == dv && at[n-1].file == file && at[n-1].column == column && at[n-1].rg == rg {
		return true
	}
	cs[string(k)] = append(at, &candidateAt{dv: dv, file: file, column: column, rg: rg})
	return true
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

// room is how many more distinct candidates may be kept.
func (vr *verifier) room() int {
	return maxCandidates - len(vr.candidates) - len(vr.short)
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

// confirm reads the sources' identifier columns again and turns the
// candidates whose values are indeed raw source identifiers into findings,
// one per file, column and row group.
func (vr *verifier) confirm(ctx context.Context) error {
	if len(vr.candidates) == 0 && len(vr.short) == 0 {
		return nil
	}

	if err := vr.ids.scan(ctx, func(column string, v []byte) {
		if len(v) < minIdentifierLen {
			if len(v) > 0 && len(vr.short) > 0 {
				for _, c := range vr.short[string(vr.ids.shortKey(column, v))] {
					c.confirmedValue = true
				}
			}
			return
		}
		for _, c := range vr.candidates[string(v)] {
			c.confirmedValue = true
			if c.sources == nil {
				c.sources = map[string]bool{}
			}
			c.sources[column] = true
		}
	}); err != nil {
		return err
	}
	type key struct {
		dv           *report.Verification
		file, column string
		rg           int
	}
	counts := map[key]int64{}
	sources := map[key]map[string]bool{}
	var order []key
	for _, cs := range vr.candidates {
		for _, c := range cs {
			if !c.confirmedValue {
				continue
			}
			k := key{c.dv, c.file, c.column, c.rg}
			if counts[k] == 0 {
				order = append(order, k)
				sources[k] = map[string]bool{}
			}
			counts[k]++
			for c := range c.sources {
				sources[k][c] = true
			}
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		return cmp.Or(strings.Compare(a.file, b.file), cmp.Compare(a.rg, b.rg), strings.Compare(a.column, b.column)) < 0
	})
	for _, k := range order {
		k.dv.Findings = append(k.dv.Findings, report.Finding{Check: "identifier", File: k.file, Column: k.column, RowGroup: k.rg, Values: counts[k],
			Msg: fmt.Sprintf("%d distinct raw values of source identifier column %s", counts[k], rules.QuoteNames(sortedKeys(sources[k])))})
	}
	vr.confirmShort()
	return nil
}

// confirmShort turns the confirmed short whole values into findings, one
// per file, column and row group, where at least MinShortDistinct distinct
// values of one source column appear in the destination's output column
// written from it.
func (vr *verifier) confirmShort() {
	type column struct {
		dv     *report.Verification
		source string // dataset.column
	}
	type key struct {
		column
		file, name string
		rg         int
	}
	distinct := map[column]int64{}
	counts := map[key]int64{}
	for k, cs := range vr.short {
		if len(cs) == 0 || !cs[0].confirmedValue {
			continue
		}
		source, _, _ := strings.Cut(k[1:], "\x00") // shortKey: NUL, column, NUL, value
		var last *report.Verification
		for _, c := range cs {
			col := column{c.dv, source}
			if c.dv != last { // the candidates of one value are in the order found: by destination
				distinct[col]++
				last = c.dv
			}
			counts[key{col, c.file, c.column, c.rg}]++
		}
	}
	var order []key
	for k := range counts {
		if distinct[k.column] >= MinShortDistinct {
			order = append(order, k)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		return cmp.Or(strings.Compare(a.file, b.file), cmp.Compare(a.rg, b.rg), strings.Compare(a.name, b.name)) < 0
	})
	for _, k := range order {
		k.dv.Findings = append(k.dv.Findings, report.Finding{Check: "identifier", File: k.file, Column: k.name, RowGroup: k.rg, Values: counts[k],
			Msg: fmt.Sprintf("%d distinct raw values of source identifier column %s as whole values shorter than %d characters (%d in the destination's column; %d or more are a finding)",
				counts[k], rules.QuoteNames([]string{k.source}), minIdentifierLen, distinct[k.column], MinShortDistinct)})
	}
}

// formMisses counts, in one row group, the values of a column that are not
// of the form its transform writes, and where the first one is.
type formMisses struct {
	n     int64
	first int64 // row of the file, from 0
	size  int   // the first one's length in bytes; -1 when the column is not text
}

func (m *formMisses) miss(row int64, size int) {
	if m.n == 0 {
		m.first, m.size = row, size
	}
	m.n++
}

// check adds the non-NULL values of a (rows base on of the file) that are
// not of form. A column of a type other than text holds no value of the
// form, whatever its values.
func (m *formMisses) check(a arrow.Array, form transforms.OutputForm, base int64) {
	switch a := a.(type) {
	case *array.Dictionary:
		dict := a.Dictionary()
		var sizes []int // per dictionary entry: -2 when of the form, else its size
		switch d := dict.(type) {
		case *array.String, *array.LargeString, *array.Binary:
			sizes = make([]int, dict.Len())
			eachIndexed(d, func(i int, v []byte) {
				sizes[i] = len(v)
				if form.HasForm(v) {
					sizes[i] = -2
				}
			})
		}
		for i := 0; i < a.Len(); i++ {
			if !a.IsValid(i) {
				continue
			}
			if sizes == nil {
				m.miss(base+int64(i), -1)
			} else if sz := sizes[a.GetValueIndex(i)]; sz != -2 {
				m.miss(base+int64(i), sz)
			}
		}
	case *array.String, *array.LargeString, *array.Binary:
		eachIndexed(a, func(i int, v []byte) {
			if !form.HasForm(v) {
				m.miss(base+int64(i), len(v))
			}
		})
	default:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				m.miss(base+int64(i), -1)
			}
		}
	}
}

// message says what the misses are, never what the values are (a raw
// identifier, as likely as not): their count, the form, the first one's
// row and length.
func (m *formMisses) message(form transforms.OutputForm, typ arrow.DataType) string {
	if m.size < 0 {
		return fmt.Sprintf("%d values of type %s where the policy writes pseudonyms (%s), the first at row %d of the file (from 0)", m.n, typ, form.Form(), m.first)
	}
	return fmt.Sprintf("%d values not of the pseudonym's form (%s), the first at row %d of the file (from 0), of %d bytes", m.n, form.Form(), m.first, m.size)
}

// eachIndexed calls fn with the row and bytes of every non-NULL value of a
// string, large string or binary array, without copying them.
func eachIndexed(a arrow.Array, fn func(i int, v []byte)) {
	switch a := a.(type) {
	case *array.String:
		data, offs := a.ValueBytes(), a.ValueOffsets()
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(i, data[offs[i]-offs[0]:offs[i+1]-offs[0]])
			}
		}
	case *array.LargeString:
		data, offs := a.ValueBytes(), a.ValueOffsets()
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(i, data[offs[i]-offs[0]:offs[i+1]-offs[0]])
			}
		}
	case *array.Binary:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(i, a.Value(i))
			}
		}
	}
}
