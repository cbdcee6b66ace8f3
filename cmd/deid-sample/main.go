// Command deid-sample rebuilds the sample lake in testdata/lake: device
// logs, service logs and orders with fake Chinese personal data, an erasure
// list, a consent list and sample-only keys (see package sampledata).
//
//	go run ./cmd/deid-sample -out testdata/lake
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deidproject/deid/cmd/deid-sample/sampledata"
)

func main() {
	out := flag.String("out", "testdata/lake", "folder to write the sample lake into")
	seed := flag.Uint64("seed", sampledata.Seed, "generator seed")
	flag.Parse()
	files, err := sampledata.Generate(*seed)
	if err == nil {
		err = sampledata.Write(*out, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deid-sample:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d files under %s\n", len(files), filepath.Clean(*out))
}
