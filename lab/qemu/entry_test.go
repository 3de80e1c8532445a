package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/cache"
)

// TestParsePC reads vCPU 0's program counter from real HMP "info registers" dumps: at the
// reset vector (x86 still in real mode: EIP, not RIP), inside QEMU's arm64 boot stub's jump to
// the image (MMU off), and inside each kernel once paging is on.
func TestParsePC(t *testing.T) {
	for _, tc := range []struct {
		file     string
		arch     Arch
		pc       uint64
		found    bool
		inKernel bool
	}{
		{"x86-early.txt", X86_64, 0, false, false},
		{"x86-kernel.txt", X86_64, 0xffffffff8101c8bd, true, true},
		{"arm-early.txt", ARM64, 0x418676b8, true, false},
		{"arm-kernel.txt", ARM64, 0xffffa34525cda26c, true, true},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "pc", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		pc, ok := parsePC(string(b))
		if ok != tc.found || pc != tc.pc {
			t.Errorf("%s: pc %#x found %v, want %#x %v", tc.file, pc, ok, tc.pc, tc.found)
		}
		if in := ok && pc >= kernelVA[tc.arch]; in != tc.inKernel {
			t.Errorf("%s: in kernel %v, want %v", tc.file, in, tc.inKernel)
		}
	}
}

// TestKernelEntry boots Debian's kernels and finds the kernel's entry by its program
// counter: after QEMU started, and before the kernel's first console line reached the host
// (the kernel prints only once it runs).
func TestKernelEntry(t *testing.T) {
	for _, arch := range []Arch{X86_64, ARM64} {
		t.Run(string(arch), func(t *testing.T) {
			var console syncBuffer
			inst, err := Start(context.Background(), Config{
				Arch: arch, Kernel: debianKernel(t, arch), Cmdline: "console=" + arch.Console() + " panic=-1",
				CPUs: 1, MemoryMB: 256, Dir: t.TempDir(), Console: &console, CacheDir: cache.Dir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Kill()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			entry, err := inst.KernelEntry(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var firstLine time.Time
			for firstLine.IsZero() && ctx.Err() == nil {
				if strings.Contains(console.String(), "Linux version") {
					firstLine = time.Now()
				}
				time.Sleep(time.Millisecond)
			}
			t.Logf("QEMU start → kernel entry %.3fs, → \"Linux version\" on the host %.3fs",
				entry.Sub(inst.Started).Seconds(), firstLine.Sub(inst.Started).Seconds())
			if !entry.After(inst.Started) {
				t.Errorf("entry %v is not after QEMU started (%v)", entry, inst.Started)
			}
			if firstLine.IsZero() || firstLine.Before(entry) {
				t.Errorf("the kernel printed (%v) before it was seen running (%v)", firstLine, entry)
			}
			// A finished poll leaves QMP usable.
			if _, err := inst.Status(ctx); err != nil {
				t.Errorf("QMP after KernelEntry: %v", err)
			}
		})
	}
}
