package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// setMemoryLimit sets the Go runtime's soft memory limit. deid's live memory
// is bounded by batch size and workers; without a limit the garbage
// collector lets the heap grow to twice the live data before collecting.
// "auto" gives 128 MiB plus 160 MiB per worker (448 MiB for 2 workers),
// unless GOMEMLIMIT is set; "off" sets none.
func setMemoryLimit(spec string, workers int) error {
	switch spec {
	case "off":
		return nil
	case "auto", "":
		if os.Getenv("GOMEMLIMIT") != "" {
			return nil
		}
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		debug.SetMemoryLimit(int64(128+160*workers) << 20)
		return nil
	}
	n, err := parseBytes(spec)
	if err != nil {
		return usageError("--memory-limit %q: use a size such as 512MiB or 2GiB, auto or off", spec)
	}
	debug.SetMemoryLimit(n)
	return nil
}

// parseBytes reads sizes such as 512MiB, 2GiB, 1000000 (bytes).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			n, err := strconv.ParseInt(strings.TrimSuffix(s, u.suffix), 10, 64)
			if err != nil || n <= 0 {
				return 0, strconv.ErrSyntax
			}
			return n * u.mult, nil
		}
	}
	return 0, strconv.ErrSyntax
}
