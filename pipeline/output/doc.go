// Package output is the layout and commit protocol of a destination's
// output folder: its own names (staging, reports, manifest, retain's work
// folder), the manifest, the staged commit and its record, the publish
// lock and staging leases, the checks of the paths and run ids it reads,
// and the report chain with deid report check. Whoever writes to an output
// (a run, a merge of shards, deid retain) commits through it.
//
// It never imports the engine (pipeline), rules or transforms (rules only
// reaches it through dataerr's quoting of column names): what it checks
// and moves is files and documents.
//
// The commit of a run to a destination output. Everything the commit makes
// visible is staged first in the run's staging folder,
// <output>/.deid-staging/<run id>/: the data files at their paths, then,
// under the output's publish lock, the report (report.json, report.html)
// and the merged manifest in its .deid-commit folder. Then the commit
// record, .deid-commit/commit.json, is written beside them: it lists every
// move to make, the manifest last. Writing it is the commit
// point:
//
//   - killed before the record exists, the run made nothing visible: the
//     next run removes its staging folder (roll back) as soon as the run's
//     staging lease shows that its holder is gone;
//   - killed after, the next run that takes the publish lock (or starts,
//     see SettleStaging) replays the record (roll forward): a staged file
//     that is still there is moved into place (a move is atomic on local
//     disk; on object storage a copy then a delete, and a copy that is
//     done again is the same object), one that is gone was moved already.
//     Replaying is idempotent.
//
// So a report is never where a committed one would be before its manifest
// is on its way: deid report check never has to guess whether a report
// without a manifest is a crash or an insertion.
//
// Staging leases. A run holds, for each destination output, a lease on its
// staging folder (lock.StagingPath) from before it stages its first file
// until it has committed or given up. A staging folder whose lease is free
// belongs to a run that was killed: the next run removes it at once (no
// commit record: nothing of it was made visible) or completes its commit
// (a commit record: see above).
package output
