package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/lists"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// loadErasure reads the dataset's erasure lists into one subject set whose
// kind (integer or string) is the subject column's, taken from the first
// input file. Ids are matched strictly by that kind: a list of the other
// kind is an error, not a conversion. NULL and empty ids are ignored.
func (r *runner) loadErasure(ctx context.Context, ds *rules.Dataset, first *inputFile, dsr *report.Dataset) error {
	if len(ds.Erasure) == 0 {
		return nil
	}
	subjectType := first.schema.Field(first.readCols[first.subjectPos]).Type
	kind, _ := transforms.KindOf(subjectType)
	var ints []int64
	var strs []string
	for _, e := range ds.Erasure {
		sum, attrs, err := r.hashFile(ctx, e.List)
		if errors.Is(err, storage.ErrNotExist) {
			return dataerr.Errorf(e.List, "", "erasure list of dataset %q (%s) does not exist", ds.Name, e.Pos)
		}
		if err != nil {
			return fmt.Errorf("dataset %q: erasure list: %w", ds.Name, err)
		}
		before := len(ints) + len(strs)
		err = lists.ReadSubjectList(ctx, r.opt.Store, r.opt.Mem, lists.SubjectList{What: "erasure list", Location: e.List, Column: e.Column, Pos: e.Pos,
			Against: first.match.Location, Subject: ds.Subject}, kind, &ints, &strs)
		if err != nil {
			return err
		}
		if err := lists.CheckUnchanged(ctx, r.opt.Store, "erasure list", e.List, attrs); err != nil {
			return err
		}
		dsr.Erasure = append(dsr.Erasure, report.ErasureList{Location: e.List, Column: e.Column, Size: attrs.Size, SHA256: sum,
			Generation: attrs.Generation, CRC32C: crcHex(attrs),
			Entries: int64(len(ints) + len(strs) - before)})
	}
	var set *transforms.SubjectSet
	if kind == transforms.KindInteger {
		set = transforms.NewIntSubjectSet(ints)
	} else {
		set = transforms.NewStringSubjectSet(strs)
	}
	for i := range dsr.Erasure {
		dsr.Erasure[i].Subjects = int64(set.Len()) // distinct over all lists of the dataset
	}
	r.erasure[ds.Name] = set
	return nil
}

// hashFile returns the SHA-256 and the attributes of a stored file.
func (r *runner) hashFile(ctx context.Context, location string) (string, storage.Attrs, error) {
	return lists.HashFile(ctx, r.opt.Store, location)
}
