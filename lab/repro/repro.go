// Package repro runs one reproducer in one booted guest: it boots the kernel, waits for the
// agent, runs the spec's setup steps, loops the reproducer under its budget while the
// console is watched for a crash, and ends in exactly one Outcome with every artifact in
// results/<run-id>/.
//
// A kernel crash is a result. Everything else that goes wrong — QEMU dying, the agent never
// answering, a setup step failing, the host running out of disk — is an InfraError or a
// BootFailed and is never counted as a reproduction.
package repro

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/crypto/ssh"

	"github.com/reprolab/reprolab/lab/console"
	"github.com/reprolab/reprolab/lab/guest"
	"github.com/reprolab/reprolab/lab/image"
	"github.com/reprolab/reprolab/lab/progress"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/report"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/tmpdir"
)

// Config is one run.
type Config struct {
	Arch       qemu.Arch
	Accel      qemu.Accel
	QEMUBinary string
	Kernel     string
	Vmlinux    string // optional: symbolization and vmcore analysis
	ModulesDir string // optional: a distro kernel's lib/modules/<version>
	Repro      *spec.Reproducer
	// Iterations and Duration override the spec's budget when non-zero.
	Iterations int
	Duration   time.Duration
	// Cmdline is appended to the kernel command line (e.g. probe delay parameters).
	Cmdline    []string
	ResultsDir string
	CacheDir   string
	RunID      string // generated when empty
	// Progress receives the run's notices and its live status (lab/progress: a bar on a
	// terminal, timestamped lines otherwise; pass a progress.Display to share one).
	Progress io.Writer
	// BootTimeout bounds QEMU start → agent answering; default scales with the accelerator.
	BootTimeout time.Duration
	// DumpVmcore keeps a guest memory dump of a panicked guest in the run dir.
	DumpVmcore bool
	// Snapshot restores the guest from a state saved after boot and setup (one per kernel,
	// reproducer and command line, in CacheDir/snapshots), saving it first if needed.
	Snapshot bool
	// LoopOverSSH runs each iteration as its own SSH command (the pre-agent-loop way),
	// for comparing the harness's overhead; normally the loop runs inside the guest.
	LoopOverSSH bool
}

// Run performs one run. It returns an error only for bad input discovered before anything
// started; every other ending is a Result with its Outcome (and Error for failures).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, fault.AsInput(err)
	}
	r := &run{cfg: cfg, res: &Result{}}
	return r.do(ctx)
}

func (c *Config) check() error {
	if c.Repro == nil {
		return errors.New("no reproducer spec")
	}
	// The spec's name and the run ID name the run's folder: one path element, so that
	// nothing is ever written outside ResultsDir whoever built the Config.
	if err := spec.ValidName(c.Repro.Name); err != nil {
		return fmt.Errorf("reproducer %s: %w", c.Repro.Path, err)
	}
	if id := c.RunID; id != "" && (id == "." || id == ".." || strings.ContainsAny(id, "/\x00") || filepath.Base(id) != id) {
		return fmt.Errorf("run id %q: want one folder name inside the results folder", c.RunID)
	}
	st, err := os.Stat(c.Kernel)
	if err != nil {
		return fmt.Errorf("kernel image: %w", err)
	}
	if st.IsDir() || st.Size() == 0 {
		return fmt.Errorf("kernel image %s is not a file with content", c.Kernel)
	}
	if err := CheckKernelImage(c.Kernel, c.Arch); err != nil {
		return err
	}
	if c.ModulesDir != "" {
		if _, err := os.Stat(filepath.Join(c.ModulesDir, "modules.order")); err != nil {
			if _, err2 := os.Stat(filepath.Join(c.ModulesDir, "kernel")); err2 != nil {
				return fmt.Errorf("--modules %s does not look like lib/modules/<version> (no modules.order, no kernel/)", c.ModulesDir)
			}
		}
	}
	if c.Vmlinux != "" {
		if _, err := os.Stat(c.Vmlinux); err != nil {
			return fmt.Errorf("--vmlinux: %w", err)
		}
	}
	bin := c.QEMUBinary
	if bin == "" {
		bin = c.Arch.Binary()
	}
	if _, err := lookPath(bin); err != nil {
		return &qemu.MissingBinaryError{Binary: bin, Package: c.Arch.DebianPackage()}
	}
	if c.ResultsDir == "" {
		c.ResultsDir = "results"
	}
	if c.Iterations < 0 || c.Duration < 0 || c.BootTimeout < 0 {
		return errors.New("iterations, duration and boot timeout cannot be negative")
	}
	if c.Repro.Budget.IterationTimeout <= 0 {
		// A spec loaded by lab/spec always has one; a zero here would call every
		// iteration hung.
		return fmt.Errorf("reproducer %s: iteration timeout %s must be positive", c.Repro.Name, c.Repro.Budget.IterationTimeout.Std())
	}
	if mem := hostMemory(); mem > 0 && int64(c.Repro.Guest.Memory) > mem {
		return fmt.Errorf("reproducer %s (%s): guest.memory %s is more than this host's %d MiB of RAM", c.Repro.Name, c.Repro.Path, c.Repro.Guest.Memory, mem>>20)
	}
	return nil
}

