package repro

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/report"
)

// On arm64 the lab cannot run crash(8) `bt -a` on a vmcore here: Debian's crash is built
// for x86_64 vmcores only (crash reads another architecture's dumps only when built with
// target=ARM64), and Debian's arm64 kernel ships neither a vmlinux with debug info nor a
// real System.map (both are in linux-image-*-dbg). What the lab can do, it does: dump the
// memory of the panicked guest, then, with the guest stopped, read every vCPU's registers
// from QEMU and walk each stack's frame records (the arm64 kernel keeps frame pointers),
// naming the return addresses from the guest's own /proc/kallsyms, fetched right after
// boot while the agent still answers (nokaslr keeps the addresses stable). The result is
// written in crash's `bt` layout, so report.ParseBacktraces reads it like crash's.

// unwindDepth bounds a frame-pointer walk; kernel stacks are 16 KiB, and a corrupted
// chain must not loop.
const unwindDepth = 64

// prepareVmcore fetches the guest's text symbols when a vmcore of an arm64 guest may be
// wanted: afterwards the kernel may be past answering.
func (r *run) prepareVmcore(ctx context.Context) {
	if !r.cfg.DumpVmcore || r.cfg.Arch != qemu.ARM64 || r.client == nil {
		return
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code, err := r.client.Run(kctx, "grep ' [tTwW] ' /proc/kallsyms", &out, &errb)
	if err != nil || code != 0 {
		r.say("vmcore: cannot read the guest's /proc/kallsyms (exit %d, %v): arm64 backtraces will have addresses only", code, err)
		return
	}
	syms, err := report.ParseKallsyms(&out)
	if err != nil {
		r.say("vmcore: guest kallsyms: %v", err)
		return
	}
	r.syms = syms
	r.say("vmcore: %d text symbols from the guest's /proc/kallsyms for arm64 backtraces", syms.Len())
}

// arm64Backtraces writes bt-a.txt for a stopped arm64 guest whose memory is in vmcore:
// crash(8)'s when it works (a vmlinux was given and crash reads arm64), else the
// register and frame-pointer walk.
func (r *run) arm64Backtraces(ctx context.Context, vmcore string) {
	var crashWhy string
	if r.cfg.Vmlinux != "" {
		if _, err := lookPath("crash"); err == nil {
			bt, err := report.CrashBacktraces(ctx, "", r.cfg.Vmlinux, vmcore)
			if err == nil && len(report.ParseBacktraces([]byte(bt))) > 0 {
				r.writeBacktraces(bt, "crash(8) bt -a")
				return
			}
			crashWhy = fmt.Sprintf("crash(8) failed on this arm64 vmcore: %v", err)
		} else {
			crashWhy = "crash(8) is not installed"
		}
	} else {
		crashWhy = "no --vmlinux with debug info (Debian's arm64 kernel ships none)"
	}
	text, err := r.registerBacktraces(ctx, crashWhy)
	if err != nil {
		r.say("vmcore: arm64 backtraces: %v", err)
		if text == "" {
			return
		}
	}
	r.writeBacktraces(text, "registers + frame pointers")
}

func (r *run) writeBacktraces(text, from string) {
	if err := writeFileSync(filepath.Join(r.res.Dir, "bt-a.txt"), []byte(text)); err != nil {
		r.say("vmcore: writing bt-a.txt: %v", err)
		return
	}
	r.res.Backtraces = "bt-a.txt"
	r.res.BacktracesFrom = from
}

// registerBacktraces unwinds every vCPU of the stopped guest.
func (r *run) registerBacktraces(ctx context.Context, why string) (string, error) {
	regs, err := r.vm.CPURegisters(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# reprolab: every vCPU's registers (QEMU info registers -a) and a frame-pointer walk of\n")
	fmt.Fprintf(&b, "# its stack in the stopped guest; symbols from the guest's /proc/kallsyms.\n")
	fmt.Fprintf(&b, "# Not crash(8) bt -a: %s; Debian's crash reads x86_64 vmcores only.\n", why)
	if r.syms == nil {
		fmt.Fprintf(&b, "# No guest symbols were read: addresses only.\n")
	}
	for _, c := range regs {
		fmt.Fprintf(&b, "\nPID: 0  TASK: 0  CPU: %d  COMMAND: \"?\"\n", c.CPU)
		fmt.Fprintf(&b, "    pc %s  lr %s  sp %016x  fp %016x  %s\n", r.symbol(c.PC), r.symbol(stripPAC(c.LR)), c.SP, c.FP, c.PState)
		n := 0
		// at is the address named: a return address (every frame after the first) is
		// named by its call instruction, 4 bytes before it, since the call to a noreturn
		// function (panic) is the last instruction of its caller.
		frame := func(sp, pc, at uint64) {
			name, mod := "unknown", ""
			if r.syms != nil {
				if f, ok := r.syms.Lookup(at); ok {
					name = f.Func
					if f.Module != "" {
						mod = " [" + f.Module + "]"
					}
				}
			}
			fmt.Fprintf(&b, " #%d [%016x] %s at %016x%s\n", n, sp, name, pc, mod)
			n++
		}
		frame(c.SP, c.PC, c.PC)
		if !kernelAddr(c.PC) {
			fmt.Fprintf(&b, "    (user space or firmware: no kernel stack to walk)\n")
			continue
		}
		seen := map[uint64]bool{}
		for fp := c.FP; n < unwindDepth && kernelAddr(fp) && fp%8 == 0 && !seen[fp]; {
			seen[fp] = true
			w, err := r.vm.ReadVirt(ctx, c.CPU, fp, 2)
			if err != nil {
				fmt.Fprintf(&b, "    (frame record at %016x unreadable: %v)\n", fp, err)
				break
			}
			ret := stripPAC(w[1])
			if ret == 0 || !kernelAddr(ret) {
				break
			}
			frame(fp, ret, ret-4)
			fp = w[0]
		}
	}
	return b.String(), nil
}

func (r *run) symbol(addr uint64) string {
	if r.syms != nil {
		if f, ok := r.syms.Lookup(addr); ok {
			s := fmt.Sprintf("%s+0x%x/0x%x", f.Func, f.Off, f.Size)
			if f.Module != "" {
				s += " [" + f.Module + "]"
			}
			return s
		}
	}
	return fmt.Sprintf("%016x", addr)
}

// kernelAddr: arm64 kernel virtual addresses have the top bits set (TTBR1).
func kernelAddr(a uint64) bool { return a>>48 == 0xffff }

// stripPAC removes a pointer-authentication code from a kernel return address (Debian's
// arm64 kernel signs them): the PAC lives above the 48 virtual-address bits, and bit 55
// says which half of the address space the pointer belongs to.
func stripPAC(a uint64) uint64 {
	if a>>55&1 == 1 {
		return a | 0xffff000000000000
	}
	return a &^ 0xffff000000000000
}

// secretVmcore: a dump holds all guest memory, the guest's SSH host key included.
func secretVmcore(path string) { _ = os.Chmod(path, 0o600) }
