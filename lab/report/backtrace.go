package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// Task is one task's backtrace as printed by the crash utility's `bt` (from a vmcore):
// what every CPU was doing at the panic, which is how the racing thread of a bug like the
// seed's (kswapd0 in mempool_alloc while mmcqd/1 oopses) is found.
type Task struct {
	PID    int
	Comm   string
	CPU    int
	Frames []Frame // innermost first
	Guilty int     // first non-generic frame, -1 if none
}

var (
	// PID: 72  TASK: e1f48640  CPU: 0  COMMAND: "mmcqd/1"
	btTaskRe = regexp.MustCompile(`PID:\s*(\d+)\s+TASK:\s*[0-9a-f]+\s+CPU:\s*(\d+)\s+COMMAND:\s*"([^"]*)"`)
	// arm32: #9 [<c0112540>] (test_clear_page_writeback) from [<c01046d4>]
	btArmRe = regexp.MustCompile(`^#(\d+)\s+\[<([0-9a-f]+)>\]\s+\(([A-Za-z0-9_.$]+)(?: \[([^\]]+)\])?\)`)
	// x86-64 / arm64: #3 [ffffc90000003e38] test_clear_page_writeback at ffffffff811a0ae6 [dm_crypt]
	btRe = regexp.MustCompile(`^#(\d+)\s+\[[0-9a-f]+\]\s+([A-Za-z0-9_.$]+)\s+at\s+([0-9a-f]+)(?:\s+\[([^\]]+)\])?`)
	// x86-64 crash marks the faulting function of an exception frame so.
	btExcRe = regexp.MustCompile(`\[exception RIP: ([A-Za-z0-9_.$]+)\+(\d+)\]`)
	// Quoted mail ("> > > ") around a pasted crash session, as in the seed thread.
	quoteRe = regexp.MustCompile(`^(?:>\s?)+`)
)

// ParseBacktraces reads crash `bt` / `bt -a` output (also pasted into mail, quote marks
// and all) into one Task per "PID: ... COMMAND:" header.
func ParseBacktraces(text []byte) []*Task {
	var tasks []*Task
	var cur *Task
	for _, raw := range bytes.Split(text, []byte{'\n'}) {
		l := strings.TrimSpace(quoteRe.ReplaceAllString(strings.TrimSpace(string(raw)), ""))
		if m := btTaskRe.FindStringSubmatch(l); m != nil {
			cur = &Task{Comm: m[3], Guilty: -1}
			cur.PID, _ = strconv.Atoi(m[1])
			cur.CPU, _ = strconv.Atoi(m[2])
			tasks = append(tasks, cur)
			continue
		}
		if cur == nil {
			continue
		}
		if strings.HasPrefix(l, "crash>") {
			cur = nil
			continue
		}
		if m := btArmRe.FindStringSubmatch(l); m != nil {
			pc, _ := strconv.ParseUint(m[2], 16, 64)
			cur.Frames = append(cur.Frames, Frame{Func: m[3], Module: m[4], PC: pc})
			continue
		}
		if m := btRe.FindStringSubmatch(l); m != nil {
			pc, _ := strconv.ParseUint(m[3], 16, 64)
			cur.Frames = append(cur.Frames, Frame{Func: m[2], Module: m[4], PC: pc})
			continue
		}
		if m := btExcRe.FindStringSubmatch(l); m != nil {
			off, _ := strconv.ParseUint(m[2], 10, 64)
			cur.Frames = append(cur.Frames, Frame{Func: m[1], Off: off})
		}
	}
	for _, t := range tasks {
		t.Guilty = guiltyBT(t.Frames)
	}
	return tasks
}

// crashGenericRe adds what crash shows below the oops on 32-bit ARM and in kdump paths:
// kexec entry and ARM's exception vectors.
var crashGenericRe = regexp.MustCompile(`^(?:__crash_kexec|crash_kexec|machine_kexec|svcerr_panic|_SvcErr_|do_DataAbort|__dabt_svc|__irq_svc|__und_svc|do_PrefetchAbort)$`)

