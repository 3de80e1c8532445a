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

// TestForeignLines: what other tasks (CONFIG_PRINTK_CALLER ids) and user space (no
// timestamp) print in the middle of a real report is not part of it: same title, same
// frames, not corrupted, as syzbot's consoles need.
func TestForeignLines(t *testing.T) {
	for _, name := range []string{"x86-null", "x86-warn", "arm64-null", "x86-kasan-uaf"} {
		r := Parse(readCase(t, "testdata/linux/"+name+".txt").log)[0]
		var task, user strings.Builder
		for i, l := range strings.SplitAfter(string(r.Text), "\n") {
			if l == "" {
				continue
			}
			end := strings.Index(l, "] ")
			tagged := l[:end+1] + "[   T95]" + l[end+1:]
			task.WriteString(tagged)
			user.WriteString(l)
			if i%3 == 2 {
				task.WriteString(l[:end+1] + "[  T412] audit: type=1400 audit(1.2:3): avc:  denied  { read } for  pid=412\n")
				user.WriteString("executing program 0:\nsyz_open_dev(0x0, 0x0, 0x0)\n")
			}
		}
		for how, log := range map[string]string{"other task's lines": task.String(), "user-space lines": user.String()} {
			rs := Parse([]byte(log))
			if len(rs) != 1 {
				t.Errorf("%s, %s: %d reports, want 1", name, how, len(rs))
				continue
			}
			g := rs[0]
			if g.Title != r.Title || g.Corrupted || strings.Join(g.SignatureFrames(), " ") != strings.Join(r.SignatureFrames(), " ") {
				t.Errorf("%s, %s: %q corrupted=%v (%s) frames %v; want %q, %v", name, how, g.Title, g.Corrupted, g.CorruptedReason, g.SignatureFrames(), r.Title, r.SignatureFrames())
			}
		}
	}
}
