// Package lists reads the subject lists a policy names beside its datasets:
// erasure requests and legal holds (a column of subject ids, Parquet or
// CSV), consent withdrawals (subject, purpose, withdrawn_at), with the
// SHA-256 and attributes a report records and the check that a list did
// not change while it was read. Ids are read strictly as the kind (integer
// or string) of the subject column they are compared with: a list of the
// other kind is a data error, never a conversion.
//
// It never imports the engine (pipeline) or an output's layout (output),
// and takes from transforms only the kinds and values of ids: what a run
// makes of a list (its row filters) is the engine's.
package lists
