package console

import (
	"os"
	"strings"
	"testing"
)

// TestParseOOMs reads real consoles of Debian's 6.1 kernels (x86-64 and arm64) where each
// of two iterations of `dd bs=400M` in a 256 MiB guest was killed by the OOM killer.
func TestParseOOMs(t *testing.T) {
	for _, tc := range []struct {
		file string
		n    int
	}{
		{"testdata/oom-6.1-x86_64.log", 2},
		{"testdata/oom-6.1-arm64.log", 2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			log, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			ooms := ParseOOMs(log)
			if len(ooms) != tc.n {
				t.Fatalf("%d OOM reports, want %d", len(ooms), tc.n)
			}
			for i, o := range ooms {
				if o.Invoker != "dd" || o.Killed != "dd" || o.KilledPID == 0 || o.Constraint != "CONSTRAINT_NONE" || o.Memcg || o.AnonRSSkB < 100<<10 {
					t.Errorf("report %d: %+v", i, o)
				}
				text := string(o.Text)
				if !strings.Contains(text, "invoked oom-killer") || !strings.HasSuffix(strings.TrimSpace(text), "oom_score_adj:0") || !strings.Contains(text, "Mem-Info") {
					t.Errorf("report %d text is not the whole report:\n%s", i, text)
				}
				if i > 0 && o.Start < ooms[i-1].End {
					t.Errorf("reports overlap")
				}
			}
			// Before the first report the console is clean; a report cut before its kill
			// line is not returned yet.
			if got := ParseOOMs(log[:ooms[0].Start]); len(got) != 0 {
				t.Errorf("clean boot log gives %+v", got)
			}
			if got := ParseOOMs(log[:ooms[0].End-10]); len(got) != 0 || !OOMStarted(log[:ooms[0].End-10]) {
				t.Errorf("a report still printing gives %d reports", len(got))
			}
		})
	}
}

// TestOOMKillLines: the kill lines of other eras and of a memory cgroup, in the kernel's
// own printk formats (4.x oom_kill_process: "Kill process ... or sacrifice child" then
// "Killed process N (comm) total-vm:..."; 5.x+: "<message>: Killed process ...").
func TestOOMKillLines(t *testing.T) {
	for _, tc := range []struct {
		log    string
		killed string
		pid    int
		memcg  bool
	}{
		{"[  373.1] dd invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null),  order=0, oom_score_adj=0\n" +
			"[  373.3] Out of memory: Kill process 2131 (dd) score 871 or sacrifice child\n" +
			"[  373.3] Killed process 2131 (dd) total-vm:210000kB, anon-rss:200000kB, file-rss:0kB, shmem-rss:0kB\n", "dd", 2131, false},
		{"[   9.0] sh invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n" +
			"[   9.1] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/t,task_memcg=/t,task=a.out,pid=77,uid=0\n" +
			"[   9.1] Memory cgroup out of memory: Killed process 77 (a.out) total-vm:9000kB, anon-rss:8000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0\n", "a.out", 77, true},
	} {
		ooms := ParseOOMs([]byte(tc.log))
		if len(ooms) != 1 || ooms[0].Killed != tc.killed || ooms[0].KilledPID != tc.pid || ooms[0].Memcg != tc.memcg {
			t.Errorf("%q → %+v", tc.log, ooms)
		}
	}
}
