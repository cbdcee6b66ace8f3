package parquetio

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// The support matrix of the lean reader: the physical types (as the Arrow
// types they are read as), encodings, codecs and page kinds it decodes
// itself. leanPlan dispatches on these tables, support_test.go writes a
// file with arrow-go for every cell of them (and for cells outside them,
// which fall back to arrow-go's pqarrow) and compares both readers, and
// docs/design/parquet.md is generated from SupportMatrix. What no table
// lists (nested columns, BOOLEAN, INT96, FIXED_LEN_BYTE_ARRAY, other
// encodings and codecs) is read by pqarrow, with every page checksum still
// verified (checkingReaderAt).

// leanTypes are the physical types the lean reader decodes, each with the
// Arrow types it may be read as, the layout of its values and the
// encodings it decodes in its chunks (a chunk lists every encoding its
// pages use, the levels' RLE included).
var leanTypes = []struct {
	physical  parquet.Type
	arrow     []arrow.Type
	kind      leanKind
	encodings []int32
}{
	{parquet.Types.Int32, []arrow.Type{arrow.INT32, arrow.UINT32, arrow.DATE32}, leanFixed4, leanIntEncodings},
	{parquet.Types.Int64, []arrow.Type{arrow.INT64, arrow.UINT64, arrow.TIMESTAMP}, leanFixed8, leanIntEncodings},
	{parquet.Types.Float, []arrow.Type{arrow.FLOAT32}, leanFixed4, leanBaseEncodings},
	{parquet.Types.Double, []arrow.Type{arrow.FLOAT64}, leanFixed8, leanBaseEncodings},
	{parquet.Types.ByteArray, []arrow.Type{arrow.STRING, arrow.BINARY}, leanBytes, append(leanBaseEncodings[:len(leanBaseEncodings):len(leanBaseEncodings)], encDeltaLength)},
}

// leanBaseEncodings are decoded for every type: PLAIN, both dictionary
// encodings, and RLE (the levels').
var leanBaseEncodings = []int32{encPlain, encPlainDict, encRLEDict, encRLE}

// leanIntEncodings add DELTA_BINARY_PACKED, which the format allows for
// INT32 and INT64 only.
var leanIntEncodings = append(leanBaseEncodings[:len(leanBaseEncodings):len(leanBaseEncodings)], encDeltaBinary)

// leanCodecs are the compression codecs the lean reader decompresses.
var leanCodecs = []compress.Compression{compress.Codecs.Uncompressed, compress.Codecs.Snappy, compress.Codecs.Zstd}

// leanPages are the page kinds the lean reader reads: data pages of both
// versions and dictionary pages.
var leanPages = []string{"DATA_PAGE", "DATA_PAGE_V2", "DICTIONARY_PAGE"}

// leanKindOf returns the layout of a column of physical type p read as
// Arrow type t, and the encodings the lean reader decodes in it, or false
// when it does not decode it.
func leanKindOf(p parquet.Type, t arrow.Type) (leanKind, []int32, bool) {
	for _, lt := range leanTypes {
		if lt.physical == p && oneOf(t, lt.arrow...) {
			return lt.kind, lt.encodings, true
		}
	}
	return 0, nil, false
}

// SupportRow is one physical type of the lean reader's support matrix,
// for documentation.
type SupportRow struct {
	// Physical is the Parquet physical type.
	Physical string
	// Arrow are the Arrow types it is read as.
	Arrow []string
	// Encodings are the encodings decoded in its chunks.
	Encodings []string
	// Codecs are the compression codecs decompressed.
	Codecs []string
	// Pages are the page kinds read.
	Pages []string
}

// SupportMatrix returns the lean reader's support matrix, one row per
// physical type, from the tables its dispatch reads.
func SupportMatrix() []SupportRow {
	var rows []SupportRow
	for _, lt := range leanTypes {
		row := SupportRow{Physical: lt.physical.String(), Pages: leanPages}
		for _, t := range lt.arrow {
			row.Arrow = append(row.Arrow, t.String())
		}
		for _, e := range lt.encodings {
			row.Encodings = append(row.Encodings, parquet.Encoding(e).String())
		}
		for _, c := range leanCodecs {
			row.Codecs = append(row.Codecs, c.String())
		}
		rows = append(rows, row)
	}
	return rows
}
