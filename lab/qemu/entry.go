package qemu

import (
	"context"
	"errors"
	"time"
)

// The kernel's printk clock starts late: arm64 kernels relocate themselves and set up memory
// before time_init, and x86-64 kernels calibrate the TSC against the PIT (under TCG that
// often fails and falls back to the HPET) before their clock runs. Counting everything before
// the clock as "firmware" blamed QEMU for seconds of kernel work. KernelEntry finds the moment
// the kernel itself runs by sampling vCPU 0's program counter.

// kernelVA is where each architecture's kernel text runs once paging is on: QEMU's boot
// stubs, qboot, PVH's 32-bit entry and the bzImage decompressor all run below it.
var kernelVA = map[Arch]uint64{
	X86_64: 0xffffffff80000000,
	ARM64:  0xffff000000000000,
}

// entryPoll is how often vCPU 0's program counter is read: each read is one HMP command
// under QEMU's lock, a fraction of a millisecond; the entry time is known to this much.
const entryPoll = 3 * time.Millisecond

// KernelEntry polls vCPU 0's program counter (HMP "info registers") until it lies in the
// kernel's virtual address range, and returns when that was first seen. The guest must be
// booting a kernel with -kernel. Under TCG the register file is written back when a
// translation block exits, so the time is late by at most a few milliseconds; when the first
// sample already shows the kernel, the returned time is that sample's (an upper bound).
// It returns ctx's error when ctx ends first, or an error when QMP fails.
func (inst *Instance) KernelEntry(ctx context.Context) (time.Time, error) {
	va, ok := kernelVA[inst.arch]
	if !ok {
		return time.Time{}, errors.New("qemu: no kernel address range known for " + string(inst.arch))
	}
	t := time.NewTicker(entryPoll)
	defer t.Stop()
	for {
		out, err := inst.HMP(ctx, "info registers")
		seen := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, ctx.Err()
			}
			return time.Time{}, err
		}
		if pc, ok := parsePC(out); ok && pc >= va {
			return seen, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}
