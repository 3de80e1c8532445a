package report

import (
	"bytes"
	"fmt"
	"testing"
	"testing/iotest"
)

// TestParseReader: streaming through small reads gives the same reports, at the same
// stream offsets, as Parse on the whole log, for every real test log and for all of
// them concatenated.
func TestParseReader(t *testing.T) {
	var all []byte
	for _, path := range cases(t) {
		tc := readCase(t, path)
		all = append(all, tc.log...)
		for _, chunk := range []int{512, 4096, readChunk} {
			checkStream(t, fmt.Sprintf("%s/%d", path, chunk), tc.log, chunk)
		}
	}
	checkStream(t, "all", all, 8192)
}

func checkStream(t *testing.T, name string, log []byte, chunk int) {
	t.Helper()
	want := Parse(log)
	var got []*Report
	err := parseReader(iotest.HalfReader(bytes.NewReader(log)), func(r *Report) error {
		got = append(got, r)
		return nil
	}, chunk)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d reports streaming, %d from Parse", name, len(got), len(want))
		for i := 0; i < max(len(got), len(want)); i++ {
			g, w := "-", "-"
			if i < len(got) {
				g = fmt.Sprintf("%d..%d %s", got[i].Start, got[i].End, got[i].Title)
			}
			if i < len(want) {
				w = fmt.Sprintf("%d..%d %s", want[i].Start, want[i].End, want[i].Title)
			}
			t.Logf("  %s | %s", g, w)
		}
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Title != w.Title || g.Signature != w.Signature || g.Start != w.Start || g.End != w.End || g.Corrupted != w.Corrupted {
			t.Errorf("%s: report %d: stream %d..%d %q %v, Parse %d..%d %q %v", name, i, g.Start, g.End, g.Title, g.Corrupted, w.Start, w.End, w.Title, w.Corrupted)
		}
		if !bytes.Equal(g.Text, log[g.Start:g.End]) {
			t.Errorf("%s: report %d: Text is not log[Start:End]", name, i)
		}
	}
}
