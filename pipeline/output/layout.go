package output

import "github.com/deidproject/deid/pipeline/lock"

// Layout of a destination's output folder.
const (
	// StagingDir holds a run's files until they are published.
	StagingDir = ".deid-staging"
	// ManifestFile lists the committed files; it is written last.
	ManifestName = "_manifest.json"
	// ReportsDir holds one folder per run with its report.
	ReportsDir = "_reports"
	// RetainDir is deid retain's work folder in a dataset root or an output
	// folder; a journal in it is an interrupted retain run that only deid
	// retain may complete.
	RetainDir = ".deid-retain"
	// RetainJournal is the journal's name in RetainDir.
	RetainJournal = "journal.json"
)

// OwnNames are the names deid writes in every destination output, besides
// the folders of its datasets.
var OwnNames = []string{ManifestName, ReportsDir, StagingDir, RetainDir, ShardsDir, lock.Dir}

// ShardsDir holds, in a destination's output, the frozen input list and the
// shard reports of sharded runs, by run id, until they are merged.
const ShardsDir = ".deid-shards"