type run struct {
	cfg     Config
	prog    *progress.Task
	res     *Result
	scratch string
	watch   *console.Watcher
	vm      *qemu.Instance
	client  *guest.Client
	guestLg *os.File
	iter    int
	loopAt  time.Time
	lastOut *lastLines
	oomSeen int             // console offset up to which OOM reports have been recorded
	syms    *report.Symbols // the guest's text symbols, for arm64 register backtraces
	// events says the in-guest loop's progress lines (parsed on the SSH output
	// goroutine) have news for the goroutine that owns the run's state; nil when unused.
	events   chan struct{}
	progress *iterLines
	loopStop *loopStop
	// What the guest was booted with, for saving a snapshot (snapshot.go).
	disks      []qemu.Disk
	initrd     string
	hostKey    ssh.PublicKey
	signer     ssh.Signer
	clientPriv ed25519.PrivateKey
	snap       *snapshotDir
	bootKernel string // what QEMU was given: the image, or its PVH vmlinux
	// lateModules: the initramfs has modules the agent loads after it answers, which
	// setup waits for first (setup.go).
	lateModules bool
}

// say prints a notice line (lab/progress: above the run's bar on a terminal, with a
// timestamp otherwise).
func (r *run) say(format string, args ...any) { r.task().Noticef(format, args...) }

// status sets the run's live status: on its bar only, never a line per change.
func (r *run) status(format string, args ...any) { r.task().Status(fmt.Sprintf(format, args...)) }

// task is the run's progress task, started on first use (nil without Progress).
func (r *run) task() *progress.Task {
	if r.prog == nil && r.cfg.Progress != nil {
		r.prog = progress.Start(r.cfg.Progress, "run "+string(r.cfg.Arch))
	}
	return r.prog
}