func guiltyBT(fs []Frame) int {
	for i, f := range fs {
		fn := cleanFunc(f.Func)
		if !genericRe.MatchString(fn) && !crashGenericRe.MatchString(fn) {
			return i
		}
	}
	if len(fs) > 0 {
		return 0
	}
	return -1
}

// CrashBacktraces runs the crash utility in batch mode on a vmcore and returns its
// `bt -a` output: the backtrace of the active task on every CPU. crashBin "" means
// "crash" from PATH. vmlinux must be the debug vmlinux of the dumped kernel.
func CrashBacktraces(ctx context.Context, crashBin, vmlinux, vmcore string) (string, error) {
	if crashBin == "" {
		crashBin = "crash"
	}
	for _, p := range []struct{ what, path string }{{"vmlinux", vmlinux}, {"vmcore", vmcore}} {
		if _, err := os.Stat(p.path); err != nil {
			return "", fmt.Errorf("report: crash backtraces: %s %q: %v", p.what, p.path, err)
		}
	}
	cmd := exec.CommandContext(ctx, crashBin, "-s", vmlinux, vmcore)
	cmd.Stdin = strings.NewReader("bt -a\nquit\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("report: %s -s %s %s: %v: %s", crashBin, vmlinux, vmcore, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

var (
	// x86 (and arm64 with pseudo-NMI): "NMI backtrace for cpu 1"; arm64 without it:
	// "sysrq: CPU0:" followed by the trace.
	nmiRe = regexp.MustCompile(`^(?:NMI backtrace for cpu |sysrq: CPU)(\d+)`)
	// arm64: "sysrq: CPU1: backtrace skipped as idling"
	sysrqIdleRe  = regexp.MustCompile(`^sysrq: CPU(\d+): backtrace skipped as idling`)
	nmiSkippedRe = regexp.MustCompile(`^NMI backtrace for cpu (\d+) skipped: idling at ([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)`)
)

// CPUBacktraces returns the per-CPU backtraces in log printed by sysrq `l` (or an RCU
// stall, or the hung-task detector's all-CPU dump): one Task per "NMI backtrace for cpu
// N" (x86) or "sysrq: CPUN:" (arm64) block, in log order. A CPU that was idle gets the
// idle function as its one frame (x86 "skipped: idling at ...") or no frames (arm64).
// This is what a hung guest shows after the lab sends sysrq l: which CPU spins where.
func CPUBacktraces(log []byte) []*Task {
	lines := splitLines(log)
	var tasks []*Task
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i].text)
		if m := nmiSkippedRe.FindStringSubmatch(t); m != nil {
			task := &Task{PID: -1, Guilty: 0}
			task.CPU, _ = strconv.Atoi(m[1])
			f := Frame{Func: m[2]}
			f.Off, _ = strconv.ParseUint(m[3], 16, 64)
			f.Size, _ = strconv.ParseUint(m[4], 16, 64)
			task.Frames = []Frame{f}
			tasks = append(tasks, task)
			continue
		}
		if m := sysrqIdleRe.FindStringSubmatch(t); m != nil {
			task := &Task{PID: -1, Guilty: -1}
			task.CPU, _ = strconv.Atoi(m[1])
			tasks = append(tasks, task)
			continue
		}
		m := nmiRe.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		// The block runs to the next NMI backtrace or to the end of the body lines.
		j, gap := i+1, 0
		end := i
		for ; j < len(lines); j++ {
			tj := strings.TrimSpace(lines[j].text)
			if nmiRe.MatchString(tj) {
				break
			}
			if isBody(lines[j].text) {
				end, gap = j, 0
				continue
			}
			if gap++; gap >= maxGap {
				break
			}
		}
		r := &Report{CPU: -1, PID: -1}
		fs, _ := frames(lines[i+1:end+1], r, nil)
		task := &Task{PID: r.PID, Comm: r.Comm, Frames: fs, Guilty: guilty(fs, nil)}
		task.CPU, _ = strconv.Atoi(m[1])
		tasks = append(tasks, task)
		i = end
	}
	return tasks
}
