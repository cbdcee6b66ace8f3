package parquetio

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/klauspost/compress/zstd"
)

// literalInputs are the shapes a page can have: empty, tiny, around the
// one-stream and block limits, hex text, one repeated byte, random bytes.
func literalInputs() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	hexText := func(n int) []byte {
		b := make([]byte, (n+1)/2)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return []byte(hex.EncodeToString(b)[:n])
	}
	random := make([]byte, 200<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	in := map[string][]byte{
		"empty":         {},
		"one byte":      {'a'},
		"16 bytes":      hexText(16),
		"17 bytes":      hexText(17),
		"1023 bytes":    hexText(1023),
		"1024 bytes":    hexText(1024),
		"16383 bytes":   hexText(16383),
		"16384 bytes":   hexText(16384),
		"one block":     hexText(zstdMaxBlock),
		"block and one": hexText(zstdMaxBlock + 1),
		"1 MiB hex":     hexText(1 << 20),
		"one symbol":    bytes.Repeat([]byte{'x'}, 300<<10),
		"random":        random,
		"random tail":   append(hexText(zstdMaxBlock), random[:5000]...),
		"255 bytes":     hexText(255),
		"256 bytes":     hexText(256),
		"65791 bytes":   hexText(256 + 1<<16 - 1),
		"65792 bytes":   hexText(256 + 1<<16),
	}
	return in
}

func TestLiteralEncoderRoundTrip(t *testing.T) {
	if zstdCLI == "" && os.Getenv("DEID_REQUIRE_ZSTD_CLI") == "1" {
		t.Fatal("the zstd command (libzstd) is not installed; CI installs Debian's zstd package")
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var e literalEncoder
	for name, src := range literalInputs() {
		frame, err := e.encode([]byte("prefix"), src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		frame = frame[len("prefix"):]
		got, err := dec.DecodeAll(frame, nil)
		if err != nil || !bytes.Equal(got, src) {
			t.Errorf("%s: klauspost decoder: err %v, equal %v", name, err, bytes.Equal(got, src))
		}
		if name == "1 MiB hex" && len(frame) > len(src)*6/10 {
			t.Errorf("%s: %d bytes coded in %d, want Huffman's ~0.5", name, len(src), len(frame))
		}
		if len(frame) > len(src)+len(src)/zstdMaxBlock*3+20 {
			t.Errorf("%s: %d bytes coded in %d, more than raw blocks take", name, len(src), len(frame))
		}
		flipped := bytes.Clone(frame)
		flipped[len(flipped)/2] ^= 0x10
		if got, err := dec.DecodeAll(flipped, nil); err == nil && bytes.Equal(got, src) && len(src) > 0 {
			t.Errorf("%s: a flipped bit went unnoticed", name)
		}
		if zstdCLI != "" {
			cmd := exec.Command(zstdCLI, "-d", "-c")
			cmd.Stdin = bytes.NewReader(frame)
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, src) {
				t.Errorf("%s: zstd CLI: err %v, equal %v", name, err, bytes.Equal(out, src))
			}
		}
	}
}

// zstdCLI is libzstd's command, an independent decoder, when installed
// (CI sets DEID_REQUIRE_ZSTD_CLI=1 and installs it).
var zstdCLI, _ = exec.LookPath("zstd")

// TestLiteralsOnlyChoice: a chunk's first large page decides how its pages
// of that kind are coded: literals only where zstd's repeats save little
// (random hex, UUIDs, random dictionary indices), full zstd where they save
// much (URLs, text), always full zstd for small pages and other codecs; a
// new chunk decides again.
func TestLiteralsOnlyChoice(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	page := func(value func() string) []byte {
		var b []byte
		for len(b) < 256<<10 {
			b = append(b, value()...)
		}
		return b
	}
	hexPage := page(func() string { return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()) })
	uuidPage := page(func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
	})
	// a dictionary page's PLAIN entries: zstd saves the length prefixes,
	// about 5 %, at three times the time
	hexDictPage := page(func() string { return fmt.Sprintf("\x20\x00\x00\x00%016x%016x", r.Uint64(), r.Uint64()) })
	indexPage := make([]byte, 256<<10)
	for i := range indexPage {
		indexPage[i] = byte(r.Uint32())
	}
	urlPage := page(func() string {
		return fmt.Sprintf("https://item.example.com/item.htm?id=%d&spm=a%d.%d", 500_000_000+r.IntN(1e8), r.IntN(10000), r.IntN(100))
	})
	textPage := bytes.Repeat([]byte("华为蓝牙耳机 新款包邮 256G 官方正品 "), 10000)

	mem := memory.NewGoAllocator()
	sch := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	column := func(codec string) *fastColumn {
		w, err := NewFastPartWriter(io.Discard, sch, nil, WriterOptions{Codec: codec}, mem)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w.cols[0]
	}
	for _, tc := range []struct {
		name  string
		codec string
		raw   []byte
		want  bool
	}{
		{"hex pseudonyms", "zstd", hexPage, true},
		{"hex pseudonyms, PLAIN", "zstd", hexDictPage, true},
		{"UUIDs", "zstd", uuidPage, true},
		{"random indices", "zstd", indexPage, true},
		{"URLs", "zstd", urlPage, false},
		{"text", "zstd", textPage, false},
		{"small hex page", "zstd", hexPage[:literalSample-1], false},
		{"hex, snappy", "snappy", hexPage, false},
		{"hex, uncompressed", "none", hexPage, false},
	} {
		c := column(tc.codec)
		for _, dict := range []bool{false, true} {
			if got := c.literalsOnly(dict, tc.raw); got != tc.want {
				t.Errorf("%s (dictionary page %v): literals only %v, want %v", tc.name, dict, got, tc.want)
			}
			// the chunk's later pages follow the first large one's choice
			if got := c.literalsOnly(dict, urlPage); tc.raw != nil && len(tc.raw) >= literalSample && got != tc.want {
				t.Errorf("%s (dictionary page %v), next page: literals only %v, want %v", tc.name, dict, got, tc.want)
			}
		}
		c.resetChunk()
		if got := c.literalsOnly(false, urlPage); got {
			t.Errorf("%s: a new chunk of URLs kept literals-only coding", tc.name)
		}
		// a page coded either way decodes to itself
		if tc.codec == "zstd" {
			c.resetChunk()
			body := c.compress(false, tc.raw)
			dec, err := zstd.NewReader(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dec.DecodeAll(body, nil)
			dec.Close()
			if err != nil || !bytes.Equal(got, tc.raw) {
				t.Errorf("%s: page does not decode to itself: %v", tc.name, err)
			}
		}
	}
}

// FuzzLiteralEncoder: any page, coded literals-only, decodes to itself.
func FuzzLiteralEncoder(f *testing.F) {
	for _, src := range literalInputs() {
		if len(src) <= 1<<16 {
			f.Add(src)
		}
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		f.Fatal(err)
	}
	var e literalEncoder
	f.Fuzz(func(t *testing.T, src []byte) {
		frame, err := e.encode(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.DecodeAll(frame, nil)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d bytes: decoded %d (%v)", len(src), len(got), err)
		}
	})
}
