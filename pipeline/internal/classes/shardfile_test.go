package classes

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

type decoded struct {
	group string
	key   Key
	n     uint32
}

func decodeAll(t *testing.T, b []byte) ([]decoded, error) {
	t.Helper()
	var got []decoded
	err := Decode(bytes.NewReader(b), int64(len(b)), func(dst, dataset string, k Key, n uint32) {
		got = append(got, decoded{dst + "/" + dataset, k, n})
	})
	return got, err
}

func encodeToBytes(t *testing.T, groups []Group) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, groups); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestClassCountsRoundTrip: what Encode writes decodes to the same
// counts, groups by (destination, dataset) and keys ascending, whatever the
// order they were given in.
func TestClassCountsRoundTrip(t *testing.T) {
	big := map[Key]uint32{}
	for i := uint64(0); i < 1000; i++ {
		big[Key{Hi: i * 0x9e3779b97f4a7c15, Lo: ^i}] = uint32(i%7 + 1)
	}
	big[Key{Hi: ^uint64(0), Lo: ^uint64(0)}] = 1<<32 - 1
	tests := []struct {
		name   string
		groups []Group
	}{
		{"no groups", nil},
		{"an empty group", []Group{{Dst: "research", Dataset: "orders", Counts: map[Key]uint32{}}}},
		{"one class", []Group{{Dst: "research", Dataset: "orders", Counts: map[Key]uint32{{Hi: 1, Lo: 2}: 3}}}},
		{"groups out of order, many classes", []Group{
			{Dst: "zeta", Dataset: "b", Counts: big},
			{Dst: "alpha", Dataset: "orders", Counts: map[Key]uint32{{Hi: 5}: 1, {Lo: 5}: 2, {Hi: 5, Lo: 1}: 9}},
			{Dst: "alpha", Dataset: "logs", Counts: map[Key]uint32{{Hi: 0, Lo: 0}: 4}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := encodeToBytes(t, tc.groups)
			got, err := decodeAll(t, b)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]map[Key]uint32{}
			for _, g := range tc.groups {
				want[g.Dst+"/"+g.Dataset] = g.Counts
			}
			back := map[string]map[Key]uint32{}
			for i, d := range got {
				if back[d.group] == nil {
					back[d.group] = map[Key]uint32{}
				}
				back[d.group][d.key] = d.n
				if i > 0 && got[i-1].group == d.group && CompareKeys(got[i-1].key, d.key) >= 0 {
					t.Errorf("class %d not after the one before it", i)
				}
				if i > 0 && got[i-1].group > d.group {
					t.Errorf("group %s after %s", d.group, got[i-1].group)
				}
			}
			for g, m := range want {
				if len(m) > 0 && !maps.Equal(back[g], m) {
					t.Errorf("group %s: %d classes back, want %d", g, len(back[g]), len(m))
				}
			}
			if again := encodeToBytes(t, tc.groups); !bytes.Equal(again, b) {
				t.Error("encoding is not deterministic")
			}
			if n := len(big); tc.name == "groups out of order, many classes" && len(b) > 20*(n+3)+100 {
				t.Errorf("%d bytes for %d classes: not compact", len(b), n+4)
			}
		})
	}
}

// TestClassCountsCorrupt: a damaged counts file is refused with an error
// naming it, never merged silently.
func TestClassCountsCorrupt(t *testing.T) {
	good := encodeToBytes(t, []Group{{Dst: "research", Dataset: "orders",
		Counts: map[Key]uint32{{Hi: 1}: 1, {Hi: 2}: 300, {Hi: 3}: 2}}})
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	unsorted := func() []byte {
		// two classes swapped, with a valid checksum: caught by the order check
		var buf bytes.Buffer
		buf.WriteString(classesFormat)
		buf.Write(appendString(nil, "research"))
		buf.Write(appendString(nil, "orders"))
		buf.WriteByte(2)
		buf.Write(append(make([]byte, 15), 2, 1))
		buf.Write(append(make([]byte, 15), 1, 1))
		buf.WriteByte(0)
		return withCRC(buf.Bytes())
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"another format", append([]byte("deid-classes/v9\n"), good[len(classesFormat):]...), "not a deid class counts file"},
		{"truncated", good[:len(good)-9], "corrupt class counts"},
		{"a flipped bit in a key", flip(len(classesFormat) + 17 + 15), "checksum"},
		{"a flipped bit in the checksum", flip(len(good) - 1), "checksum"},
		{"trailing bytes", append(bytes.Clone(good[:len(good)-4]), append([]byte{0}, good[len(good)-4:]...)...), "trailing bytes"},
		{"keys out of order", unsorted(), "out of order"},
		{"a zero count", withCRC(append(append([]byte(classesFormat), append(appendString(appendString(nil, "d"), "s"), 1)...), append(make([]byte, 16), 0, 0)...)), "count 0"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".bin")
			if err := os.WriteFile(loc, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := OpenCursor(context.Background(), storage.NewRouter(), ShardFile{Index: 1, Count: 2, Loc: loc})
			if err == nil {
				err = c.Drain()
				c.Close()
			}
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), loc) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a corrupt-counts error naming %s and saying %q", err, loc, tc.want)
			}
		})
	}
}

// withCRC appends the CRC-32C trailer to a hand-built counts file.
func withCRC(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// FuzzDecodeClasses: the decoder never panics, and what it accepts encodes
// back to the same bytes.
func FuzzDecodeClasses(f *testing.F) {
	var buf bytes.Buffer
	_ = Encode(&buf, []Group{{Dst: "d", Dataset: "s", Counts: map[Key]uint32{{Hi: 1}: 2, {Lo: 7}: 1}}})
	f.Add(buf.Bytes())
	f.Add([]byte(classesFormat))
	f.Fuzz(func(t *testing.T, b []byte) {
		groups := map[string]*Group{}
		var order []string
		err := Decode(bytes.NewReader(b), int64(len(b)), func(dst, dataset string, k Key, n uint32) {
			g := dst + "\x00" + dataset
			if groups[g] == nil {
				groups[g] = &Group{Dst: dst, Dataset: dataset, Counts: map[Key]uint32{}}
				order = append(order, g)
			}
			groups[g].Counts[k] = n
		})
		if err != nil {
			return
		}
		var gs []Group
		for _, g := range order {
			gs = append(gs, *groups[g])
		}
		var again bytes.Buffer
		if err := Encode(&again, gs); err != nil {
			t.Fatal(err)
		}
		back, err := decodeAll(t, again.Bytes())
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		n := 0
		for _, g := range groups {
			n += len(g.Counts)
		}
		if len(back) != n {
			t.Fatalf("%d classes accepted, %d after re-encoding", n, len(back))
		}
	})
}
