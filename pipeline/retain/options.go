package retain

import (
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// Options are the inputs of Run besides the plan.
type Options struct {
	// Store reads and writes the datasets; nil means a storage.Router
	// (local disk and gs://), as a run's.
	Store storage.Store
	// Mem allocates Arrow memory; nil means the Go allocator.
	Mem memory.Allocator
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// DryRun decides and reports without changing anything (and without
	// taking the lock).
	DryRun bool
	// Workers is the number of row-group tasks run at once, as a run's;
	// 0 means the number of CPUs. It does not change the output.
	Workers int
	// BatchSize is the rows decoded at a time; 0 means 32768.
	BatchSize int64
	// LockStale is the lease of a run's retain locks: the run renews them
	// every third of it, and a lock whose holder stopped renewing it for
	// this long is taken over; 0 means one hour. A lock held by a process
	// of this host that no longer runs is taken over at once.
	LockStale time.Duration
	// Writer are the encoding settings of rewritten row groups.
	Writer parquetio.WriterOptions
	// RunID names the run; empty means one is made from the clock
	// (output.NewRunID, as a run's).
	RunID string
	// Clock returns the current time, for the report's times and the run
	// id; nil means time.Now. The locks' leases run on real time.
	Clock func() time.Time
	// ScratchDir holds re-encoded row groups until they are assembled,
	// past the bytes they may hold in memory; empty means the system's
	// temporary folder. A run's own folder in it is removed at the end.
	ScratchDir string

	// scratch is this run's folder in ScratchDir, and partMem the bytes of
	// parts held in memory (set by Run)
	scratch string
	partMem *scratch.Budget
	// hashSlots bounds the row groups that the checks of staged and
	// published files decode at once, to Workers across the run (set by
	// Run; eachRowGroup)
	hashSlots chan struct{}

	// failAt, when set, is called at each named step of the journal and
	// the swap (see failpoints); tests make it kill the process.
	failAt func(name string)
	// alterOutputRows, when set, is given each batch of kept rows that the
	// erasure from a published output re-encodes, and returns what is
	// encoded instead: tests make it change a value, as a bug would
	alterOutputRows func(arrow.RecordBatch) arrow.RecordBatch
	// Outputs, when set, is the policy compiled with its keys: the erased
	// subjects are then also removed from the destinations' published
	// outputs (see outputs.go).
	Outputs *rules.Plan
	// Critical, when set, is called as a commit starts (the journal, the
	// swaps it lists and its removal), and the commit calls the end it
	// returns once it is done, its locks released; deid's signal handling
	// holds its forced exit while a commit is open. nil means nothing is
	// called.
	Critical func() (end func())

	// predict, in a dry run that re-derives outputs, is the lake as the run
	// would leave it (predict.go)
	predict *prediction
}

// failpoints are the named steps of a run at which Options.failAt is
// called, in order: for each file staged (once every file of the dataset
// is, in the files' order), after the journal is written,
// after each move of an anonymized file, after each move of a file of
// isolated rows, after each swap or delete, after the journal is removed,
// after the work folder is removed.
var failpoints = []string{"staged", "journal-written", "anonymized-moved", "isolated-moved", "swapped", "journal-removed", "work-removed"}

// critical opens a commit that must not be cut short (see
// Options.Critical) and returns its end.
func (o *Options) critical() (end func()) {
	if o == nil || o.Critical == nil {
		return func() {}
	}
	return o.Critical()
}

func (o *Options) failpoint(name string) {
	if o != nil && o.failAt != nil {
		o.failAt(name)
	}
}
