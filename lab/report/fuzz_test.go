package report

import (
	"bytes"
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
	})
}
