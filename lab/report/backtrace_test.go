package report

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestParseBacktracesSeed(t *testing.T) {
	data, err := os.ReadFile("testdata/crash/seed-arm-bt.txt")
	if err != nil {
		t.Fatal(err)
	}
	tasks := ParseBacktraces(data)
	tests := []struct {
		pid, cpu, frames int
		comm, guilty     string
		module           string // module of frame 16, for the dm_crypt frame
	}{
		{pid: 72, cpu: 0, frames: 27, comm: "mmcqd/1", guilty: "test_clear_page_writeback", module: "dm_crypt"},
		{pid: 35, cpu: 1, frames: 16, comm: "kswapd0", guilty: "mempool_alloc"},
	}
	if len(tasks) != len(tests) {
		t.Fatalf("got %d tasks, want %d", len(tasks), len(tests))
	}
	for i, tt := range tests {
		got := tasks[i]
		if got.PID != tt.pid || got.CPU != tt.cpu || got.Comm != tt.comm {
			t.Errorf("task %d: pid %d cpu %d comm %q, want %d %d %q", i, got.PID, got.CPU, got.Comm, tt.pid, tt.cpu, tt.comm)
		}
		if len(got.Frames) != tt.frames {
			t.Errorf("task %d: %d frames, want %d", i, len(got.Frames), tt.frames)
		}
		if got.Guilty < 0 || got.Frames[got.Guilty].Func != tt.guilty {
			t.Errorf("task %d: guilty %d, want %s", i, got.Guilty, tt.guilty)
		}
		if tt.module != "" && got.Frames[16].Module != tt.module {
			t.Errorf("task %d: frame 16 module %q, want %q", i, got.Frames[16].Module, tt.module)
		}
	}
	if tasks[0].Frames[9].PC != 0xc0112540 {
		t.Errorf("frame 9 pc %#x", tasks[0].Frames[9].PC)
	}
}

func TestCrashBacktracesBadInput(t *testing.T) {
	_, err := CrashBacktraces(context.Background(), "", "/nonexistent/vmlinux", "/nonexistent/vmcore")
	if err == nil || !strings.Contains(err.Error(), "vmlinux") {
		t.Fatalf("want an error naming vmlinux, got %v", err)
	}
}

// TestCPUBacktraces reads sysrq l output from real guests: the CPU that wrote to
// /proc/sysrq-trigger shows the sysrq path; the other CPU idles.
func TestCPUBacktraces(t *testing.T) {
	tests := []struct {
		file string
		want []string // per CPU in log order: "cpu comm guilty-func"
	}{
		{"x86-sysrq-l", []string{"0 sh __handle_sysrq", "1  native_safe_halt"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tc := readCase(t, "testdata/linux/"+tt.file+".txt")
			tasks := CPUBacktraces(tc.log)
			var got []string
			for _, task := range tasks {
				g := ""
				if task.Guilty >= 0 {
					g = cleanFunc(task.Frames[task.Guilty].Func)
				}
				got = append(got, fmt.Sprintf("%d %s %s", task.CPU, task.Comm, g))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
