package qemu

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CPURegs is one vCPU's registers that an unwinder needs, from HMP `info registers -a`.
type CPURegs struct {
	CPU            int
	PC, LR, SP, FP uint64 // arm64: PC, X30, SP, X29
	PState         string // arm64 "PSTATE=..." line: the exception level the CPU was in
}

// HMP runs a human-monitor command through QMP and returns its text.
func (inst *Instance) HMP(ctx context.Context, cmd string) (string, error) {
	var out string
	if err := inst.QMP.Execute(ctx, "human-monitor-command", map[string]any{"command-line": cmd}, &out); err != nil {
		return "", fmt.Errorf("qemu: %s: %w", cmd, err)
	}
	return strings.ReplaceAll(out, "\r", ""), nil
}

var (
	cpuHdrRe = regexp.MustCompile(`(?m)^CPU#(\d+)$`)
	regRe    = regexp.MustCompile(`\b(PC|X29|X30|SP)=([0-9a-f]{16})`)
	pstateRe = regexp.MustCompile(`(?m)^PSTATE=.*$`)
	pcRe     = regexp.MustCompile(`\b(?:RIP|PC)=([0-9a-f]{8,16})\b`)
)

// parsePC reads the first program counter in an HMP register dump: x86-64's RIP (absent
// while the CPU is not yet in long mode, where QEMU prints EIP) or arm64's PC.
func parsePC(out string) (uint64, bool) {
	m := pcRe.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseUint(m[1], 16, 64)
	return v, err == nil
}

// CPURegisters returns every vCPU's registers (arm64 guests). The guest should be stopped,
// so that the registers and the stack they point at agree.
func (inst *Instance) CPURegisters(ctx context.Context) ([]CPURegs, error) {
	if inst.arch != ARM64 {
		return nil, fmt.Errorf("qemu: register unwinding is implemented for arm64 only, not %s", inst.arch)
	}
	out, err := inst.HMP(ctx, "info registers -a")
	if err != nil {
		return nil, err
	}
	return parseARM64Registers(out), nil
}

func parseARM64Registers(out string) []CPURegs {
	var regs []CPURegs
	hdrs := cpuHdrRe.FindAllStringSubmatchIndex(out, -1)
	for i, h := range hdrs {
		end := len(out)
		if i+1 < len(hdrs) {
			end = hdrs[i+1][0]
		}
		block := out[h[1]:end]
		r := CPURegs{}
		r.CPU, _ = strconv.Atoi(out[h[2]:h[3]])
		for _, m := range regRe.FindAllStringSubmatch(block, -1) {
			v, _ := strconv.ParseUint(m[2], 16, 64)
			switch m[1] {
			case "PC":
				r.PC = v
			case "X29":
				r.FP = v
			case "X30":
				r.LR = v
			case "SP":
				r.SP = v
			}
		}
		r.PState = strings.TrimSpace(pstateRe.FindString(block))
		regs = append(regs, r)
	}
	return regs
}

var wordRe = regexp.MustCompile(`0x([0-9a-f]+)`)

// ReadVirt reads n 64-bit words at the guest virtual address addr as CPU cpu sees it
// (HMP `x`): kernel addresses are mapped alike on every CPU.
func (inst *Instance) ReadVirt(ctx context.Context, cpu int, addr uint64, n int) ([]uint64, error) {
	if _, err := inst.HMP(ctx, fmt.Sprintf("cpu %d", cpu)); err != nil {
		return nil, err
	}
	out, err := inst.HMP(ctx, fmt.Sprintf("x /%dgx 0x%x", n, addr))
	if err != nil {
		return nil, err
	}
	if strings.Contains(out, "Cannot access memory") {
		return nil, fmt.Errorf("qemu: 0x%x not mapped", addr)
	}
	var words []uint64
	for _, l := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		for _, m := range wordRe.FindAllStringSubmatch(rest, -1) {
			v, _ := strconv.ParseUint(m[1], 16, 64)
			words = append(words, v)
		}
	}
	if len(words) < n {
		return nil, fmt.Errorf("qemu: x /%dgx 0x%x: %q", n, addr, out)
	}
	return words[:n], nil
}
