// Package pipeline executes a compiled policy (rules.Plan): it lists the
// input files, reads each once in small Arrow record batches, applies the
// row rules (retention, erasure) and, per destination, the column
// transforms, writes Parquet, and publishes atomically with a manifest and a
// report. It holds no policy semantics of its own.
//
// Data flow and guarantees:
//
//   - Before any data is read, every input file's footer is checked against
//     the policy: an unclassified, missing, drifted or unprocessable column
//     stops the run with an error naming the file (fail closed).
//   - Work is split into (file, row group) tasks run by a pool of workers.
//     Each task decodes its row group in batches of Options.BatchSize rows
//     (memory is bounded by batch size × workers plus one encoded output row
//     group per worker, not by file size) and encodes its share of every
//     destination's output as a separate Parquet part (in memory, or in
//     the scratch folder past a budget). Parts are spliced into the output
//     file in row group order as soon as those before them are, and the
//     file's last task writes the footer: the bytes do not depend on the
//     number of workers or on scheduling.
//   - Outputs are staged under <output>/.deid-staging/<run id>/ with the
//     run's report and the new manifest; when every task of every file
//     succeeded, a commit record listing every move (pipeline/output) is written
//     under the output's publish lock: that is the commit point, and a
//     crash after it is completed by the next holder of the lock. A failed
//     run publishes nothing (docs/design/architecture.md, "The commit
//     protocol").
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/arrowpool"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// Options control how a plan runs. They never change what is written,
// except Writer and BatchSize, which shape the Parquet encoding.
type Options struct {
	// Store reaches every location the plan names; nil means a
	// storage.Router (local paths and gs:// URIs).
	Store storage.Store
	// Workers is the number of concurrent tasks; 0 means the number of CPUs.
	Workers int
	// BatchSize is the number of rows decoded at a time; 0 means 65,536,
	// which measured fastest on the bench's 1M- and 10M-row tables (against
	// 32,768 and 131,072): pseudonymize finds more repeats in a larger batch
	// and dictionaries of up to a batch of entries are read as dictionaries,
	// while a batch's columns still mostly stay in cache.
	BatchSize int
	// Mem allocates Arrow memory; nil means a pool that gives decoded
	// batches' buffers back to the next ones (arrowpool), sized by Workers.
	Mem memory.Allocator
	// Logger receives progress and decisions; nil discards them.
	Logger *slog.Logger
	// Progress, when set, is called as rows are processed; one call at a
	// time, from the workers' goroutines.
	Progress func(Progress)
	// StaleStaging, when negative, keeps the staging folders other runs
	// left (see cleanStaging): a run then neither removes nor completes
	// them as it starts. Otherwise a staging folder whose run's lease is
	// free is settled at once, whatever its age.
	StaleStaging time.Duration
	// RunID names the run; empty means a new id from the clock.
	RunID string
	// Writer shapes the output Parquet.
	Writer parquetio.WriterOptions
	// ScratchDir holds encoded parts until they are spliced; empty means the
	// system's temporary directory.
	ScratchDir string
	// Clock returns the current time, for timings and the run id; nil means
	// time.Now. Retention uses the plan's Now, never this clock.
	Clock func() time.Time
	// Incremental skips the outputs a destination already holds from the
	// same unchanged input, policy, key and erasure and consent lists (see
	// skipCommitted); scheduled jobs run this way unless forced. Retention
	// of rows in outputs kept this way is the retain job's work.
	Incremental bool
	// Shard, when set, runs one shard of a sharded run (see ShardsDir): its
	// share of the frozen input list, published without a manifest until
	// MergeShards commits the run.
	Shard *Shard
	// ShardWait bounds how long a shard of a run enforcing min_k waits for
	// the other shards' class counts between its two passes; 0 means
	// DefaultShardWait. The shards of such a run must run at the same time.
	ShardWait time.Duration
	// PublishWait bounds how long the commit to an output waits for its
	// publish lock while another run or deid retain commits there; 0 means
	// DefaultPublishWait.
	PublishWait time.Duration
	// Inputs, when set, selects the source files to read by location: a
	// run re-deriving some published files (deid retain) reads only their
	// inputs, and the manifest keeps the entries of the others.
	Inputs func(location string) bool
	// Critical, when set, is called as a commit that must not be cut short
	// starts (the publish of every destination of a run, the commit of a
	// merge), and the commit calls the end it returns once it is done, its
	// publish locks released. deid's signal handling holds its forced exit
	// while a commit is open. nil means nothing is called.
	Critical func() (end func())
	// BeforePublish, when set, is called for each destination of a run
	// (not a shard's) under its output's publish lock, after its files are
	// staged and before any is published, with the staging folder: the
	// file of dst.Files[i] is staged at storage.Join(staging,
	// dst.Files[i].Path). An error fails the run and nothing of that
	// destination is published (deid retain checks that a re-derived file
	// holds no row its published version did not).
	BeforePublish func(ctx context.Context, dst *report.Destination, staging string) error

	// stopAtCommitPoint makes a commit stop right after it wrote its
	// commit record, as a kill there would (tests of the recovery).
	stopAtCommitPoint bool
	// readAll decodes every row before the row rules apply, instead of
	// letting the reader skip the removed rows' values (tests compare the two).
	readAll bool
	// noStream keeps every part until it is spliced whole, instead of
	// letting the next row group's part stream into the output (tests
	// compare the two).
	noStream bool
	// noLazy reads only dictionaries of at most a batch as Arrow
	// dictionaries (tests compare the two).
	noLazy bool
	// lazyRead, when set, counts the column chunks read as large
	// dictionaries (tests).
	lazyRead *atomic.Int64
	// spare, when not 0, overrides whether a CPU is idle for a task's
	// columns: 1 always, -1 never (tests).
	spare int
	// streamed, when set, counts the parts that streamed (tests).
	streamed *atomic.Int64
	// partMemory bounds the bytes of encoded parts held in memory before
	// they are spliced; 0 means scratch.DefaultMemory, negative none (tests).
	partMemory int64
	// classLimit is how many equivalence classes a min_k count holds in
	// memory before spilling to ScratchDir; 0 means
	// classes.DefaultTallyLimit (tests set it tiny).
	classLimit int
}

