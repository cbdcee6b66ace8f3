package main

import "testing"

func TestParseBytes(t *testing.T) {
	cases := map[string]int64{"512MiB": 512 << 20, "2GiB": 2 << 30, "64KiB": 64 << 10, "1000": 1000, "10B": 10}
	for in, want := range cases {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-5MiB", "1.5GiB", "12TB", "0"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
	if err := setMemoryLimit("lots", 2); err == nil {
		t.Error("--memory-limit lots accepted")
	}
}
