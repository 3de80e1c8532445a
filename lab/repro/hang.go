package repro

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/report"
)

// HangSummary is meta.json's account of a hang: what every CPU and every blocked task was
// doing, from the console the lab captured into hang.txt while prodding the guest.
type HangSummary struct {
	File  string `json:"file"`  // hang.txt, relative to the run dir
	Title string `json:"title"` // "INFO: task hung in X", "INFO: cpu stuck in X", or "no output from test machine"
	// Sysrq is how sysrq l/w/t reached the kernel: "serial" (break + key on the console),
	// "keyboard" (QMP send-key, x86), "agent" (/proc/sysrq-trigger), or "none"; several,
	// comma-separated, when the keys went different ways.
	Sysrq string `json:"sysrq"`
	// NMI is what the NMI injected on every vCPU produced (x86): "panic" (the guest
	// panicked on it and printed the stack of the CPU that took it), "printed", "silent",
	// or the QMP error.
	NMI     string     `json:"nmi,omitempty"`
	CPUs    []HangTask `json:"cpus,omitempty"`
	Blocked []HangTask `json:"blocked,omitempty"`
	Tasks   int        `json:"tasks_shown,omitempty"` // tasks in the sysrq t dump
}

// HangTask is one CPU's or one task's stack, innermost first, by function name.
type HangTask struct {
	CPU    int      `json:"cpu"` // -1 for a blocked task
	PID    int      `json:"pid,omitempty"`
	Comm   string   `json:"comm,omitempty"`
	State  string   `json:"state,omitempty"`
	Func   string   `json:"func,omitempty"` // the guilty frame: where it spins or waits
	Frames []string `json:"frames,omitempty"`
}

// hung collects what the guest was doing, then ends the run as hung.
func (r *run) hung(ctx context.Context, timeout time.Duration) (Outcome, error) {
	r.say("hang: no progress and no console output for %s during %s; asking for backtraces", timeout, r.phase())
	h := r.collectHang(ctx)
	msg := fmt.Sprintf("no progress and no console output for %s during %s", timeout, r.phase())
	if h != nil {
		msg += ": " + h.Title + " (hang.txt)"
	}
	return Hung, fmt.Errorf("%s", msg)
}

// collectHang asks the kernel for sysrq l (every active CPU, by NMI), w (blocked tasks)
// and t (every task), then injects an NMI (x86), and keeps the console it printed meanwhile
// as hang.txt. The guest is not expected to survive it.
func (r *run) collectHang(ctx context.Context) *HangSummary {
	hctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	from := r.watch.Len()
	sum := &HangSummary{File: "hang.txt"}
	var log strings.Builder
	fmt.Fprintf(&log, "# reprolab: hang during %s at %s; console from here on\n", r.phase(), time.Now().UTC().Format(time.RFC3339))
	var ways []string
	for _, key := range []byte("lwt") {
		how := r.sysrq(hctx, key)
		if len(ways) == 0 || ways[len(ways)-1] != how {
			ways = append(ways, how)
		}
		fmt.Fprintf(&log, "# reprolab: sysrq %c via %s\n", key, how)
		r.waitQuiet(hctx, 2*time.Second, 40*time.Second)
	}
	sum.Sysrq = strings.Join(ways, ",")
	if r.cfg.Arch == qemu.X86_64 && r.alive() {
		mark := r.watch.Len()
		if err := r.vm.InjectNMI(hctx); err != nil {
			sum.NMI = err.Error()
		} else {
			r.waitQuiet(hctx, 2*time.Second, 20*time.Second)
			out := r.watch.Bytes()[mark:]
			switch {
			case bytes.Contains(out, []byte("Kernel panic")):
				sum.NMI = "panic"
			case len(bytes.TrimSpace(out)) > 0:
				sum.NMI = "printed"
			default:
				sum.NMI = "silent"
			}
		}
		fmt.Fprintf(&log, "# reprolab: NMI injected on every vCPU: %s\n", sum.NMI)
	}
	text := r.watch.Bytes()[from:]
	h := report.ParseHang(text)
	sum.Title = h.Title
	sum.Tasks = h.Tasks
	for _, c := range h.CPUs {
		sum.CPUs = append(sum.CPUs, hangTask(c, "", c.CPU))
	}
	for _, b := range h.Blocked {
		sum.Blocked = append(sum.Blocked, hangTask(&b.Task, b.State, -1))
	}
	fmt.Fprintf(&log, "# reprolab: %s; %d CPU backtraces, %d blocked tasks, %d tasks shown\n", h.Title, len(h.CPUs), len(h.Blocked), h.Tasks)
	if err := writeFileSync(filepath.Join(r.res.Dir, sum.File), append([]byte(log.String()), text...)); err != nil {
		r.say("hang: writing hang.txt: %v", err)
		sum.File = ""
	}
	r.res.Hang = sum
	r.say("hang: %s (sysrq via %s, %d CPUs, %d blocked tasks)", sum.Title, sum.Sysrq, len(sum.CPUs), len(sum.Blocked))
	if r.cfg.DumpVmcore && r.alive() {
		// The NMI panicked a kernel booted with panic=0, or the guest still runs: either
		// way its memory shows the hang.
		r.dumpVmcore(ctx)
	}
	return sum
}

func hangTask(t *report.Task, state string, cpu int) HangTask {
	ht := HangTask{CPU: cpu, PID: t.PID, Comm: t.Comm, State: state}
	if ht.PID < 0 {
		ht.PID = 0
	}
	for i, f := range t.Frames {
		if f.Unreliable {
			continue
		}
		if i == t.Guilty {
			ht.Func = f.Func
		}
		if len(ht.Frames) < 12 {
			ht.Frames = append(ht.Frames, f.Func)
		}
	}
	return ht
}

// sysrq sends one sysrq key by the first way that gets through, each checked on the
// console: the serial console's break (both arches, needs only the kernel's UART
// interrupt; tried twice, since a break that finds the port already armed disarms it),
// the PS/2 keyboard (x86), then the agent.
func (r *run) sysrq(ctx context.Context, key byte) string {
	for _, way := range []string{"serial", "serial", "keyboard", "agent"} {
		mark := r.watch.Len()
		var err error
		switch way {
		case "serial":
			err = r.vm.SerialSysrq(key)
		case "keyboard":
			if r.cfg.Arch != qemu.X86_64 {
				continue
			}
			err = r.vm.KeyboardSysrq(ctx, key)
		case "agent":
			if r.client == nil {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = r.client.Run(actx, fmt.Sprintf("echo %c > /proc/sysrq-trigger", key), io.Discard, io.Discard)
			cancel()
		}
		if err == nil && r.sysrqAnswered(ctx, mark) {
			return way
		}
	}
	return "none"
}

// sysrqAnswered waits briefly for the kernel's "sysrq: <action>" line after mark.
func (r *run) sysrqAnswered(ctx context.Context, mark int) bool {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if out := r.watch.Bytes()[mark:]; bytes.Contains(bytes.ToLower(out), []byte("sysrq")) {
			return true
		}
		if !r.alive() {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// waitQuiet waits until the console has been silent for quiet (a dump has ended), at most
// max; output that has not started yet gets quiet to start.
func (r *run) waitQuiet(ctx context.Context, quiet, max time.Duration) {
	start := time.Now()
	deadline := start.Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil && r.alive() {
		last := r.watch.LastOutput()
		if last.Before(start) {
			last = start
		}
		if time.Since(last) >= quiet {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *run) alive() bool {
	select {
	case <-r.vm.Exited():
		return false
	default:
		return true
	}
}
