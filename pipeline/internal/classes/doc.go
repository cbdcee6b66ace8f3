// Package classes counts the equivalence classes of quasi-identifiers that
// min_k enforces: the class key of a row (a seedless 128-bit hash, so every
// run, shard and deid verify agree), the tally that spills to sorted runs
// in the scratch directory past a bounded number of classes, the counts of
// one destination's dataset with the fingerprints of its small classes, and
// the file in which the shards of a run exchange their counts.
//
// It never imports the engine (pipeline) or transforms; rules only for the
// binding whose classes it counts.
package classes
