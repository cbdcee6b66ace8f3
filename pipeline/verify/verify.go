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
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/arrowpool"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/output"
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
	// Workers is how many row groups are checked at once (of the outputs,
	// and of the sources for the identifier check); 0 means one per CPU.
	Workers int
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

	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1 << 16
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Mem == nil {
		o.Mem = arrowpool.New(16 << 20 * o.Workers)
	}
	if o.TallyLimit <= 0 {
		o.TallyLimit = classes.DefaultTallyLimit
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
	// the risk check's spilled counts go into a folder of this verify's,
	// removed on return, or by the next job if this one is killed
	folder, err := scratch.NewFolder(opt.ScratchDir, "verify", opt.Logger)
	if err != nil {
		return nil, err
	}
	defer folder.Remove()
	opt.ScratchDir = folder.Path
	res := &Result{}
	v := &verifier{opt: opt, ids: ids, erased: newErasedOutputs(plan, opt), candidates: candidates{}, short: candidates{}}
	defer func() {
		for _, t := range v.tallies {
			t.Close()
		}
	}()
	// every destination's files are checked on one pool of workers, a task
	// per row group
	var files []*engine.File
	risks := make([]map[string]*riskClasses, len(plan.Destinations)) // per destination, by dataset
	open := &openFiles{}
	defer open.closeAll()
	for i, dst := range plan.Destinations {
		dv := &report.Verification{Format: report.VerificationFormatV1, Destination: dst.Name, Output: dst.Output, RunID: opt.RunID, Strict: opt.Strict,
			Checks: []string{"schema", "pii", "pseudonym", "identifier", "erasure", "retention", "risk"}, Findings: []report.Finding{}}
		risks[i] = map[string]*riskClasses{}
		res.Destinations = append(res.Destinations, dv)
		m, err := output.ReadManifest(ctx, s, dst.Output)
		if err != nil {
			return nil, fmt.Errorf("destination %q: %w", dst.Name, err)
		}
		for _, mf := range m.Files {
			if opt.RunID != "" && mf.RunID != opt.RunID {
				continue
			}
			files = append(files, v.fileStage(dst, dv, risks[i], mf, open))
		}
	}
	pool := engine.Pool{Workers: opt.Workers}
	if err := pool.Run(ctx, files); err != nil {
		return nil, err
	}
	for i, dst := range plan.Destinations {
		if err := riskFindings(dst, res.Destinations[i], risks[i]); err != nil {
			return nil, err
		}
	}
	// exact confirmation: read the sources' identifier columns again
	if err := v.confirm(ctx); err != nil {
		return nil, err
	}
	for _, dv := range res.Destinations {
		if v.overflow {
			dv.Findings = append(dv.Findings, report.Finding{Check: "identifier", RowGroup: -1,
				Msg: fmt.Sprintf("more than %d distinct output values look like source identifiers; only the first %d found were confirmed (which ones depends on the order the files were read in)", maxCandidates, maxCandidates)})
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

// riskFindings adds to dv the risk measure of each dataset of destination
// dst, and its findings: classes below min_k, or counted on some files only.
func riskFindings(dst *rules.Destination, dv *report.Verification, risk map[string]*riskClasses) error {
	for _, name := range sortedKeys(risk) {
		rc := risk[name]
		r, err := rc.result(name)
		if err != nil {
			return fmt.Errorf("destination %q: %w", dst.Name, err)
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
	return nil
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

// sortedKeys returns the keys of m in order.
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

	// mu guards the above, the destinations' results and the risk
	// measures while files are checked on several workers
	mu sync.Mutex
}

// fileStage is the check of one published file of destination dst
// (manifest entry mf): its schema, PII left by detectors, candidate raw
// identifiers, erased subjects' and expired rows; and its
// quasi-identifiers' classes, added to risk. Findings go into dv. Its first
// stage opens the file and plans the checks; the next scans a row group a
// task, and records each row group's findings in order.
func (vr *verifier) fileStage(dst *rules.Destination, dv *report.Verification, risk map[string]*riskClasses, mf *output.ManifestFile, open *openFiles) *engine.File {
	loc := storage.Join(dst.Output, mf.Path)
	return &engine.File{Name: loc, Finish: func(ctx context.Context, _ []engine.Output) (*engine.File, error) {
		f, _, err := pqstore.Open(ctx, vr.opt.Store, loc, vr.opt.Mem)
		if err != nil {
			return nil, err
		}
		open.add(f)
		fc := &fileCheck{vr: vr, dv: dv, loc: loc, b: dst.Binding(mf.Dataset), sch: f.Schema()}
		if err := fc.plan(ctx, dst, mf, risk); err != nil {
			return nil, err
		}
		fc.scans = make([]*rgScan, f.NumRowGroups())
		fc.rgStart = make([]int64, f.NumRowGroups())
		for rg := 1; rg < f.NumRowGroups(); rg++ {
			fc.rgStart[rg] = fc.rgStart[rg-1] + f.RowGroupRows(rg-1)
		}
		return &engine.File{Name: loc, RowGroups: f.NumRowGroups(),
			Task: func(ctx context.Context, rg int, _ engine.Head) ([]engine.Piece, error) {
				sc, err := fc.scanRowGroup(ctx, f, rg)
				fc.scans[rg] = sc // each task writes its own row group's
				return nil, err
			},
			InOrder: func(_ context.Context, rg int, _ []engine.Piece) ([]engine.Piece, error) {
				err := fc.record(rg, fc.scans[rg])
				fc.scans[rg] = nil
				return nil, err
			},
			Finish: func(context.Context, []engine.Output) (*engine.File, error) {
				open.close(f)
				return nil, nil
			}}, nil
	}}
}

// plan runs the file's schema check and settles what its columns and rows
// are checked for, under the verifier's lock: it adds findings, and reads
// and caches the erasure lists.
func (fc *fileCheck) plan(ctx context.Context, dst *rules.Destination, mf *output.ManifestFile, risk map[string]*riskClasses) error {
	fc.vr.mu.Lock()
	defer fc.vr.mu.Unlock()
	fc.dv.Files++
	fc.checkSchema(dst, mf)
	if err := fc.planColumns(); err != nil {
		return err
	}
	if err := fc.planRows(ctx, dst, mf, risk); err != nil {
		return err
	}
	fc.planRead()
	return nil
}

// planRead settles the columns read: those a check needs. A column of a
// type without text (a float, a time) is read only for its row checks.
func (fc *fileCheck) planRead() {
	need := map[int]bool{fc.timeCol: fc.timeCol >= 0, fc.subjectCol: fc.subjectCol >= 0}
	for _, j := range fc.qiCols {
		need[j] = true
	}
	for j, fld := range fc.sch.Fields() {
		text := hasText(fld.Type) && (fc.sets[j] != nil || !fc.exempt[j])
		if text || need[j] || fc.forms[j] != nil {
			fc.cols = append(fc.cols, j)
			fc.text = append(fc.text, text)
		}
	}
}

// fileCheck is the checks of one published file: what each column is
// checked for, and the row checks' columns.
type fileCheck struct {
	vr  *verifier
	dv  *report.Verification
	loc string
	b   *rules.Binding
	sch *arrow.Schema

	expected map[string]*rules.BoundColumn // the policy's output columns
	// per column: its detectors, whether it is exempt from the identifier
	// check, the form its transform writes and the source column whose
	// short values are looked for in it
	sets        []*detect.Set
	exempt      []bool
	forms       []transforms.OutputForm
	shortSource []string
	cols        []int  // the columns read: those some check needs
	text        []bool // per column read: whether its values are scanned (pii, identifier)

	gone       map[string]bool // erased subjects as the destination writes them
	subjectCol int
	timeCol    int
	cut        int64
	cutNow     time.Time
	rc         *riskClasses
	qiCols     []int

	rgStart []int64   // per row group, the rows of the file before it
	scans   []*rgScan // per row group, from its task until recorded
}

// find records a finding of the file.
func (fc *fileCheck) find(check, column string, rg int, n int64, format string, args ...any) {
	fc.dv.Findings = append(fc.dv.Findings, report.Finding{Check: check, File: fc.loc, Column: column, RowGroup: rg, Values: n, Msg: fmt.Sprintf(format, args...)})
}

// checkSchema is the schema check: the policy's output columns, no more,
// no fewer, with names that cannot be taken one for another.
func (fc *fileCheck) checkSchema(dst *rules.Destination, mf *output.ManifestFile) {
	if err := dataerr.CheckColumnNames(fc.loc, fc.sch); err != nil {
		// the columns would be read by name, one in place of the other
		var de *dataerr.Error
		errors.As(err, &de)
		fc.find("schema", "", -1, 0, "%v", de.Err)
	}
	fc.expected = map[string]*rules.BoundColumn{}
	if fc.b == nil {
		fc.find("schema", "", -1, 0, "dataset %q is not sent to destination %q by the policy", mf.Dataset, dst.Name)
	} else {
		for name, bc := range fc.b.Columns {
			if !bc.Spec.Drops {
				fc.expected[name] = bc
			}
		}
	}
	present := map[string]bool{}
	for _, fld := range fc.sch.Fields() {
		present[fld.Name] = true
		if _, ok := fc.expected[fld.Name]; !ok && fc.b != nil {
			fc.find("schema", fld.Name, -1, 0, "the policy promises no column %q in dataset %q of destination %q", fld.Name, mf.Dataset, dst.Name)
		}
	}
	for _, name := range sortedKeys(fc.expected) {
		if !present[name] {
			fc.find("schema", name, -1, 0, "the policy's column %q is missing", name)
		}
	}
}

// planColumns settles what each column is checked for: its detectors
// (pii), the form of what its transform writes (pseudonym) and, for an
// identifier column's output, the source column whose short values are
// looked for in it as whole values (identifier).
func (fc *fileCheck) planColumns() error {
	n := fc.sch.NumFields()
	fc.sets, fc.exempt = make([]*detect.Set, n), make([]bool, n)
	fc.forms, fc.shortSource = make([]transforms.OutputForm, n), make([]string, n)
	for j, fld := range fc.sch.Fields() {
		var err error
		fc.sets[j], fc.exempt[j], err = columnChecks(fc.expected[fld.Name], fc.vr.opt.Strict)
		if err != nil {
			return fmt.Errorf("%s: column %q: %w", storage.QuoteLocation(fc.loc), fld.Name, err)
		}
		if bc := fc.expected[fld.Name]; bc != nil && bc.Transform != nil {
			fc.forms[j], _ = bc.Transform.(transforms.OutputForm)
		}
		if fc.b != nil && !fc.exempt[j] {
			if c := fc.b.Dataset.Column(fld.Name); c != nil && c.Type != nil && (c.Type.Category == rules.DirectIdentifier || c.Type.Category == rules.DeviceIdentifier) {
				fc.shortSource[j] = fc.b.Dataset.Name + "." + fld.Name
			}
		}
	}
	return nil
}

// planRows settles the row checks' columns: the subject column and the
// erased subjects as this destination writes them (erasure), the time
// column and its cut-off (retention), the quasi-identifiers whose classes
// are counted (risk).
func (fc *fileCheck) planRows(ctx context.Context, dst *rules.Destination, mf *output.ManifestFile, risk map[string]*riskClasses) error {
	vr, b, sch := fc.vr, fc.b, fc.sch
	fc.subjectCol, fc.timeCol = -1, -1
	fc.cutNow = mf.Now
	if !vr.opt.Now.IsZero() {
		fc.cutNow = vr.opt.Now
	}
	if b == nil {
		return nil
	}
	var err error
	if fc.gone, err = vr.erased.forBinding(ctx, dst, b); err != nil {
		return err
	}
	if idx := sch.FieldIndices(b.Dataset.Subject); fc.gone != nil && len(idx) > 0 {
		fc.subjectCol = idx[0] // a missing subject column is a schema finding
	}
	if j, c, ok, err := retentionBound(vr.opt.Mem, b, sch, fc.cutNow); errors.Is(err, errUnreadableTime) {
		fc.find("retention", sch.Field(j).Name, -1, 0, "%v: the run writes instants there, so the rows' ages cannot be checked", err)
	} else if err != nil {
		return fmt.Errorf("%s: %w", storage.QuoteLocation(fc.loc), err)
	} else if ok {
		fc.timeCol, fc.cut = j, c
	}
	if len(b.QuasiIdentifiers) == 0 {
		return nil
	}
	if fc.rc = risk[mf.Dataset]; fc.rc == nil {
		fc.rc = &riskClasses{binding: b, tally: classes.NewTally(vr.opt.ScratchDir, vr.opt.TallyLimit)}
		vr.tallies = append(vr.tallies, fc.rc.tally)
		risk[mf.Dataset] = fc.rc
	}
	for _, q := range b.QuasiIdentifiers {
		if idx := sch.FieldIndices(q); len(idx) > 0 {
			fc.qiCols = append(fc.qiCols, idx[0])
		}
	}
	if len(fc.qiCols) != len(b.QuasiIdentifiers) {
		fc.rc.incomplete = true
		fc.qiCols = nil
	}
	return nil
}
