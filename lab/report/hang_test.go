package report

import (
	"os"
	"strings"
	"testing"
)

// TestParseHang reads (titles as the files' own TITLE: headers say) the hang evidence out of real consoles: blocked tasks from the
// hung-task detector's and sysrq's task dumps, CPUs from sysrq l, on both arches and eras.
func TestParseHang(t *testing.T) {
	for _, tc := range []struct {
		file          string
		title         string
		blocked, cpus int    // at least
		blockedComm   string // a blocked task that must be there
		tasks         int    // at least this many in the sysrq t dump
	}{
		{file: "testdata/linux/x86-hung.txt", title: "INFO: task hung in rl_write", blocked: 1, blockedComm: "sh"},
		{file: "testdata/linux/arm64-hung.txt", title: "INFO: task hung in rl_hung", blocked: 1, blockedComm: "sh"},
		// hang.txt of a real hung run (lab/repro's frozen-hang spec on Debian 6.1 x86-64):
		// the shell blocked on a frozen ext4, sysrq l/w/t through the serial console.
		{file: "testdata/hang-6.1-x86_64.txt", title: "INFO: task hung in mnt_want_write", blocked: 1, cpus: 2, blockedComm: "sh", tasks: 50},
		{file: "testdata/hang-6.1-arm64.txt", title: "INFO: task hung in mnt_want_write", blocked: 1, cpus: 2, blockedComm: "sh", tasks: 50},
		{file: "testdata/linux/v4.11-x86-sysrq-l.txt", cpus: 1},
		{file: "testdata/linux/arm64-sysrq-l.txt", cpus: 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			log, err := os.ReadFile(tc.file)
			if err != nil {
				t.Skipf("%v", err)
			}
			h := ParseHang(log)
			if tc.title != "" && h.Title != tc.title {
				t.Errorf("title %q, want %q", h.Title, tc.title)
			}
			if len(h.Blocked) < tc.blocked || len(h.CPUs) < tc.cpus {
				t.Errorf("%d blocked, %d CPUs; want at least %d, %d", len(h.Blocked), len(h.CPUs), tc.blocked, tc.cpus)
			}
			if h.Tasks < tc.tasks {
				t.Errorf("%d tasks in the task dump, want at least %d", h.Tasks, tc.tasks)
			}
			if tc.blockedComm != "" {
				found := false
				for _, b := range h.Blocked {
					if b.Comm == tc.blockedComm && b.State == "D" && b.PID > 0 && len(b.Frames) > 0 {
						found = true
					}
				}
				if !found {
					t.Errorf("no blocked %s with a stack: %+v", tc.blockedComm, h.Blocked)
				}
			}
			if h.Title == "" || strings.Contains(h.Title, "%") {
				t.Errorf("bad title %q", h.Title)
			}
		})
	}
}

func TestTaskHeaders(t *testing.T) {
	for _, tc := range []struct {
		line, comm, state string
		pid               int
	}{
		{"task:sh              state:D stack:0     pid:94    ppid:1      flags:0x00000004", "sh", "D", 94},
		{"task:kworker/0:1     state:I stack:0     pid:25    ppid:2      flags:0x00004000", "kworker/0:1", "I", 25},
		{"dd              D    0  2131      1 0x00000000", "dd", "D", 2131},
		{"kswapd0         S    0    37      2 0x00000000", "kswapd0", "S", 37},
	} {
		comm, state, pid, ok := taskHeader(tc.line)
		if !ok || comm != tc.comm || state != tc.state || pid != tc.pid {
			t.Errorf("%q → %q %q %d %v", tc.line, comm, state, pid, ok)
		}
	}
	for _, no := range []string{"Call Trace:", " __schedule+0x2f4/0x9a0", "CPU: 0 PID: 94 Comm: sh Not tainted"} {
		if _, _, _, ok := taskHeader(no); ok {
			t.Errorf("%q taken for a task header", no)
		}
	}
}
