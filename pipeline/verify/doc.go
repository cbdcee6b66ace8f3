// Package verify is deid verify: independent checks of published outputs
// against the policy, reading the outputs (and, for identifiers, the
// sources) again:
//
//   - schema: every output file has exactly the columns the policy promises
//     for its dataset in its destination;
//   - pii: no output column carries what the detectors recognise, where the
//     policy says none may remain: a scrubbed column is checked with its
//     scrub detectors; with Strict, every text column but pseudonyms is
//     checked with every validating detector (a pseudonym's 32 hex
//     characters often hold digit runs that look like phone numbers), but
//     the ip detector on generalize_ip's network prefixes;
//   - pseudonym: every non-NULL value of a column the policy pseudonymizes
//     is of the pseudonym's form, as the transform declares it
//     (transforms.OutputForm: 2·bytes lowercase hex characters): a raw id,
//     a truncated or otherwise written value is a finding, named by its row,
//     never shown;
//   - identifier: no raw value of a source identifier column (direct or
//     device identifiers) appears in any output column, as a whole value or
//     as a word of a text; a value shorter than minIdentifierLen is looked
//     for as a whole value in the output column written from its own
//     source column only, and reported when at least MinShortDistinct
//     distinct ones appear there. The source values go into a blocked Bloom
//     filter over keyed hashes (xxh3 with a random seed each run), sized by
//     the sources' distinct values (10 bits each, about 1 % false
//     positives; by their rows past maxDistinctExact), beside the set of
//     their lengths (a word of another length is not looked up) and, up to
//     maxDistinctExact, their sorted 128-bit hashes (a hit is a candidate
//     only if its whole hash is one of them); candidates are then
//     confirmed exactly by a second read of the sources' identifier
//     columns, so only real matches are reported. A column the policy deliberately keeps raw
//     (keep with allow) is exempt unless Strict;
//   - erasure: no row of a subject on the dataset's erasure lists, looked
//     for as the destination writes the subject column (its transform, a
//     pseudonym say, applied to the lists' ids);
//   - retention: no time before the retention cut-off, measured from the
//     now of the run that wrote the file (or Options.Now), compared as
//     the destination writes the time column (kept or truncated).
//
// Findings name the destination, file, column and row group, and never the
// values themselves.
//
// The checks run on the engine's scheduler (internal/engine): a file's row
// groups are scanned on Options.Workers goroutines, each reading only the
// columns some check needs, and their findings are recorded in row-group
// order, so the result is the same with any number of workers.
//
// It never imports the engine (pipeline): it checks what a run published
// from the policy and the outputs alone, as an auditor would.
package verify
