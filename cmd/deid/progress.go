package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/deidproject/deid/pipeline"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one line on stderr, at most ten times a second.
type progressBar struct {
	mu   sync.Mutex
	w    io.Writer
	last time.Time
	p    pipeline.Progress
	drew bool
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w} }

func (b *progressBar) update(p pipeline.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.p = p
	if time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	b.draw()
}

func (b *progressBar) draw() {
	frac := 0.0
	if b.p.RowsTotal > 0 {
		frac = float64(b.p.RowsDone) / float64(b.p.RowsTotal)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%  %d/%d rows  %d/%d files ", strings.Repeat("#", n), strings.Repeat(".", width-n),
		100*frac, b.p.RowsDone, b.p.RowsTotal, b.p.FilesDone, b.p.Files)
	b.drew = true
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drew {
		b.draw()
		fmt.Fprintln(b.w)
	}
}
