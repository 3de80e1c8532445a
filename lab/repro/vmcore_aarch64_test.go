package repro

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/report"
)

// TestARM64VmcoreBacktraces crashes Debian's arm64 kernel (no pvpanic, no debug vmlinux)
// with --vmcore: the panicked guest's memory is dumped as an AArch64 ELF core, and
// bt-a.txt holds every vCPU's stack from QEMU's registers and a frame-pointer walk,
// named from the guest's kallsyms, in crash's layout.
func TestARM64VmcoreBacktraces(t *testing.T) {
	kernel, modules := debianKernel(t, qemu.ARM64)
	var progress strings.Builder
	res, err := Run(context.Background(), Config{
		Arch: qemu.ARM64, Kernel: kernel, ModulesDir: modules,
		Repro: loadSpec(t, "testdata/sysrq-crash.yaml"), ResultsDir: t.TempDir(), CacheDir: cacheDir(),
		DumpVmcore: true, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outcome %s, vmcore %q, backtraces %q from %q\n%s", res.Outcome, res.Vmcore, res.Backtraces, res.BacktracesFrom, progress.String())
	if res.Outcome != Crashed || res.Vmcore != "vmcore" {
		t.Fatalf("outcome %s (%s), vmcore %q: want a crash with a vmcore", res.Outcome, res.Error, res.Vmcore)
	}
	core := filepath.Join(res.Dir, "vmcore")
	if st, err := os.Stat(core); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("vmcore %v mode %v: want 0600 (it holds the guest's host key)", err, st.Mode())
	}
	ef, err := elf.Open(core)
	if err != nil {
		t.Fatalf("vmcore is not an ELF core: %v", err)
	}
	var loads, notes int
	for _, p := range ef.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			loads++
		case elf.PT_NOTE:
			notes++
		}
	}
	ef.Close()
	if ef.Machine != elf.EM_AARCH64 || ef.Type != elf.ET_CORE || loads == 0 || notes == 0 {
		t.Errorf("vmcore: machine %v type %v, %d PT_LOAD, %d PT_NOTE", ef.Machine, ef.Type, loads, notes)
	}
	text, err := os.ReadFile(filepath.Join(res.Dir, "bt-a.txt"))
	if err != nil {
		t.Fatalf("bt-a.txt: %v", err)
	}
	if res.BacktracesFrom != "registers + frame pointers" {
		t.Errorf("backtraces from %q", res.BacktracesFrom)
	}
	tasks := report.ParseBacktraces(text)
	if len(tasks) != 2 {
		t.Fatalf("%d vCPU backtraces, want 2:\n%s", len(tasks), text)
	}
	all := map[string]bool{}
	for _, tk := range tasks {
		if len(tk.Frames) < 3 {
			t.Errorf("CPU %d: only %d frames:\n%s", tk.CPU, len(tk.Frames), text)
		}
		for _, f := range tk.Frames {
			all[f.Func] = true
		}
	}
	// The panicking CPU spins in panic() called from the sysrq-c fault; the other was
	// stopped by panic's IPI.
	for _, want := range []string{"panic", "sysrq_handle_crash"} {
		if !all[want] {
			t.Errorf("no %s frame in the vCPU backtraces:\n%s", want, text)
		}
	}
	t.Logf("bt-a.txt:\n%s", text)
}
