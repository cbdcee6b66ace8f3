package retain

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// A dry run predicts what the run would do to the outputs, re-derivations
// included. Erasing pseudonyms only needs the published files; re-deriving
// a partner's file needs its cleaned input, and the cleaned inputs of the
// datasets its rules read (the ages of a children rule). So a dry run that
// has an output to re-derive stages every file it would rewrite, as the
// run does, but in a scratch folder on local disk, and lets the
// re-derivation read the lake through a view (prediction) in which each
// such source file is its staged version and each file it would delete is
// gone; the re-derivation then runs as pipeline.Plan, which counts the
// rows each file would hold and writes nothing. The scratch folder is
// removed as the dry run ends.

// prediction is the lake as the run would leave it: a storage.Store that
// reads the staged versions of the files a run would rewrite, finds no
// file it would delete, and writes (staging only) to local scratch.
type prediction struct {
	storage.Store
	scratch string
	folder  *scratch.Folder
	mu      sync.Mutex
	staged  map[string]string // source location -> staged version
	gone    map[string]bool
}

// needsPrediction reports whether a dry run with outputs re-derives some
// destination's files: one carrying no form of a dataset's subject.
func needsPrediction(plan *rules.Plan) bool {
	if plan == nil {
		return false
	}
	for _, dst := range plan.Destinations {
		for _, b := range dst.Bindings {
			bc := b.Columns[b.Dataset.Subject]
			if bc == nil || bc.Spec.Drops || bc.Transform == nil || bc.Spec.Name != "keep" && bc.Spec.Name != "pseudonymize" {
				return true
			}
		}
	}
	return false
}

func newPrediction(base storage.Store, scratchDir string, log *slog.Logger) (*prediction, error) {
	folder, err := scratch.NewFolder(scratchDir, "retain-dry", log)
	if err != nil {
		return nil, err
	}
	return &prediction{Store: base, scratch: folder.Path, folder: folder, staged: map[string]string{}, gone: map[string]bool{}}, nil
}

func (p *prediction) close() { p.folder.Remove() }

// note records what the run would do to source file loc: replace it with
// staged, or delete it (staged "").
func (p *prediction) note(loc, staged string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if staged == "" {
		p.gone[loc] = true
	} else {
		p.staged[loc] = staged
	}
}

func (p *prediction) local(loc string) bool {
	return loc == p.scratch || strings.HasPrefix(loc, p.scratch+string(os.PathSeparator))
}

// view returns what stands at loc: the staged file (and true) or loc; an
// error for a file the run deletes.
func (p *prediction) view(loc string) (string, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone[loc] {
		return "", false, &os.PathError{Op: "open", Path: loc, Err: storage.ErrNotExist}
	}
	if s, ok := p.staged[loc]; ok {
		return s, true, nil
	}
	return loc, false, nil
}

func (p *prediction) Open(ctx context.Context, loc string) (storage.Reader, error) {
	if p.local(loc) {
		return storage.Local{}.Open(ctx, loc)
	}
	at, staged, err := p.view(loc)
	if err != nil {
		return nil, err
	}
	if !staged {
		return p.Store.Open(ctx, loc)
	}
	r, err := storage.Local{}.Open(ctx, at)
	if err != nil {
		return nil, err
	}
	a := r.Attrs()
	a.Location = loc
	return viewReader{Reader: r, attrs: a}, nil
}

func (p *prediction) Stat(ctx context.Context, loc string) (storage.Attrs, error) {
	if p.local(loc) {
		return storage.Local{}.Stat(ctx, loc)
	}
	at, staged, err := p.view(loc)
	if err != nil {
		return storage.Attrs{}, err
	}
	if !staged {
		return p.Store.Stat(ctx, loc)
	}
	a, err := storage.Local{}.Stat(ctx, at)
	a.Location = loc
	return a, err
}

func (p *prediction) List(ctx context.Context, prefix string, fn func(storage.Attrs) error) error {
	if p.local(prefix) {
		return storage.Local{}.List(ctx, prefix, fn)
	}
	return p.Store.List(ctx, prefix, func(a storage.Attrs) error {
		at, staged, err := p.view(a.Location)
		switch {
		case errors.Is(err, storage.ErrNotExist):
			return nil
		case err != nil:
			return err
		case staged:
			loc := a.Location
			if a, err = (storage.Local{}).Stat(ctx, at); err != nil {
				return err
			}
			a.Location = loc
		}
		return fn(a)
	})
}

// Create and Delete reach the scratch folder only: a dry run changes
// nothing else.
func (p *prediction) Create(ctx context.Context, loc string) (storage.Writer, error) {
	if !p.local(loc) {
		return nil, errors.New("a dry run writes nothing outside its scratch folder: " + loc)
	}
	return storage.Local{}.Create(ctx, loc)
}

func (p *prediction) Delete(ctx context.Context, loc string) error {
	if !p.local(loc) {
		return errors.New("a dry run deletes nothing: " + loc)
	}
	return storage.Local{}.Delete(ctx, loc)
}

// viewReader is a staged file read as the source file it stands for.
type viewReader struct {
	storage.Reader
	attrs storage.Attrs
}

func (v viewReader) Attrs() storage.Attrs { return v.attrs }