// Progress reports how far a run is.
type Progress struct {
	RowsDone, RowsTotal int64
	FilesDone, Files    int
}

func (o *Options) defaults() {
	if o.Store == nil {
		o.Store = storage.NewRouter()
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1 << 16
	}
	if o.Mem == nil {
		// decoded batches' buffers go back to the next batch (see arrowpool)
		o.Mem = arrowpool.New(16 << 20 * o.Workers)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.ScratchDir == "" {
		o.ScratchDir = os.TempDir()
	}
}

// critical opens a commit that must not be cut short (see
// Options.Critical) and returns its end.
func (o *Options) critical() (end func()) {
	if o.Critical == nil {
		return func() {}
	}
	return o.Critical()
}

// runner is the state of one run.
type runner struct {
	plan *rules.Plan
	opt  Options
	rep  *report.Run
	// releaseStaging gives up the run's staging leases (holdStaging)
	releaseStaging func()
	// stagingLeases are the run's staging leases by output (holdStaging)
	stagingLeases sync.Map
	inputs        []*inputFile
	erasure       map[string]*transforms.SubjectSet
	// consent and births hold the destination-level row rules' lists
	consent map[string][]consentRule
	births  map[string]*transforms.SubjectValues
	// withheld are the children rule's records of withheld rows (withheld.go)
	withheld withheldRecords
	// classes count, per destination and dataset enforcing min_k, the
	// equivalence classes (the first pass of a run); counting is set
	// during that pass
	classes  map[string]*classes.Counts
	counting bool
	scratch  string
	partMem  scratch.Budget // bytes of parts held in memory
	pool     engine.Pool    // the workers running row-group tasks
	// progressMu makes Options.Progress calls one at a time
	progressMu sync.Mutex
	dryRun     bool
	// skipErasure leaves erasure lists unread (validation only)
	skipErasure bool

	// retryBase is the store's retry count when the run started
	retryBase int64

	rowsDone  atomic.Int64
	filesDone atomic.Int64
	rowsTotal int64
}

func newRunner(plan *rules.Plan, opt Options, command string) *runner {
	opt.defaults()
	start := opt.Clock()
	if opt.RunID == "" {
		opt.RunID = output.NewRunID(start)
	}
	rep := &report.Run{
		Format: report.FormatV1, Deid: report.BuildPtr(), RunID: opt.RunID, Command: command,
		Policy: report.Policy{File: plan.Policy.File, Name: plan.Policy.Name, SHA256: plan.Policy.SHA256},
		Now:    plan.Now, StartedAt: start.UTC(),
		Settings:     report.Settings{Workers: opt.Workers, BatchSize: opt.BatchSize},
		Keys:         []report.Key{},
		Datasets:     []*report.Dataset{},
		Destinations: []*report.Destination{},
	}
	plan, ended := plan.WithoutEnded()
	for _, w := range append(slices.Clip(plan.Warnings), ended...) {
		rep.Warn(w) // each concerns the destinations it names (report.Run.ScopeOf)
	}
	for _, k := range plan.Keys {
		rk := report.Key{Name: k.Name(), Fingerprint: k.Fingerprint(), Allow: k.Allowed()}
		for _, d := range plan.Destinations {
			if d.Key == k {
				rk.Destinations = append(rk.Destinations, d.Name)
			}
		}
		rep.Keys = append(rep.Keys, rk)
	}
	r := &runner{plan: plan, opt: opt, rep: rep, pool: engine.Pool{Workers: opt.Workers}, erasure: map[string]*transforms.SubjectSet{},
		consent: map[string][]consentRule{}, births: map[string]*transforms.SubjectValues{}, classes: map[string]*classes.Counts{}, dryRun: command == "plan"}
	if c, ok := opt.Store.(storage.RetryCounter); ok {
		r.retryBase = c.Retries()
	}
	for _, ds := range plan.Datasets {
		r.datasetReport(ds)
	}
	for _, d := range plan.Destinations {
		r.destReport(d)
	}
	return r
}

// datasetReport returns (creating it once) the report entry of a dataset.
func (r *runner) datasetReport(ds *rules.Dataset) *report.Dataset {
	r.rep.Lock()
	defer r.rep.Unlock()
	for _, d := range r.rep.Datasets {
		if d.Name == ds.Name {
			return d
		}
	}
	d := &report.Dataset{Name: ds.Name, Source: ds.Source, Files: []*report.InputFile{}, Removed: zeroCounts()}
	d.Retention = RetentionReport(ds.DatasetDecl, ds.Cutoff, ds.FallbackCutoff, ds.Latest)
	r.rep.Datasets = append(r.rep.Datasets, d)
	return d
}

// destReport returns (creating it once) the report entry of a destination.
func (r *runner) destReport(dst *rules.Destination) *report.Destination {
	r.rep.Lock()
	defer r.rep.Unlock()
	for _, d := range r.rep.Destinations {
		if d.Name == dst.Name {
			return d
		}
	}
	d := &report.Destination{Name: dst.Name, Purpose: dst.Purpose, Output: dst.Output, Files: []*report.OutputFile{},
		Datasets: []*report.Treatment{}, Removed: map[string]int64{}}
	for _, reason := range transforms.DestinationReasons() {
		d.Removed[reason.String()] = 0
	}
	for _, b := range dst.Bindings {
		if b.MinK > 0 {
			d.Removed[transforms.ReasonSmallClass.String()] = 0
		}
	}
	if dst.Key != nil {
		d.KeyFingerprint = dst.Key.Fingerprint()
		d.KeyAllow = keyAllow(r.plan.Policy, dst.Name)
	}
	for _, b := range dst.Bindings {
		tr := &report.Treatment{Dataset: b.Dataset.Name}
		for _, c := range b.Dataset.Columns {
			bc := b.Columns[c.Name]
			tr.Columns = append(tr.Columns, report.Column{Name: c.Name, SemanticType: c.Type.Name, Transform: bc.Spec.Name,
				Params: paramsForReport(bc), Result: bc.Spec.Result.String(), Meaning: bc.Meaning, Default: bc.Default, Allow: bc.Allow,
				Floor: floorOf(dst.Purpose, c.Type)})
		}
		treatmentReport(tr, dst, b)
		d.Datasets = append(d.Datasets, tr)
	}
	r.rep.Destinations = append(r.rep.Destinations, d)
	return d
}

func zeroCounts() map[string]int64 {
	m := map[string]int64{}
	for _, reason := range transforms.Reasons() {
		m[reason.String()] = 0
	}
	return m
}

// Run executes the plan and publishes its outputs. The report is returned
// also when the run fails; it is written to each destination only on success.
func Run(ctx context.Context, plan *rules.Plan, opt Options) (*report.Run, error) {
	ctx = underOutputs(ctx, plan) // writes below an output never follow links
	r := newRunner(plan, opt, "run")
	err := r.run(ctx)
	defer func() {
		if r.releaseStaging != nil {
			r.releaseStaging() // after the commit or the staging's removal
		}
	}()
	r.countRetries()
	r.rep.Finish(r.opt.Clock(), err)
	if err == nil {
		// once every file is staged, publishing is short and is not
		// interrupted: a cancellation now, or an exit forced by a signal
		// (Options.Critical), would leave files replaced without a manifest
		// and some destinations committed and others not
		publish := r.publish
		if r.opt.Shard != nil {
			publish = r.publishShard
		}
		end := r.opt.critical()
		if err = publish(context.WithoutCancel(ctx)); err != nil {
			r.abortStaging(context.WithoutCancel(ctx))
		}
		end()
		r.countRetries()
		r.rep.Finish(r.opt.Clock(), err)
	}
	return r.rep, linkError(err)
}

// Plan is a dry run: it lists and checks the inputs, loads the erasure lists
// and evaluates the row rules on every row, reading only the rules'
// columns, and reports the same counts a run would. It writes nothing.
func Plan(ctx context.Context, plan *rules.Plan, opt Options) (*report.Run, error) {
	r := newRunner(plan, opt, "plan")
	err := r.run(ctx)
	r.countRetries()
	r.rep.Finish(r.opt.Clock(), err)
	return r.rep, err
}

func (r *runner) run(ctx context.Context) (err error) {
	log := r.opt.Logger
	log.Info("run starting", "run_id", r.opt.RunID, "policy", r.plan.Policy.File, "now", r.plan.Now, "workers", r.opt.Workers)
	if !r.dryRun {
		scratch.RemoveStale(r.opt.ScratchDir, log) // also when this run turns out to have nothing to do
	}
	if err := r.listInputs(ctx); err != nil {
		return err
	}
	if err := r.checkOutputLinks(ctx); err != nil {
		return err
	}
	if r.opt.Incremental && !r.dryRun {
		if err := r.skipCommitted(ctx); err != nil {
			return err
		}
	}
	if err := r.checkOutputs(ctx); err != nil {
		return err
	}
	if !r.dryRun {
		release, err := r.holdStaging(ctx)
		if err != nil {
			return err
		}
		r.releaseStaging = release
		r.cleanStaging(ctx)
	}
	for _, in := range r.inputs {
		r.rowsTotal += in.rows
	}
	log.Info("inputs checked", "files", len(r.inputs), "rows", r.rowsTotal)
	if !r.dryRun {
		r.partMem.Limit = r.opt.partMemory
		if r.partMem.Limit == 0 {
			r.partMem.Limit = scratch.DefaultMemory
		}
		var folder *scratch.Folder
		folder, err = scratch.NewFolder(r.opt.ScratchDir, r.opt.RunID, log) // the err the deferred abort reads
		if err != nil {
			return err
		}
		r.scratch = folder.Path
		defer folder.Remove()
		defer func() {
			if err != nil {
				r.abortStaging(context.WithoutCancel(ctx))
			}
		}()
	}
	if len(r.classes) > 0 {
		// first pass: count the equivalence classes of every destination
		// enforcing min_k, so the second can drop the rows of small ones
		log.Info("counting equivalence classes for min_k", "destinations", len(r.classes))
		for _, c := range r.classes {
			c.Tally = classes.NewTally(r.scratch, r.opt.classLimit)
			defer c.Tally.Close()
		}
		r.counting = true
		err := r.process(ctx)
		r.counting = false
		if err != nil {
			return err
		}
	}
	if _, ok := enforcesMinK(r.plan); ok && r.opt.Shard != nil && !r.dryRun {
		// a class can span shards: add every shard's counts (shardclasses.go);
		// a shard without files of the dataset still writes its (empty) counts
		if err := r.exchangeClasses(ctx); err != nil {
			return err
		}
	} else {
		for _, c := range r.classes {
			if err := c.Finish(nil); err != nil {
				return err
			}
		}
	}
	if len(r.classes) > 0 {
		for _, k := range slices.Sorted(maps.Keys(r.classes)) {
			c := r.classes[k]
			rows, classes := c.SmallRows()
			log.Info("equivalence classes counted", "destination", c.Dst, "dataset", c.Dataset, "classes", c.Classes,
				"min_k", c.MinK, "classes_below", classes, "rows_below", rows, "runs_spilled", c.Spills)
		}
	}
	if err := r.process(ctx); err != nil {
		return err
	}
	r.warnEmptied()
	return nil
}

// sortedOutputs orders a destination's files by path.
func sortedOutputs(files []*report.OutputFile) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// Validate checks, without reading data, that every source file matches the
// policy: each column classified, none missing or drifted, every transform
// able to take its column, that no symbolic link stands where a run would
// write below an output (checkOutputLinks, which only looks at names), and
// that erasure lists exist. It returns the number of files checked.
func Validate(ctx context.Context, plan *rules.Plan, opt Options) (int, error) {
	r := newRunner(plan, opt, "validate")
	r.skipErasure = true
	if err := r.listInputs(ctx); err != nil {
		return 0, err
	}
	if err := r.checkOutputLinks(ctx); err != nil {
		return 0, err
	}
	for _, ds := range r.plan.Datasets { // without the ended ones
		for _, e := range ds.Erasure {
			if _, err := r.opt.Store.Stat(ctx, e.List); err != nil {
				return 0, dataerr.Errorf(e.List, "", "erasure list of dataset %q (%s): %w", ds.Name, e.Pos, err)
			}
		}
	}
	return len(r.inputs), nil
}

// countRetries records in the report the storage requests retried so far.
func (r *runner) countRetries() {
	c, ok := r.opt.Store.(storage.RetryCounter)
	if !ok {
		return
	}
	n := c.Retries() - r.retryBase
	r.rep.Lock()
	r.rep.StorageRetries = n
	r.rep.Unlock()
}

// inputOf identifies the version of a source file read.
func inputOf(in *inputFile) report.Input {
	a := in.match.Attrs
	return report.Input{Location: a.Location, Size: a.Size, ModTime: a.ModTime.UTC(), Generation: a.Generation, CRC32C: crcHex(a), SHA256: in.sha256}
}

// crcHex is an object's CRC32C in hex, or "" when the store keeps none.
func crcHex(a storage.Attrs) string {
	if !a.HasCRC32C {
		return ""
	}
	return fmt.Sprintf("%08x", a.CRC32C)
}
