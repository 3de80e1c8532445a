package report

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse: any console bytes (guests print garbage when they die) must parse without
// panicking, with reports inside the log and in order. Seeds are the real test logs'
// reports. Run with: go test ./lab/report -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	for _, path := range cases(f) {
		tc := readCase(f, path)
		for _, r := range Parse(tc.log) {
			f.Add(r.Text)
		}
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		rs := Parse(log)
		prev, prevCorrupted := 0, false
		for _, r := range rs {
			// Interleaved reports (flagged corrupted) may overlap; others may not.
			if r.Start < prev && !r.Corrupted && !prevCorrupted || r.End > len(log) || r.Start > r.End || !bytes.Equal(r.Text, log[r.Start:r.End]) {
				t.Fatalf("bad extent %d..%d (prev %d, len %d)", r.Start, r.End, prev, len(log))
			}
			prevCorrupted = r.Corrupted
			if r.Title == "" || r.Signature == "" {
				t.Fatalf("empty title or signature")
			}
			prev = r.End
		}
		if len(rs) > 0 && !ContainsCrash(log) {
			t.Fatalf("Parse found %d reports but ContainsCrash is false", len(rs))
		}
		Complete(log)
		// The hand-written matchers agree with the regexps they replace.
		for _, l := range strings.Split(string(log), "\n") {
			if isBody(l) != bodyRe.MatchString(l) {
				t.Fatalf("isBody(%q) = %v, bodyRe disagrees", l, isBody(l))
			}
			got, want := frameLine(l), frameRe.FindStringSubmatch(l)
			if (got == nil) != (want == nil) || got != nil && strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("frameLine(%q) = %q, frameRe says %q", l, got, want)
			}
		}
		// Streaming finds the same reports as Parse (small chunks, so windows are cut; a
		// window is re-parsed per chunk, so big inputs would make each run slow).
		n := 0
		if len(log) > 64<<10 {
			return
		}
		if err := parseReader(bytes.NewReader(log), func(*Report) error { n++; return nil }, 1024); err != nil || n != len(rs) {
			t.Fatalf("ParseReader: %d reports, %v; Parse: %d", n, err, len(rs))
		}
	})
}
