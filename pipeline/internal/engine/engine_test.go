package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
)

var schema = arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)

// part encodes the values vs as one row group of a part.
func part(t testing.TB, budget *scratch.Budget, vs ...int64) *scratch.Part {
	t.Helper()
	p := scratch.NewPart(t.TempDir(), budget)
	enc, err := parquetio.NewPartEncoder(p, schema, nil, parquetio.WriterOptions{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues(vs, nil)
	col := b.NewArray()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(len(vs)))
	if err := enc.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	col.Release()
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	return p
}

// values reads back the values of a spliced file, row group by row group.
func values(t testing.TB, data []byte) []int64 {
	t.Helper()
	f, err := parquetio.Open(bytes.NewReader(data), int64(len(data)), "out", memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []int64
	for rg := range f.NumRowGroups() {
		err := f.ReadRowGroup(context.Background(), rg, parquetio.ReadOptions{Columns: []int{0}}, func(b arrow.RecordBatch) error {
			got = append(got, b.Column(0).(*array.Int64).Int64Values()...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// memOutput is an output spliced into memory.
type memOutput struct {
	name    string
	buf     bytes.Buffer
	sp      *parquetio.Splicer
	aborted atomic.Bool
}

func newMemOutput(name string) *memOutput {
	o := &memOutput{name: name}
	o.sp = parquetio.NewSplicer(&o.buf)
	return o
}

func (o *memOutput) Splicer() *parquetio.Splicer { return o.sp }
func (o *memOutput) Abort()                      { o.aborted.Store(true) }
func (o *memOutput) Name() string                { return o.name }

// TestEngineSplicesInOrder: whatever order tasks finish in (random delays,
// 1 to 4 workers), each output holds its row groups in row-group order;
// a file without row groups is finished, a file's next stage runs and
// InOrder sees row groups in order; copied row groups of a source, and
// chosen row groups of a part, come through beside parts spliced whole.
func TestEngineSplicesInOrder(t *testing.T) {
	budget := &scratch.Budget{Limit: 1 << 20}
	// a source of three row groups: values 100, 101, 102
	src := newMemOutput("source")
	for v := range int64(3) {
		if err := src.sp.Add(part(t, budget, 100+v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.sp.Close(); err != nil {
		t.Fatal(err)
	}
	srcBytes := bytes.NewReader(src.buf.Bytes())
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(workers, " workers"), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(workers), 7))
			var mu sync.Mutex
			finished := map[string][]int64{}
			var inOrder []int
			var files []*File
			for fi, rgs := range []int{5, 0, 1, 8, 3} {
				delays := make([]time.Duration, rgs)
				for i := range delays {
					delays[i] = time.Duration(r.IntN(3000)) * time.Microsecond
				}
				name := fmt.Sprint("file", fi)
				f := &File{Name: name, RowGroups: rgs, Outputs: 2,
					Task: func(ctx context.Context, rg int, head Head) ([]Piece, error) {
						time.Sleep(delays[rg])
						v := int64(fi*1000 + rg)
						// output 0: an encoded part; output 1: odd row
						// groups only, copying the source's row group rg%3
						pieces := []Piece{{Part: part(t, budget, v)}}
						if rg%3 == 2 {
							pieces[0].RowGroups = []int{0} // the part's row group copied, not the part spliced whole
						}
						if rg%2 == 1 {
							pieces = append(pieces, Piece{Source: srcBytes, RowGroups: []int{rg % 3}})
						}
						return pieces, nil
					},
					Open: func(ctx context.Context, oi int) (Output, error) { return newMemOutput(fmt.Sprint(name, "/", oi)), nil },
					Finish: func(ctx context.Context, outs []Output) (*File, error) {
						mu.Lock()
						defer mu.Unlock()
						for oi, o := range outs {
							key := fmt.Sprint(name, "/", oi)
							if o == nil {
								finished[key] = nil
								continue
							}
							m := o.(*memOutput)
							if _, err := m.sp.Close(); err != nil {
								return nil, err
							}
							finished[key] = values(t, m.buf.Bytes())
						}
						if fi != 3 {
							return nil, nil
						}
						// file 3's next stage: InOrder sees its row groups in order
						return &File{Name: name + " again", RowGroups: 6,
							Task: func(ctx context.Context, rg int, head Head) ([]Piece, error) {
								time.Sleep(delays[rg])
								return nil, nil
							},
							InOrder: func(ctx context.Context, rg int, pieces []Piece) ([]Piece, error) {
								mu.Lock()
								inOrder = append(inOrder, rg)
								mu.Unlock()
								return pieces, nil
							},
							Finish: func(ctx context.Context, outs []Output) (*File, error) {
								mu.Lock()
								finished["again"] = []int64{int64(len(outs))}
								mu.Unlock()
								return nil, nil
							}}, nil
					}}
				files = append(files, f)
			}
			p := &Pool{Workers: workers}
			if err := p.Run(context.Background(), files); err != nil {
				t.Fatal(err)
			}
			want := map[string][]int64{
				"file0/0": {0, 1, 2, 3, 4}, "file0/1": {101, 100},
				"file1/0": nil, "file1/1": nil,
				"file2/0": {2000}, "file2/1": nil,
				"file3/0": {3000, 3001, 3002, 3003, 3004, 3005, 3006, 3007}, "file3/1": {101, 100, 102, 101},
				"file4/0": {4000, 4001, 4002}, "file4/1": {101},
				"again": {0},
			}
			for k, w := range want {
				if g, ok := finished[k]; !ok || !slices.Equal(g, w) {
					t.Errorf("%s: %v (finished %v), want %v", k, g, ok, w)
				}
			}
			if !slices.Equal(inOrder, []int{0, 1, 2, 3, 4, 5}) {
				t.Errorf("InOrder saw %v", inOrder)
			}
		})
	}
}

// TestEngineFailure: a task's error (or InOrder's, or Open's) ends the
// run with that error: no file is finished (and, after a task's error, no
// later file starts), its opened outputs are aborted and its unspliced parts freed
// (the budget given back).
func TestEngineFailure(t *testing.T) {
	boom := errors.New("boom")
	for _, where := range []string{"task", "in order", "open", "splice"} {
		t.Run(where, func(t *testing.T) {
			budget := &scratch.Budget{Limit: 1 << 30}
			var outs []*memOutput
			var mu sync.Mutex
			var started, finished atomic.Int32
			mk := func(name string, fail bool) *File {
				f := &File{Name: name, RowGroups: 6, Outputs: 1,
					Task: func(ctx context.Context, rg int, head Head) ([]Piece, error) {
						started.Add(1)
						if fail && where == "task" && rg == 3 {
							return nil, boom
						}
						if rg == 0 {
							time.Sleep(5 * time.Millisecond) // later row groups wait for it
						}
						if fail && where == "splice" && rg == 2 {
							return []Piece{{Source: bytes.NewReader(nil), RowGroups: []int{0}}}, nil // not Parquet: its splice fails
						}
						return []Piece{{Part: part(t, budget, int64(rg))}}, nil
					},
					Open: func(ctx context.Context, oi int) (Output, error) {
						if fail && where == "open" {
							return nil, boom
						}
						o := newMemOutput(name)
						mu.Lock()
						outs = append(outs, o)
						mu.Unlock()
						return o, nil
					},
					Finish: func(ctx context.Context, outs []Output) (*File, error) {
						finished.Add(1)
						return nil, nil
					}}
				if fail && where == "in order" {
					f.InOrder = func(ctx context.Context, rg int, pieces []Piece) ([]Piece, error) {
						if rg == 2 {
							return pieces, boom
						}
						return pieces, nil
					}
				}
				return f
			}
			p := &Pool{Workers: 2}
			err := p.Run(context.Background(), []*File{mk("a", true), mk("b", false)})
			if where == "splice" {
				if err == nil || !strings.Contains(err.Error(), "a: assemble a") {
					t.Fatalf("error %v, want the splice's, naming the file and output", err)
				}
			} else if !errors.Is(err, boom) {
				t.Fatalf("error %v, want boom", err)
			}
			if finished.Load() != 0 {
				t.Errorf("%d files finished", finished.Load())
			}
			if where == "task" && started.Load() > 6 {
				t.Errorf("%d tasks started: file b should not start", started.Load())
			}
			for _, o := range outs {
				if !o.aborted.Load() {
					t.Errorf("output %s not aborted", o.name)
				}
			}
			if used := budget.Used(); used != 0 {
				t.Errorf("%d bytes of parts still held", used)
			}
		})
	}
}

// TestEnginePanic: a panic in a file's Task, InOrder or Finish fails the
// run with an error naming the file and row group, as an error would: the
// process lives, the outputs are aborted and no part is left held.
func TestEnginePanic(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) // the stacks logged
	for _, where := range []string{"task", "in order", "finish", "reader callback"} {
		t.Run(where, func(t *testing.T) {
			budget := &scratch.Budget{Limit: 1 << 30}
			var outs []*memOutput
			var mu sync.Mutex
			f := &File{Name: "a", RowGroups: 4, Outputs: 1,
				Task: func(ctx context.Context, rg int, head Head) ([]Piece, error) {
					if where == "task" && rg == 2 {
						panic("boom")
					}
					if where == "reader callback" && rg == 2 { // as ReadRowGroup raises it
						panic(&parquetio.CallerPanic{Value: "boom", Stack: []byte("the stack")})
					}
					return []Piece{{Part: part(t, budget, int64(rg))}}, nil
				},
				InOrder: func(ctx context.Context, rg int, pieces []Piece) ([]Piece, error) {
					if where == "in order" && rg == 2 {
						panic("boom")
					}
					return pieces, nil
				},
				Open: func(ctx context.Context, oi int) (Output, error) {
					o := newMemOutput("a")
					mu.Lock()
					outs = append(outs, o)
					mu.Unlock()
					return o, nil
				},
				Finish: func(ctx context.Context, outs []Output) (*File, error) {
					if where == "finish" {
						panic("boom") // before it says what became of its outputs
					}
					for _, o := range outs {
						o.Abort()
					}
					return nil, nil
				}}
			err := (&Pool{Workers: 2}).Run(context.Background(), []*File{f})
			want := "a: row group 2: internal error"
			if where == "finish" {
				want = "a: internal error"
			}
			if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), ": boom") {
				t.Fatalf("error %v, want %q and the panic", err, want)
			}
			for _, o := range outs {
				if !o.aborted.Load() {
					t.Errorf("output %s not aborted", o.name)
				}
			}
			if used := budget.Used(); used != 0 {
				t.Errorf("%d bytes of parts still held", used)
			}
		})
	}
}

// TestEngineCancel: a cancelled context ends the run with its cause.
func TestEngineCancel(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	f := &File{Name: "f", RowGroups: 100,
		Task: func(ctx context.Context, rg int, head Head) ([]Piece, error) {
			if rg == 10 {
				cancel(stop)
			} else if rg > 10 {
				<-ctx.Done() // not all done before row group 10's cancel, however the workers are scheduled
			}
			return nil, nil
		},
		Finish: func(ctx context.Context, outs []Output) (*File, error) { return nil, errors.New("finished") }}
	if err := (&Pool{Workers: 2}).Run(ctx, []*File{f}); !errors.Is(err, stop) {
		t.Fatalf("error %v, want the cause", err)
	}
}
