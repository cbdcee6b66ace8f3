package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// Files named on the command line for deid to write (retain --report,
// report render -o) are checked before the command does anything, and
// written atomically (a temporary file renamed into place), so that a
// mistyped path cannot put a report over the raw lake: see checkOutFile.

// parquetMagic opens and ends every Parquet file.
var parquetMagic = []byte("PAR1")

// checkOutFile refuses (a usage error, or the policy's ErrPolicy) the file
// path that flag names for deid to write when it is a symbolic link,
// exists as anything but a regular file, is a Parquet file, or, with a
// policy pol, is, lies inside or contains a location the policy reads.
func checkOutFile(flag, path string, pol *rules.Policy) error {
	if storage.IsURI(path) {
		return usageError("%s %q: write the file to a local path", flag, path)
	}
	if pol != nil {
		if err := pol.CheckOutsideReads(flag, path); err != nil {
			return err
		}
	}
	return checkOutTarget(flag, path)
}

// checkOutTarget refuses a link, a non-regular file or a Parquet file at
// path; a missing path is fine.
func checkOutTarget(flag, path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s %q: %w", flag, path, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return usageError("%s %q is a symbolic link (to %q): deid does not write through links; name the file itself", flag, path, target)
	case !fi.Mode().IsRegular():
		return usageError("%s %q is not a regular file (%s): name a file to write", flag, path, fi.Mode().Type())
	}
	parquet, err := isParquet(path)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flag, path, err)
	}
	if parquet {
		return usageError("%s %q is a Parquet file: deid does not write a report over data; name another file", flag, path)
	}
	return nil
}

// isParquet reports whether the regular file at path starts with the
// Parquet magic.
func isParquet(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(parquetMagic))
	if _, err := io.ReadFull(f, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, err
	}
	return bytes.Equal(head, parquetMagic), nil
}

// writeOutFile checks the target again (checkOutTarget: it may have changed
// while the command ran) and writes b to path atomically.
func writeOutFile(ctx context.Context, flag, path string, b []byte) error {
	if err := checkOutTarget(flag, path); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flag, path, err)
	}
	// the folder's own path is the operator's: only the file is kept free of links
	ctx = storage.WithRoots(ctx, filepath.Dir(abs))
	return storage.WriteFile(ctx, storage.Local{}, abs, b)
}
