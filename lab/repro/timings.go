package repro

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/console"
	"github.com/reprolab/reprolab/lab/hostload"
)

// Timings account for every second of a run, phase by phase, so a slow trial says where its
// time went. Boot phases come from wall-clock arrival times of console lines and from the
// kernel's own printk timestamps. "firmware" is QEMU start → the kernel running (its program
// counter in kernel text, lab/qemu's KernelEntry): QEMU's setup, the firmware, a bzImage's
// decompression. The kernel's clock starts later still (arm64 relocates and maps memory
// first, x86-64 calibrates its TSC); that stretch is the kernel's own, counted apart.
type Timings struct {
	ImageSeconds        float64 `json:"image_seconds"`                   // initramfs + disks on the host
	QEMUStartSeconds    float64 `json:"qemu_start_seconds"`              // qemu.Start: argv, exec, QMP (and a KVM probe)
	FirstConsoleSeconds float64 `json:"first_console_seconds"`           // QEMU start → first console byte
	FirmwareSeconds     float64 `json:"firmware_seconds"`                // QEMU start → the kernel runs (→ its clock, when entry was not seen)
	KernelEarlySeconds  float64 `json:"kernel_before_clock_seconds"`     // the kernel runs → its clock starts
	KernelToInit        float64 `json:"kernel_to_init_seconds"`          // kernel clock at /init
	InitToAgent         float64 `json:"init_to_agent_seconds"`           // /init → agent serving (kernel clock)
	AgentToSSH          float64 `json:"agent_to_ssh_seconds"`            // agent serving → SSH session up (wall)
	BootSeconds         float64 `json:"boot_seconds"`                    // QEMU start → SSH session up
	Setup               []Step  `json:"setup,omitempty"`                 // each setup step
	SetupSeconds        float64 `json:"setup_seconds"`                   // all of setup
	LoopSeconds         float64 `json:"loop_seconds"`                    // first iteration start → loop end
	Iterations          Iters   `json:"iterations"`                      // the loop's iterations
	CrashNoticeSeconds  float64 `json:"crash_notice_seconds"`            // crash line reached the host → the run reacted
	CrashReportSeconds  float64 `json:"crash_report_seconds"`            // reacting → reports written (report complete, dump)
	SnapshotSaveSeconds float64 `json:"snapshot_save_seconds,omitempty"` // saving state and disks (the preparing trial)
	RestoreSeconds      float64 `json:"restore_seconds,omitempty"`       // QEMU start → restored guest answering
	ReseedSeconds       float64 `json:"reseed_seconds,omitempty"`        // new randomness and client key, reconnect
	TeardownSeconds     float64 `json:"teardown_seconds"`                // stopping QEMU, syncing, removing scratch
	TotalSeconds        float64 `json:"total_seconds"`                   // Run called → Run returns
	FirstIterSeconds    float64 `json:"first_iteration_at_seconds"`      // Run called → first iteration starts
	CrashAtSeconds      float64 `json:"crash_at_seconds,omitempty"`      // Run called → crash line reached the host
	IterOverheadMillis  float64 `json:"iteration_overhead_ms"`           // median host-side minus guest-side duration
	LoopMode            string  `json:"loop_mode,omitempty"`             // "agent" (loop in the guest) or "ssh" (a session per iteration)
}

// Step is one setup step's duration.
type Step struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"`
}

// Iters summarises iteration durations; Millis keeps each one (the first maxIterKept).
type Iters struct {
	Count      int       `json:"count"`
	MedianMs   float64   `json:"median_ms"`
	MinMs      float64   `json:"min_ms"`
	MaxMs      float64   `json:"max_ms"`
	Millis     []float64 `json:"ms,omitempty"`
	GuestMs    []float64 `json:"guest_ms,omitempty"` // the same iterations timed inside the guest
	overflowed bool
}

// maxIterKept bounds meta.json for runs of hours of short iterations.
const maxIterKept = 20000

func (it *Iters) add(host, guest time.Duration) {
	it.Count++
	if len(it.Millis) >= maxIterKept {
		it.overflowed = true
		return
	}
	it.Millis = append(it.Millis, ms(host))
	if guest > 0 {
		it.GuestMs = append(it.GuestMs, ms(guest))
	}
}

func (it *Iters) summarize() {
	if len(it.Millis) == 0 {
		return
	}
	s := append([]float64(nil), it.Millis...)
	sort.Float64s(s)
	it.MinMs, it.MaxMs, it.MedianMs = s[0], s[len(s)-1], Median(s)
}

// Median of values (NaN-free); 0 for none. values need not be sorted.
func Median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func secs(d time.Duration) float64 { return d.Seconds() }

// agentReady is the agent's console line when its server listens (cmd/reprolab-agent).
const agentReady = "reprolab-agent: ready"

func trackBootMarkers(w *console.Watcher) {
	w.Track(append([]string{agentReady}, console.InitMarkers...)...)
}

