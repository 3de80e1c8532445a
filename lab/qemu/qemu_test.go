package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/cache"
)

func TestArgs(t *testing.T) {
	cfg := Config{Arch: ARM64, Kernel: "/k", Initrd: "/i", Cmdline: "console=ttyAMA0", CPUs: 2, MemoryMB: 256,
		Disks: []Disk{{Name: "swap", Path: "/s.raw"}}, AgentSocket: "/tmp/a.sock", Dir: "/tmp/d"}
	cases := []struct {
		arch  Arch
		accel Accel
		want  []string
		not   []string
	}{
		{ARM64, TCG, []string{"-M virt", "-cpu cortex-a57", "-accel tcg,thread=multi", "pvpanic-pci"}, []string{"-cpu max", "kvm"}},
		{X86_64, TCG, []string{"-M pc", "-cpu qemu64", "-accel tcg,thread=multi", "-device pvpanic"}, []string{"kvm"}},
		{X86_64, KVM, []string{"-accel kvm", "-cpu host"}, []string{"tcg"}},
	}
	for _, c := range cases {
		cfg.Arch = c.arch
		line := strings.Join(Args(cfg, c.accel), " ")
		for _, w := range append(c.want,
			"-no-reboot", "-action panic=pause", "-smp 2", "-m 256", "-kernel /k", "-initrd /i",
			"virtio-blk-pci,drive=disk0,serial=swap", "name="+AgentPortName, "-qmp unix:/tmp/d/qmp.sock,server=on,wait=off") {
			if !strings.Contains(line, w) {
				t.Errorf("%s/%s: argv lacks %q:\n%s", c.arch, c.accel, w, line)
			}
		}
		for _, n := range c.not {
			if strings.Contains(line, n) {
				t.Errorf("%s/%s: argv has %q:\n%s", c.arch, c.accel, n, line)
			}
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Arch{"x86_64": X86_64, "amd64": X86_64, "arm64": ARM64, "aarch64": ARM64} {
		if got, err := ParseArch(in); err != nil || got != want {
			t.Errorf("ParseArch(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseArch("riscv64"); err == nil {
		t.Error("riscv64 accepted")
	}
	if _, err := ParseAccel("hvf"); err == nil {
		t.Error("hvf accepted")
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Config{Arch: X86_64, Binary: "qemu-system-nonexistent", Dir: t.TempDir()})
	var mb *MissingBinaryError
	if !errors.As(err, &mb) || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Fatalf("err = %v, want a MissingBinaryError naming the package", err)
	}
}

// syncBuffer is a console sink safe for the pump goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debianKernel(t *testing.T, arch Arch) string {
	k, _ := filepath.Glob(filepath.Join(cache.Dir(), "debian", arch.GOARCH(), "boot", "vmlinuz-*"))
	if len(k) == 0 {
		t.Skip("no Debian kernel: run images/debian-kernels.sh")
	}
	return k[0]
}

// TestBootWithoutRootPanicsAndExits boots Debian's kernels with no initramfs: each panics
// ("VFS: Unable to mount root fs"), reboots (panic=-1) and, with -no-reboot, QEMU exits.
// The console must carry the panic, and nothing must be left running.
func TestBootWithoutRootPanicsAndExits(t *testing.T) {
	for _, arch := range []Arch{X86_64, ARM64} {
		t.Run(string(arch), func(t *testing.T) {
			var console syncBuffer
			var notices []string
			inst, err := Start(context.Background(), Config{
				Arch: arch, Kernel: debianKernel(t, arch), Cmdline: "console=" + arch.Console() + " panic=-1",
				CPUs: 2, MemoryMB: 256, Dir: t.TempDir(), Console: &console, CacheDir: cache.Dir(),
				Say: func(s string) { notices = append(notices, s) },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Kill()
			t.Logf("accel %s; notices %q", inst.Accel, notices)
			if arch == ARM64 && inst.Accel != TCG {
				t.Errorf("arm64 on an x86 host ran with %s", inst.Accel)
			}
			select {
			case <-inst.Exited():
			case <-time.After(3 * time.Minute):
				t.Fatalf("QEMU still running; console tail:\n%s", tailOf(console.String()))
			}
			<-inst.ConsoleClosed()
			if !strings.Contains(console.String(), "Kernel panic - not syncing") {
				t.Errorf("no panic on the console:\n%s", tailOf(console.String()))
			}
			if err := syscall.Kill(inst.Pid(), 0); err == nil {
				t.Errorf("QEMU %d still exists", inst.Pid())
			}
		})
	}
}

// TestStopAndDump starts a guest, dumps its memory over QMP and stops it with quit.
func TestStopAndDump(t *testing.T) {
	kernel := debianKernel(t, ARM64)
	inst, err := Start(context.Background(), Config{
		Arch: ARM64, Kernel: kernel, Cmdline: "console=ttyAMA0", MemoryMB: 128, Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, err := inst.Status(ctx); err != nil || st != "running" {
		t.Fatalf("status %q, %v", st, err)
	}
	if err := inst.QMP.Execute(ctx, "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	core := filepath.Join(t.TempDir(), "vmcore")
	if err := inst.DumpGuestMemory(ctx, core); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(core)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4)
	f.Read(head)
	f.Close()
	if string(head) != "\x7fELF" {
		t.Errorf("vmcore is not an ELF core: %q", head)
	}
	if st, _ := os.Stat(core); st.Size() < 128<<20 {
		t.Errorf("vmcore %d bytes for a 128 MiB guest", st.Size())
	}
	if err := inst.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	select {
	case <-inst.Exited():
	default:
		t.Error("QEMU not reaped after Stop")
	}
}

func tailOf(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// TestAutoAccelDecidesAndRemembers starts with no remembered verdict: auto must try KVM
// when /dev/kvm opens and, if no guest runs under it (as on hosts where /dev/kvm exists but
// guests hang or "-cpu host" aborts), fall back to TCG, say so, and remember it.
func TestAutoAccelDecidesAndRemembers(t *testing.T) {
	kernel := debianKernel(t, X86_64)
	cacheDir := t.TempDir()
	var notices []string
	var console syncBuffer
	inst, err := Start(context.Background(), Config{
		Arch: X86_64, Kernel: kernel, Cmdline: "console=ttyS0 panic=-1", MemoryMB: 256, Dir: t.TempDir(),
		Console: &console, CacheDir: cacheDir, Say: func(s string) { notices = append(notices, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Kill()
	kvmOK, _ := kvmOpenable()
	usable, reason, known := KVMVerdict(cacheDir, X86_64)
	t.Logf("kvm openable %v; ran with %s; verdict known=%v usable=%v (%s); notices %q", kvmOK, inst.Accel, known, usable, reason, notices)
	switch {
	case !kvmOK:
		if inst.Accel != TCG || len(notices) == 0 {
			t.Errorf("without /dev/kvm: accel %s, notices %q", inst.Accel, notices)
		}
	case inst.Accel == TCG:
		if len(notices) == 0 || !strings.Contains(notices[0], "falling back to TCG") {
			t.Errorf("fell back to TCG silently: %q", notices)
		}
		if !known || usable {
			t.Errorf("broken KVM not remembered: known=%v usable=%v", known, usable)
		}
	default: // KVM really runs guests here.
		if !known || !usable {
			t.Errorf("working KVM not remembered: known=%v usable=%v", known, usable)
		}
	}
	// Either way the guest runs: it prints its boot log.
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(console.String(), "Linux version") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(console.String(), "Linux version") {
		t.Errorf("no kernel output under %s", inst.Accel)
	}
}
