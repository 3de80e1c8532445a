package report

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
		{"arm64-sysrq-l", []string{"0  sysrq_handle_showallcpus", "1  "}},
		{"v4.11-x86-sysrq-l", []string{"0 sh sysrq_handle_showallcpus", "1 swapper/1 amd_e400_idle"}},
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

// TestParseBacktracesVmcore: crash's own bt -a output from a real vmcore (x86-64, the
// rlcrash NULL deref with panic_on_oops): the oopsing task on CPU 0 with crash's
// "[exception RIP: ...]" marking the faulting function, and CPU 1 stopped by the panic.
func TestParseBacktracesVmcore(t *testing.T) {
	data, err := os.ReadFile("testdata/crash/x86-null-bt-a.txt")
	if err != nil {
		t.Fatal(err)
	}
	tasks := ParseBacktraces(data)
	if len(tasks) != 2 {
		t.Fatalf("got %d tasks, want 2", len(tasks))
	}
	sh, idle := tasks[0], tasks[1]
	if sh.CPU != 0 || sh.Comm != "sh" || sh.Guilty < 0 || cleanFunc(sh.Frames[sh.Guilty].Func) != "rl_read_field" {
		t.Errorf("task 0: cpu %d comm %q guilty %d %v", sh.CPU, sh.Comm, sh.Guilty, sh.Frames)
	}
	if sh.Frames[sh.Guilty].Off != 5 {
		t.Errorf("exception RIP offset %d, want 5", sh.Frames[sh.Guilty].Off)
	}
	if sh.Frames[sh.Guilty+1].Func != "rl_null_deref" || sh.Frames[sh.Guilty+1].Module != "rlcrash" {
		t.Errorf("caller %+v", sh.Frames[sh.Guilty+1])
	}
	if idle.CPU != 1 || idle.Comm != "swapper/1" || idle.Frames[0].Func != "stop_this_cpu" {
		t.Errorf("task 1: %+v", idle)
	}
}

// TestCrashBacktraces runs the crash utility on the vmcore made by testdata/gen/vmcore.sh
// (about 550 MB, not in git; skipped without it or the debug vmlinux).
func TestCrashBacktraces(t *testing.T) {
	if testing.Short() {
		t.Skip("crash takes about a minute")
	}
	vmcore := cacheDir() + "/report-gen/amd64/null.vmcore"
	vmlinux := DefaultVmlinux("6.1.0-56-amd64")
	if _, err := os.Stat(vmcore); err != nil || vmlinux == "" {
		t.Skipf("no vmcore (%s) or debug vmlinux: run testdata/gen/vmcore.sh", vmcore)
	}
	if _, err := exec.LookPath("crash"); err != nil {
		t.Skip("no crash utility: apt-get install crash")
	}
	out, err := CrashBacktraces(context.Background(), "", vmlinux, vmcore)
	if err != nil {
		t.Fatal(err)
	}
	tasks := ParseBacktraces([]byte(out))
	if len(tasks) != 2 || tasks[0].Guilty < 0 || cleanFunc(tasks[0].Frames[tasks[0].Guilty].Func) != "rl_read_field" {
		t.Fatalf("unexpected bt -a:\n%s", out)
	}
}
