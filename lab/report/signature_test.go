package report

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestSignatures checks testdata/signatures.txt: "same A B..." lists logs of one bug hit
// in different runs (other CPU, PID, addresses, timestamps, arch or kernel era) that must
// share the first report's signature; "diff A B..." lists different bugs that must not.
func TestSignatures(t *testing.T) {
	f, err := os.Open("testdata/signatures.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sig := func(name string) *Report {
		tc := readCase(t, "testdata/linux/"+name+".txt")
		rs := Parse(tc.log)
		if len(rs) == 0 {
			t.Fatalf("%s: no report", name)
		}
		return rs[0]
	}
	s := bufio.NewScanner(f)
	n := 0
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) < 3 || (fields[0] != "same" && fields[0] != "diff") {
			t.Fatalf("signatures.txt: bad line %q", s.Text())
		}
		n++
		var rs []*Report
		for _, name := range fields[1:] {
			rs = append(rs, sig(name))
		}
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				same := rs[i].Signature == rs[j].Signature
				if fields[0] == "same" && !same {
					t.Errorf("%s %q (%v) and %s %q (%v): want one signature", fields[1+i], rs[i].Title, rs[i].SignatureFrames(), fields[1+j], rs[j].Title, rs[j].SignatureFrames())
				}
				if fields[0] == "diff" && same {
					t.Errorf("%s and %s: different bugs share signature %s (%q)", fields[1+i], fields[1+j], rs[i].Signature, rs[i].Title)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no signature checks")
	}
}

// TestComplete cuts every real log at points a live console watcher sees: just after
// the report's first lines (not complete: more is coming) and at the end of the log
// (complete: all our logs go on past the report, or end in a panic).
func TestComplete(t *testing.T) {
	for _, path := range cases(t) {
		tc := readCase(t, path)
		rs := Parse(tc.log)
		if len(rs) == 0 {
			if Complete(tc.log) {
				t.Errorf("%s: Complete without a report", path)
			}
			continue
		}
		r := rs[0]
		if !Complete(tc.log[r.Start:]) {
			t.Errorf("%s: whole log: report %q not complete", path, r.Title)
		}
		// The first three lines of the report.
		cut := r.Start
		for i := 0; i < 3; i++ {
			if j := strings.IndexByte(string(tc.log[cut:r.End]), '\n'); j >= 0 {
				cut += j + 1
			}
		}
		if cut < r.End && Complete(tc.log[r.Start:cut]) && r.Type != NetdevLeak && r.Type != Reboot { // one-line kinds are whole at once
			t.Errorf("%s: complete after 3 lines of %q", path, r.Title)
		}
	}
}

// TestTruncated cuts every real report in the middle of its stack trace, as when a
// guest dies while printing: the report must still be found, with its type, and be
// flagged corrupted.
func TestTruncated(t *testing.T) {
	n := 0
	for _, path := range cases(t) {
		tc := readCase(t, path)
		rs := Parse(tc.log)
		if len(rs) == 0 {
			continue
		}
		r := rs[0]
		// Cut after the guilty frame's line and the one after it.
		if r.Guilty < 0 {
			continue
		}
		g := strings.Index(string(r.Text), r.Frames[r.Guilty].Func+"+0x")
		if g < 0 {
			continue
		}
		cut := r.Start + g
		for i := 0; i < 2; i++ {
			if j := strings.IndexByte(string(tc.log[cut:r.End]), '\n'); j >= 0 {
				cut += j + 1
			}
		}
		if cut >= r.End {
			continue
		}
		n++
		got := Parse(tc.log[:cut])
		if len(got) == 0 {
			t.Errorf("%s: cut at %d: no report", path, cut)
			continue
		}
		g0 := got[len(got)-1]
		if g0.Type != r.Type || !g0.Corrupted {
			t.Errorf("%s: cut at %d: type %s corrupted %v, want %s, corrupted", path, cut, g0.Type, g0.Corrupted, r.Type)
		}
	}
	if n < 10 {
		t.Errorf("only %d logs could be cut", n)
	}
}

// TestIncremental feeds every real log to ContainsCrash the way a live console watcher
// does (each new line with the four lines before it): the first hit must be the first
// report's own start line, not earlier (user-space echoes, boot noise) and not later.
func TestIncremental(t *testing.T) {
	for _, path := range cases(t) {
		tc := readCase(t, path)
		rs := Parse(tc.log)
		var starts []int // byte offset of each line start
		for pos := 0; pos < len(tc.log); {
			starts = append(starts, pos)
			j := strings.IndexByte(string(tc.log[pos:]), '\n')
			if j < 0 {
				break
			}
			pos += j + 1
		}
		hit := -1
		for n := range starts {
			from := starts[max(0, n-4)]
			end := len(tc.log)
			if n+1 < len(starts) {
				end = starts[n+1]
			}
			if ContainsCrash(tc.log[from:end]) {
				hit = starts[n]
				break
			}
		}
		if len(rs) > 0 && rs[0].Type == Reboot {
			continue // a boot banner is a reboot only given the log before it, not per chunk
		}
		if len(rs) == 0 {
			if hit >= 0 {
				t.Errorf("%s: ContainsCrash fires at byte %d in a log without reports", path, hit)
			}
			continue
		}
		// The report may begin with a "cut here" banner and a message before the
		// line that identifies it.
		if hit < rs[0].Start || hit > rs[0].Start+400 {
			t.Errorf("%s: first hit at byte %d, report starts at %d", path, hit, rs[0].Start)
		}
	}
}
