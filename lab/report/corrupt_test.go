package report

import (
	"bytes"
	"strings"
	"testing"
)

// TestCorruptedMutations damages real reports the ways consoles do and wants each
// flagged: cut inside the stack (the guest died), the frames lost, and another report's
// lines pushed into the stack (two CPUs printing at once).
func TestCorruptedMutations(t *testing.T) {
	other := Parse(readCase(t, "testdata/linux/x86-warn.txt").log)[0].Text
	for _, name := range []string{"x86-null", "x86-gpf", "x86-bug", "x86-kasan-uaf", "arm64-null", "arm64-warn", "v4.11-x86_64-dd-writeback-null"} {
		tc := readCase(t, "testdata/linux/"+name+".txt")
		r := Parse(tc.log)[0]
		if r.Corrupted {
			t.Fatalf("%s: already corrupted: %s", name, r.CorruptedReason)
		}
		lines := strings.SplitAfter(string(r.Text), "\n")
		ct := -1
		for i, l := range lines {
			if strings.Contains(l, "Call Trace:") || strings.Contains(l, "Call trace:") {
				ct = i
				break
			}
		}
		if ct < 0 || ct+3 >= len(lines) {
			t.Fatalf("%s: no call trace to damage", name)
		}
		head := strings.Join(lines[:ct+3], "")
		cases := map[string]string{
			"cut in the stack": head,
			"frames lost":      strings.Join(lines[:ct+1], "") + "\n\n\n\n\n\n",
			"interleaved":      head + string(other) + strings.Join(lines[ct+3:], ""),
		}
		for how, log := range cases {
			rs := Parse([]byte(log))
			if len(rs) == 0 {
				t.Errorf("%s, %s: no report found", name, how)
				continue
			}
			if !rs[0].Corrupted {
				t.Errorf("%s, %s: %q not flagged corrupted", name, how, rs[0].Title)
			} else {
				t.Logf("%s, %s: %s", name, how, rs[0].CorruptedReason)
			}
		}
		// Undamaged, the same text is fine: the flags come from the damage.
		if rs := Parse(bytes.Clone(r.Text)); len(rs) == 0 || rs[0].Corrupted {
			t.Errorf("%s: the undamaged report alone is flagged corrupted", name)
		}
	}
}
