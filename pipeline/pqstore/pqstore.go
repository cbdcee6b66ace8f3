// Package pqstore opens the Parquet files of a store: the bridge between
// the stores (storage) and the Parquet codec (parquetio), which reads an
// io.ReaderAt and knows no store. It never imports the engine (pipeline),
// rules or transforms.
package pqstore

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/storage"
)

// Open opens the Parquet file at location in st and reads its footer. The
// attributes are the object's as opened (size, generation, checksum): what
// the File reads is that version, whatever replaces it meanwhile. Closing
// the File closes the object.
func Open(ctx context.Context, st storage.Store, location string, mem memory.Allocator) (*parquetio.File, storage.Attrs, error) {
	src, err := st.Open(ctx, location)
	if err != nil {
		return nil, storage.Attrs{}, fmt.Errorf("open %s: %w", location, err)
	}
	f, err := parquetio.Open(src, src.Size(), location, mem)
	if err != nil {
		return nil, storage.Attrs{}, err
	}
	return f, src.Attrs(), nil
}