func (r *run) do(ctx context.Context) (res *Result, err error) {
	cfg := r.cfg
	defer r.task().Done()
	res = r.res
	r.sweepStale()
	if cfg.RunID == "" {
		cfg.RunID = newRunID(cfg.Arch, cfg.Repro.Name)
		r.cfg.RunID = cfg.RunID
	}
	res.RunID = cfg.RunID
	res.Dir = filepath.Join(cfg.ResultsDir, cfg.RunID)
	res.Arch = string(cfg.Arch)
	res.Kernel = cfg.Kernel
	res.KernelSHA = fileSHA(cfg.Kernel)
	res.Vmlinux = cfg.Vmlinux
	res.Modules = cfg.ModulesDir
	res.Spec = cfg.Repro.Path
	res.SpecName = cfg.Repro.Name
	res.CPUs = cfg.Repro.Guest.CPUs
	res.MemoryMB = cfg.Repro.Guest.Memory.MB()
	res.Budget.Iterations, res.Budget.Seconds = r.budget()
	res.Host, _ = os.Hostname()
	res.Started = time.Now().UTC()
	r.recordLoad(true)
	res.Outcome = Running
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return nil, fault.Inputf("results dir: %w", err)
	}
	if err := res.WriteMeta(); err != nil {
		return nil, fault.Inputf("results dir: %w", err)
	}

	var cleanup *multierror.Error
	var teardownAt time.Time
	defer func() {
		teardownAt = time.Now()
		if r.snap != nil {
			// This run was to save a snapshot and did not get there: let the next try.
			_ = r.snap.lock.Close()
		}
		if r.client != nil {
			_ = r.client.Close()
		}
		if r.vm != nil {
			if err := r.vm.Stop(5 * time.Second); err != nil {
				cleanup = multierror.Append(cleanup, err)
			}
		}
		if r.watch != nil {
			if err := r.watch.Close(); err != nil {
				cleanup = multierror.Append(cleanup, fmt.Errorf("console.log: %w", err))
			}
		}
		if r.guestLg != nil {
			_ = r.guestLg.Sync()
			_ = r.guestLg.Close()
		}
		if r.scratch != "" {
			if err := os.RemoveAll(r.scratch); err != nil {
				cleanup = multierror.Append(cleanup, err)
			}
		}
		res.Finished = time.Now().UTC()
		res.Timings.TeardownSeconds = secs(res.Finished.Sub(teardownAt))
		res.Timings.TotalSeconds = secs(res.Finished.Sub(res.Started))
		res.Timings.Iterations.summarize()
		r.recordLoad(false)
		if err := cleanup.ErrorOrNil(); err != nil && res.Outcome == Survived {
			// A clean loop whose teardown failed still survived; say what went wrong.
			res.Error = "teardown: " + err.Error()
		}
		if err := res.WriteMeta(); err != nil {
			res.Outcome = InfraError
			res.Error = fmt.Sprintf("writing meta.json: %v (host disk full?)", err)
		}
	}()

	outcome, why := r.execute(ctx)
	res.Outcome = outcome
	if why != nil {
		res.Error = why.Error()
	}
	return res, nil
}

func (r *run) budget() (int, float64) {
	it := r.cfg.Repro.Budget.Iterations
	d := r.cfg.Repro.Budget.Duration.Std()
	if r.cfg.Iterations > 0 || r.cfg.Duration > 0 {
		// An override on the command line replaces the whole budget: asking for 3
		// iterations must not also inherit the spec's 10-minute limit, and vice versa.
		it, d = r.cfg.Iterations, r.cfg.Duration
	}
	return it, d.Seconds()
}