// accountBoot fills the boot phases once the SSH session is up. entry is when the kernel was
// first seen running (zero: not seen).
func (r *run) accountBoot(qemuStarted, sshUp, entry time.Time) {
	t := &r.res.Timings
	log := r.watch.Bytes()
	t.BootSeconds = secs(sshUp.Sub(qemuStarted))
	if fo := r.watch.FirstOutput(); !fo.IsZero() {
		t.FirstConsoleSeconds = secs(fo.Sub(qemuStarted))
	}
	if at, _ := console.InitStart(log); at >= 0 {
		t.KernelToInit = at.Seconds()
		// The kernel's clock starts after QEMU, firmware and decompression, and after the
		// kernel's own early work. Where it started in wall time is any line's arrival on
		// the host less its kernel timestamp; the wall time before it is split at the
		// moment the kernel was seen running.
		for _, m := range console.InitMarkers {
			k, seen := console.KernelTime(log, m), r.watch.SeenAt(m)
			if k < 0 || seen.IsZero() {
				continue
			}
			beforeClock := max(0, secs(seen.Sub(qemuStarted))-k.Seconds())
			entered := -1.0
			if !entry.IsZero() {
				entered = secs(entry.Sub(qemuStarted))
			}
			t.FirmwareSeconds, t.KernelEarlySeconds = splitBeforeClock(beforeClock, entered)
			break
		}
	}
	if k := console.KernelTime(log, agentReady); k >= 0 && t.KernelToInit > 0 {
		t.InitToAgent = max(0, k.Seconds()-t.KernelToInit)
	}
	if seen := r.watch.SeenAt(agentReady); !seen.IsZero() {
		t.AgentToSSH = max(0, secs(sshUp.Sub(seen)))
	}
}

// splitBeforeClock divides the wall time before the kernel's clock started between the
// firmware (up to the kernel's entry, seconds after QEMU started; negative: not seen) and the
// kernel's own early work. An entry seen only after the clock started (a late sample) says
// nothing, and all of it stays firmware, as before entries were sampled.
func splitBeforeClock(beforeClock, entered float64) (firmware, early float64) {
	if entered < 0 || entered >= beforeClock {
		return beforeClock, 0
	}
	return entered, beforeClock - entered
}

func (r *run) recordLoad(start bool) {
	l, err := hostload.Read()
	if err != nil {
		return
	}
	if start {
		r.res.HostLoad = &l
	} else {
		r.res.HostLoadEnd = &l
	}
}

// KernelOwnSeconds is the kernel's whole time to /init: from when it was seen running, not
// only from when its clock started.
func (t Timings) KernelOwnSeconds() float64 { return t.KernelEarlySeconds + t.KernelToInit }

// Split is the one-line account of where a run's time went, for `reprolab run`'s last line
// and benchmark logs.
func (t Timings) Split() string {
	var b strings.Builder
	if t.RestoreSeconds > 0 {
		fmt.Fprintf(&b, "%.1fs total = disks %.1f + qemu %.1f + restore %.1f + reseed %.1f",
			t.TotalSeconds, t.ImageSeconds, t.QEMUStartSeconds, t.RestoreSeconds, t.ReseedSeconds)
	} else {
		fmt.Fprintf(&b, "%.1fs total = image %.1f + qemu %.1f + firmware %.1f + kernel before its clock %.1f + kernel→/init %.1f + /init→agent %.1f + agent→ssh %.1f",
			t.TotalSeconds, t.ImageSeconds, t.QEMUStartSeconds, t.FirmwareSeconds, t.KernelEarlySeconds, t.KernelToInit, t.InitToAgent, t.AgentToSSH)
	}
	if len(t.Setup) > 0 {
		var steps []string
		for _, s := range t.Setup {
			steps = append(steps, fmt.Sprintf("%s %.1f", strings.Fields(s.Step)[0], s.Seconds))
		}
		fmt.Fprintf(&b, " + setup %.1f (%s)", t.SetupSeconds, strings.Join(steps, ", "))
	}
	if t.SnapshotSaveSeconds > 0 {
		fmt.Fprintf(&b, " + snapshot save %.1f", t.SnapshotSaveSeconds)
	}
	fmt.Fprintf(&b, " + loop %.1f", t.LoopSeconds)
	if t.Iterations.Count > 0 {
		fmt.Fprintf(&b, " (%d iterations, median %.0f ms", t.Iterations.Count, t.Iterations.MedianMs)
		if t.IterOverheadMillis > 0 {
			fmt.Fprintf(&b, ", harness %.0f ms each", t.IterOverheadMillis)
		}
		b.WriteString(")")
	}
	if t.CrashReportSeconds > 0 {
		fmt.Fprintf(&b, " + crash report %.1f (noticed %.0f ms after the line)", t.CrashReportSeconds, 1000*t.CrashNoticeSeconds)
	}
	fmt.Fprintf(&b, " + teardown %.1f", t.TeardownSeconds)
	if t.FirstIterSeconds > 0 {
		fmt.Fprintf(&b, "; first iteration at %.1fs", t.FirstIterSeconds)
	}
	if t.CrashAtSeconds > 0 {
		fmt.Fprintf(&b, "; crash at %.1fs", t.CrashAtSeconds)
	}
	return b.String()
}

// accountCrash records how fast a crash was noticed and how long its report took.
func (r *run) accountCrash(noticed time.Time) {
	t := &r.res.Timings
	t.CrashReportSeconds = secs(time.Since(noticed))
	if seen := r.watch.CrashSeen(); !seen.IsZero() {
		t.CrashNoticeSeconds = max(0, secs(noticed.Sub(seen)))
		t.CrashAtSeconds = secs(seen.Sub(r.res.Started))
	}
}
