package kver

import "testing"

func TestRange(t *testing.T) {
	for _, tc := range []struct {
		rng, ver string
		want     bool
	}{
		{">=4.11 <4.13", "4.11.0", true},
		{">=4.11 <4.13", "4.12.10", true},
		{">=4.11 <4.13", "4.13.9", false},
		{">=4.13", "4.13.9", true},
		{">=4.13", "6.1.0", true},
		{"<5.0,>=4.0", "4.20", true},
		{"=6.1", "6.1.0", true},
		{"", "2.6.32", true},
	} {
		r, err := ParseRange(tc.rng)
		if err != nil {
			t.Fatal(err)
		}
		v, err := Parse(tc.ver)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Contains(v); got != tc.want {
			t.Errorf("%q contains %s = %v, want %v", tc.rng, tc.ver, got, tc.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	for _, s := range []string{"4.11", "~4.11", ">=four"} {
		if _, err := ParseRange(s); err == nil {
			t.Errorf("ParseRange(%q) accepted", s)
		}
	}
	if _, err := Parse("4"); err == nil {
		t.Error("Parse(4) accepted")
	}
}

func TestFromTree(t *testing.T) {
	v, err := FromTree("testdata/v4.13.9")
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != "4.13.9" {
		t.Errorf("got %s", v)
	}
	if _, err := FromTree("testdata"); err == nil {
		t.Error("a directory without Makefile accepted")
	}
}