// execute boots, sets up and loops. It returns the outcome and, for failures, why.
func (r *run) execute(ctx context.Context) (Outcome, error) {
	cfg, res := r.cfg, r.res
	var err error
	if r.scratch, err = tmpdir.New(); err != nil {
		return InfraError, fmt.Errorf("scratch dir: %w", err)
	}
	r.noteOwner()
	if r.watch, err = console.New(filepath.Join(res.Dir, "console.log")); err != nil {
		return InfraError, fmt.Errorf("console.log: %w", err)
	}
	if r.guestLg, err = os.Create(filepath.Join(res.Dir, "guest.log")); err != nil {
		return InfraError, fmt.Errorf("guest.log: %w", err)
	}
	trackBootMarkers(r.watch)
	if cfg.Snapshot {
		// A saved state restores in seconds; without one this run boots and saves it.
		if o, err, restored := r.fromSnapshot(ctx); restored {
			return o, err
		}
	}
	imageAt := time.Now()

	// Image: cached base initramfs + a per-run overlay holding this run's client key.
	r.say("image: building initramfs for %s", cfg.Arch)
	initrd, hostKey, signer, err := r.buildImage(ctx)
	if err != nil {
		return InfraError, err
	}
	var disks []qemu.Disk
	for _, d := range cfg.Repro.Disks {
		p, err := image.MakeDisk(ctx, cfg.CacheDir, r.scratch, image.DiskSpec{Name: d.Name, Kind: d.Kind, SizeMB: d.Size.MB()})
		if err != nil {
			return InfraError, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		disks = append(disks, qemu.Disk{Name: d.Name, Path: p})
	}
	r.disks, r.initrd, r.hostKey, r.signer = disks, initrd, hostKey, signer

	res.Timings.ImageSeconds = time.Since(imageAt).Seconds()

	cmdline := r.cmdline()
	res.Cmdline = cmdline
	r.say("boot: %s %s", cfg.Arch, cfg.Kernel)
	qemuAt := time.Now()
	bootKernel := cfg.Kernel
	if p := r.pvhKernel(ctx); p != "" {
		// No real-mode setup and no self-decompression under TCG (pvh.go).
		bootKernel, res.BootEntry = p, "pvh"
	}
	r.bootKernel = bootKernel
	r.vm, err = qemu.Start(ctx, qemu.Config{
		Arch: cfg.Arch, Accel: cfg.Accel, Binary: cfg.QEMUBinary,
		Kernel: bootKernel, Initrd: initrd, Cmdline: cmdline,
		CPUs: cfg.Repro.Guest.CPUs, MemoryMB: cfg.Repro.Guest.Memory.MB(),
		Disks: disks, AgentSocket: filepath.Join(r.scratch, "agent.sock"), Dir: r.scratch,
		Console: r.watch, CacheDir: cfg.CacheDir,
		Say: func(s string) { r.say("qemu: %s", s) },
	})
	if err != nil {
		// QEMU refusing the image itself (qemu.KernelRejectedError) is the kernel's
		// failure to boot, not the lab's.
		if fault.Is(err, fault.Boot) {
			return BootFailed, err
		}
		return InfraError, err
	}
	res.Accel = string(r.vm.Accel)
	res.QEMUArgs = r.vm.Args
	res.Timings.QEMUStartSeconds = secs(r.vm.Started.Sub(qemuAt))
	_ = res.WriteMeta()

	// Boot: wait for the agent, but a crash or QEMU's death ends the wait at once. Meanwhile
	// the kernel's entry is watched for, so its early work is not counted as firmware.
	entryCtx, stopEntry := context.WithCancel(ctx)
	entry := make(chan time.Time, 1)
	go func() {
		t, _ := r.vm.KernelEntry(entryCtx)
		entry <- t
	}()
	o, err := r.boot(ctx, hostKey, signer)
	stopEntry()
	kernelEntry := <-entry
	if o != "" {
		return o, err
	}
	sshUp := time.Now()
	res.BootSeconds = secs(sshUp.Sub(r.vm.Started))
	r.accountBoot(r.vm.Started, sshUp, kernelEntry)
	res.KernelToInit = res.Timings.KernelToInit
	r.prepareVmcore(ctx)
	r.say("boot: agent answered after %.1fs (kernel reached /init at %.2fs, accel %s)", res.BootSeconds, res.KernelToInit, res.Accel)

	if o, err := r.setup(ctx); o != "" {
		return o, err
	}
	if o, err := r.saveSnapshot(ctx); o != "" {
		return o, err
	}
	return r.loop(ctx)
}

func (r *run) cmdline() string {
	a := r.cfg.Arch
	parts := []string{
		"console=" + a.Console(),
		// Panic on the first oops so the report stays the first thing on the console
		// and the guest stops instead of limping on; pvpanic then pauses it for a dump.
		"oops=panic", r.panicParam(),
		// Fixed addresses: symbolization against vmlinux needs no KASLR offset.
		"nokaslr",
		"printk.time=1", "rdinit=/init",
		// Every sysrq key, from the serial console too (distros allow only a few): a hung
		// guest is asked for its backtraces with sysrq l/w/t.
		"sysrq_always_enabled",
	}
	if a == qemu.X86_64 {
		// The lab's NMI on a hung guest then panics it with the stack of the CPU that
		// took it: the one evidence a guest with every CPU stuck, interrupts off, gives.
		parts = append(parts, "unknown_nmi_panic")
	}
	parts = append(parts, r.cfg.Repro.Guest.Cmdline...)
	parts = append(parts, r.cfg.Cmdline...)
	return strings.Join(parts, " ")
}

// panicParam decides what the kernel does after a panic. Normally it reboots at once
// (panic=-1), which with -no-reboot ends QEMU: fast and robust. A vmcore needs the panicked
// guest to stay in memory even when the kernel has no pvpanic driver to pause it, so then
// the kernel spins in panic (panic=0) until the lab has dumped it.
func (r *run) panicParam() string {
	if r.cfg.DumpVmcore {
		return "panic=0"
	}
	return "panic=-1"
}

func (r *run) buildImage(ctx context.Context) (string, ssh.PublicKey, ssh.Signer, error) {
	base, err := image.BuildInitramfs(ctx, image.InitramfsSpec{
		Arch: string(r.cfg.Arch), ModulesDir: r.cfg.ModulesDir, CacheDir: r.cfg.CacheDir,
		Progress: r.progressWriter(),
	})
	if err != nil {
		return "", nil, nil, err // lab/image's errors say "initramfs: " themselves
	}
	signer, priv, err := newClientKey()
	if err != nil {
		return "", nil, nil, err
	}
	r.clientPriv = priv
	r.lateModules = len(base.Modules) > len(base.Early)
	overlay, err := image.RunOverlay(r.scratch, signer.PublicKey())
	if err != nil {
		return "", nil, nil, fmt.Errorf("initramfs overlay: %w", err)
	}
	initrd := filepath.Join(r.scratch, "initrd.cpio")
	if err := image.Concat(initrd, base.Path, overlay); err != nil {
		return "", nil, nil, fmt.Errorf("initramfs: %w", err)
	}
	return initrd, base.HostKey, signer, nil
}

func (r *run) progressWriter() io.Writer {
	if r.cfg.Progress == nil {
		return nil
	}
	return r.cfg.Progress
}

// bootTimeout scales with the accelerator: TCG runs a guest 10-20x slower than KVM, and a
// distro kernel loads dozens of modules before the agent can answer.
func (r *run) bootTimeout() time.Duration {
	if r.cfg.BootTimeout > 0 {
		return r.cfg.BootTimeout
	}
	if r.vm != nil && r.vm.Accel == qemu.KVM {
		return 60 * time.Second
	}
	return 180 * time.Second
}

func (r *run) boot(ctx context.Context, hostKey ssh.PublicKey, signer ssh.Signer) (Outcome, error) {
	bctx, cancel := context.WithTimeout(ctx, r.bootTimeout())
	defer cancel()
	type dialed struct {
		c   *guest.Client
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := guest.DialUnix(bctx, filepath.Join(r.scratch, "agent.sock"), hostKey, signer)
		ch <- dialed{c, err}
	}()
	select {
	case d := <-ch:
		if d.err == nil {
			r.client = d.c
			return "", nil
		}
		if ctx.Err() != nil {
			return Interrupted, ctx.Err()
		}
		if o, err := r.ended(ctx); o != "" {
			return o, err
		}
		if e := r.hostIOError(ctx); e != nil {
			return InfraError, e
		}
		return BootFailed, fmt.Errorf("the guest agent did not answer within %s (%v); console tail:\n%s",
			r.bootTimeout(), d.err, r.watch.Tail(20))
	case <-r.watch.Crash():
		cancel()
		return r.crashed(ctx)
	case <-r.vm.Exited():
		cancel()
		return r.ended(ctx)
	case <-r.vm.IOErrorSeen():
		cancel()
		return InfraError, r.vm.IOError()
	}
}

// ended classifies a guest that stopped answering: a crash on the console wins, then a QEMU
// that exited (a kernel that reset or powered off during boot is a boot failure; QEMU
// dying with an error is infrastructure).
func (r *run) ended(ctx context.Context) (Outcome, error) {
	// The console may still be draining the last lines of a panic.
	select {
	case <-r.watch.Crash():
		return r.crashed(ctx)
	case <-time.After(2 * time.Second):
	}
	select {
	case <-r.vm.Exited():
		<-r.vm.ConsoleClosed()
		if report.ContainsCrash(r.watch.Bytes()) {
			return r.crashed(ctx)
		}
		exitErr := r.vm.ExitError()
		if r.iter == 0 && r.client == nil {
			if ee := (*qemu.ExitError)(nil); errors.As(exitErr, &ee) && ee.Failed() {
				return InfraError, fmt.Errorf("%v; console tail:\n%s", exitErr, r.watch.Tail(20))
			}
			return BootFailed, fmt.Errorf("the kernel stopped during boot (%v) without a crash report; console tail:\n%s", exitErr, r.watch.Tail(20))
		}
		return InfraError, fmt.Errorf("%v while the guest was running iteration %d; console tail:\n%s", exitErr, r.iter, r.watch.Tail(20))
	default:
	}
	return "", nil
}

// crashed waits until the report is complete on the console (or the guest has stopped
// printing), dumps memory when the guest paused on panic, and writes the reports.
func (r *run) crashed(ctx context.Context) (Outcome, error) {
	res := r.res
	noticed := time.Now()
	if res.TimeToCrash == 0 && !r.loopAt.IsZero() {
		res.TimeToCrash = time.Since(r.loopAt).Seconds()
	}
	defer r.accountCrash(noticed)
	res.CrashedIter = r.iter
	r.say("crash: kernel crash on the console during %s", r.phase())
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r.watch.CrashComplete() {
			break
		}
		if time.Since(r.watch.LastOutput()) > 3*time.Second {
			break
		}
		select {
		case <-r.vm.Exited():
			<-r.vm.ConsoleClosed()
			deadline = time.Now()
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.awaitPanicPause(ctx)
	if r.cfg.DumpVmcore {
		r.dumpVmcore(ctx)
	}
	r.writeReports()
	return Crashed, nil
}

// awaitPanicPause lets the panic's trailing lines (end Kernel panic) arrive. With a pvpanic
// driver the guest pauses itself at the end of panic() (-action panic=pause), and a paused
// guest prints nothing more, so the wait ends a moment after the pause: a seed trial's report
// used to wait a fixed half second of its 2–10 s. Without the pause (no driver, an oops that
// does not panic) it waits the half second as before.
func (r *run) awaitPanicPause(ctx context.Context) {
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case <-r.vm.Exited():
			return
		case <-ctx.Done():
			return
		default:
		}
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		st, err := r.vm.Status(sctx)
		cancel()
		if err == nil && st == "guest-panicked" {
			// What the vCPU wrote before pausing is in the console pipe: give the reader
			// a moment to take it.
			time.Sleep(50 * time.Millisecond)
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (r *run) phase() string {
	if r.client == nil {
		return "boot"
	}
	if r.iter == 0 {
		return "setup"
	}
	return fmt.Sprintf("iteration %d", r.iter)
}

func (r *run) dumpVmcore(ctx context.Context) {
	select {
	case <-r.vm.Exited():
		return
	default:
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := r.vm.Status(dctx)
	if err != nil {
		return
	}
	if st != "guest-panicked" && st != "paused" {
		// Not paused by pvpanic (no driver in this kernel): stop it ourselves so the
		// dump is consistent.
		_ = r.vm.QMP.Execute(dctx, "stop", nil, nil)
	}
	path := filepath.Join(r.res.Dir, "vmcore")
	if err := r.vm.DumpGuestMemory(dctx, path); err != nil {
		r.say("vmcore: %v", err)
		return
	}
	secretVmcore(path)
	r.res.Vmcore = "vmcore"
	if r.cfg.Arch == qemu.ARM64 {
		r.arm64Backtraces(dctx, path)
		return
	}
	if r.cfg.Vmlinux == "" {
		return
	}
	if _, err := lookPath("crash"); err != nil {
		r.say("vmcore: crash(8) not installed (apt-get install crash): no all-CPU backtraces")
		return
	}
	// What every CPU was doing at the panic: for a race, the other side of it.
	bt, err := report.CrashBacktraces(dctx, "", r.cfg.Vmlinux, path)
	if err != nil {
		r.say("vmcore: %v", err)
		if bt == "" {
			return
		}
	}
	r.writeBacktraces(bt, "crash(8) bt -a")
}

func (r *run) writeReports() {
	log := r.watch.Bytes()
	reps := report.Parse(log)
	var sym *report.Symbolizer
	if r.cfg.Vmlinux != "" {
		if s, err := report.NewSymbolizer(r.cfg.Vmlinux, string(r.cfg.Arch)); err == nil {
			sym = s
			defer s.Close()
		}
	}
	for i, rep := range reps {
		if sym != nil {
			_ = sym.Symbolize(rep)
		}
		name := fmt.Sprintf("report-%d.txt", i+1)
		var buf bytes.Buffer
		_, _ = rep.WriteTo(&buf)
		if err := writeFileSync(filepath.Join(r.res.Dir, name), buf.Bytes()); err != nil {
			r.say("writing %s: %v", name, err)
		}
		r.res.Crashes = append(r.res.Crashes, Crash{
			Title: rep.Title, Type: string(rep.Type), Signature: rep.Signature,
			Corrupted: rep.Corrupted, File: name,
		})
		if i == 0 {
			r.res.Reproduced = r.cfg.Repro.Reproduces(rep.Title)
			r.say("crash: %s", rep.Title)
		}
	}
}

// guestRun runs one command over SSH while watching for a crash, QEMU's death and a hang.
// timeout 0 means the spec's iteration timeout. A non-empty Outcome ends the run.
func (r *run) guestRun(ctx context.Context, cmd string, timeout time.Duration) (int, Outcome, error) {
	return r.guestRunTo(ctx, cmd, timeout, nil)
}

// guestRunTo is guestRun that also passes the command's stdout to progress (the in-guest
// loop's iteration lines), after the guest log has it.
func (r *run) guestRunTo(ctx context.Context, cmd string, timeout time.Duration, progress io.Writer) (int, Outcome, error) {
	if timeout == 0 {
		timeout = r.cfg.Repro.Budget.IterationTimeout.Std()
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &lastLines{w: r.guestLg}
	var stdout io.Writer = out
	if progress != nil {
		stdout = io.MultiWriter(out, progress)
	}
	type ran struct {
		code int
		err  error
	}
	ch := make(chan ran, 1)
	go func() {
		code, err := r.client.Run(cctx, cmd, stdout, out)
		ch <- ran{code, err}
	}()
	r.lastOut = out
	started := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.events:
			r.drainEvents()
			if s := r.loopStop; s != nil {
				cancel()
				return 0, s.o, s.err
			}
			continue
		case d := <-ch:
			r.drainEvents()
			if d.err == nil {
				return d.code, "", nil
			}
			if ctx.Err() != nil {
				return 0, Interrupted, errors.New("interrupted")
			}
			// The connection died: a crash explains it; otherwise QEMU or the agent failed.
			if o, err := r.ended(ctx); o != "" {
				return 0, o, err
			}
			if e := r.hostIOError(ctx); e != nil {
				return 0, InfraError, e
			}
			return 0, InfraError, fmt.Errorf("lost the guest agent during %s (%v) with no crash on the console; console tail:\n%s", r.phase(), d.err, r.watch.Tail(10))
		case <-r.watch.Crash():
			r.drainEvents()
			cancel()
			o, err := r.crashed(ctx)
			return 0, o, err
		case <-r.vm.Exited():
			r.drainEvents()
			cancel()
			o, err := r.ended(ctx)
			if o == "" {
				o, err = InfraError, r.vm.ExitError()
			}
			return 0, o, err
		case <-r.vm.IOErrorSeen():
			cancel()
			return 0, InfraError, r.vm.IOError()
		case <-ctx.Done():
			return 0, Interrupted, errors.New("interrupted")
		case <-tick.C:
			r.showStatus()
			quiet := time.Since(r.watch.LastOutput())
			if time.Since(started) > timeout && quiet > timeout && time.Since(out.last()) > timeout {
				cancel()
				o, err := r.hung(ctx, timeout)
				return 0, o, err
			}
		}
	}
}

func (r *run) showStatus() {
	if r.loopAt.IsZero() {
		r.status("[%s %s] %s", r.cfg.Arch, r.res.Accel, r.phase())
		return
	}
	maxIter, secs := r.budget()
	el := time.Since(r.loopAt).Round(time.Second)
	line := fmt.Sprintf("[%s %s] iteration %d", r.cfg.Arch, r.res.Accel, r.iter)
	if maxIter > 0 {
		line += fmt.Sprintf("/%d", maxIter)
	}
	line += "  " + el.String()
	if secs > 0 {
		line += "/" + time.Duration(secs*float64(time.Second)).String()
	}
	r.status("%s", line)
	switch {
	case maxIter > 0:
		r.task().Progress(int64(r.iter), int64(maxIter))
	case secs > 0:
		r.task().Progress(int64(el.Seconds()), int64(secs))
	}
}

func budgetString(it int, d time.Duration) string {
	var parts []string
	if it > 0 {
		parts = append(parts, fmt.Sprintf("%d iterations", it))
	}
	if d > 0 {
		parts = append(parts, d.String())
	}
	return strings.Join(parts, " or ")
}

func newRunID(arch qemu.Arch, name string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%s-%s-%s", time.Now().UTC().Format("20060102-150405"), arch, name, hex.EncodeToString(b))
}

func fileSHA(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
