// Package qemu starts and controls one QEMU guest: the argv for each arch and accelerator,
// the process lifecycle (no orphans, ever), the console stream and the QMP monitor.
//
// Every QEMU process runs in its own process group with a parent-death signal, so it dies
// with the orchestrator even when the orchestrator is SIGKILLed; Stop and Kill reap it on
// every other path.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/qmp"
)

// AgentPortName is the virtio-serial port name the guest agent looks for.
const AgentPortName = "org.reprolab.agent"

// Disk is a virtio block device. The guest sees Name as the device serial, so setup steps
// can address disks by name instead of by probe order.
type Disk struct {
	Name string
	Path string
}

// Config describes one guest.
type Config struct {
	Arch     Arch
	Accel    Accel  // Auto when empty
	Binary   string // QEMU binary; Arch.Binary() from PATH when empty
	Kernel   string
	Initrd   string
	Cmdline  string
	CPUs     int
	MemoryMB int
	Disks    []Disk
	// AgentSocket, when set, is the host end of the agent's virtio-serial port.
	AgentSocket string
	// Dir holds the QMP socket; a short path (unix sockets are limited to 108 bytes).
	Dir string
	// Console receives the guest's serial console bytes as they arrive.
	Console io.Writer
	// CacheDir keeps the KVM verdict across runs; empty disables that cache.
	CacheDir string
	// Say receives one-line notices (accelerator fallback); may be nil.
	Say func(string)
	// Incoming, when set, is a device-state file written by SaveState: QEMU restores the
	// guest from it instead of booting (the rest of Config must match the saved guest's).
	Incoming string
}

// Instance is a running QEMU.
type Instance struct {
	Accel   Accel
	Args    []string
	Started time.Time
	QMP     *qmp.Monitor

	cmd         *exec.Cmd
	done        chan struct{}
	waitErr     error
	stderr      *tail
	firstOutput chan struct{}
	consoleDone chan struct{}
	killOnce    sync.Once

	disks []Disk
	io    ioWatch

	serialMu sync.Mutex
	arch     Arch
	serialIn *os.File // QEMU's stdin: the console chardev's input; nil once QEMU exited
}

// MissingBinaryError is returned when the QEMU binary is not installed.
type MissingBinaryError struct {
	Binary, Package string
}

func (e *MissingBinaryError) Error() string {
	return fmt.Sprintf("%s not found in PATH: install it with 'apt-get install %s' (or pass --qemu)", e.Binary, e.Package)
}

// Start launches QEMU. With Accel Auto on a host whose KVM cannot run a guest it falls back
// to TCG within KVMWindow and says so.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	say := cfg.Say
	if say == nil {
		say = func(string) {}
	}
	if cfg.Accel == "" {
		cfg.Accel = Auto
	}
	bin := cfg.Binary
	if bin == "" {
		bin = cfg.Arch.Binary()
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, &MissingBinaryError{Binary: bin, Package: cfg.Arch.DebianPackage()}
	}
	for _, f := range []string{cfg.Kernel, cfg.Initrd} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
	}
	accel, err := initialAccel(cfg.Accel, cfg.Arch, cfg.CacheDir, say)
	if err != nil {
		return nil, err
	}
	inst, err := launch(ctx, path, cfg, accel)
	if accel != KVM || cfg.Accel != Auto {
		return inst, err
	}
	// Auto with KVM: a KVM that cannot run this guest shows as QEMU dying at once or as
	// total console silence. Either way, fall back to TCG.
	if err != nil {
		reason := oneLine(err.Error())
		saveVerdict(cfg.CacheDir, cfg.Arch, verdict{Reason: reason, When: time.Now()})
		say("KVM does not run guests here (" + reason + "): falling back to TCG")
		return launch(ctx, path, cfg, TCG)
	}
	select {
	case <-inst.firstOutput:
		saveVerdict(cfg.CacheDir, cfg.Arch, verdict{Usable: true, When: time.Now()})
		return inst, nil
	case <-inst.done:
		reason := "QEMU exited under KVM: " + inst.stderr.String()
		saveVerdict(cfg.CacheDir, cfg.Arch, verdict{Reason: reason, When: time.Now()})
		say("KVM does not run guests here (" + oneLine(reason) + "): falling back to TCG")
	case <-time.After(KVMWindow):
		inst.Kill()
		reason := fmt.Sprintf("no console output within %s under KVM", KVMWindow)
		saveVerdict(cfg.CacheDir, cfg.Arch, verdict{Reason: reason, When: time.Now()})
		say("KVM does not run guests here (" + reason + "): falling back to TCG")
	case <-ctx.Done():
		inst.Kill()
		return nil, ctx.Err()
	}
	return launch(ctx, path, cfg, TCG)
}

// Args builds the QEMU command line (without the binary) for cfg under accel.
func Args(cfg Config, accel Accel) []string {
	cpus, mem := cfg.CPUs, cfg.MemoryMB
	if cpus <= 0 {
		cpus = 1
	}
	if mem <= 0 {
		mem = 512
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none",
		// A guest reboot is the end of the run, never a silent second boot.
		"-no-reboot",
		// On a kernel panic reported through pvpanic the guest is paused, not reset, so
		// its memory can still be dumped.
		"-action", "panic=pause",
	}
	args = append(args, cfg.Arch.machineArgs(accel)...)
	if fw := Firmware(cfg); fw != "" {
		args = append(args, "-bios", fw)
	}
	args = append(args,
		"-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
		// mux=on only so that "C-a b" on stdin sends a break: the serial magic sysrq that
		// asks a hung kernel for its backtraces (SerialSysrq). Nothing else is written.
		"-chardev", "stdio,id=console,signal=off,mux=on",
		"-serial", "chardev:console",
		"-qmp", "unix:"+filepath.Join(cfg.Dir, "qmp.sock")+",server=on,wait=off",
	)
	if cfg.Kernel != "" {
		args = append(args, "-kernel", cfg.Kernel)
	}
	if cfg.Initrd != "" {
		args = append(args, "-initrd", cfg.Initrd)
	}
	if cfg.Cmdline != "" {
		args = append(args, "-append", cfg.Cmdline)
	}
	for i, d := range cfg.Disks {
		id := driveID(i)
		// cache=unsafe: the disks are scratch, rebuilt per run; host flushes only slow
		// the guest down. werror/rerror=stop: a host I/O error (a full disk) pauses the
		// guest and is reported to the lab (BLOCK_IO_ERROR), never passed to the guest,
		// whose file system would fail in ways that look like a kernel bug.
		args = append(args,
			"-drive", "file="+d.Path+",if=none,id="+id+",format=raw,cache=unsafe,werror=stop,rerror=stop",
			"-device", "virtio-blk-pci,drive="+id+",serial="+d.Name)
	}
	if cfg.Incoming != "" {
		// exec:, because file: URIs arrived only in QEMU 8.2; the guest runs as soon as
		// the state is loaded.
		args = append(args, "-incoming", "exec:cat "+shellQuote(cfg.Incoming))
	}
	if cfg.AgentSocket != "" {
		args = append(args,
			"-device", "virtio-serial-pci",
			"-chardev", "socket,id=agent,path="+cfg.AgentSocket+",server=on,wait=off",
			"-device", "virtserialport,chardev=agent,name="+AgentPortName)
	}
	return args
}

func launch(ctx context.Context, bin string, cfg Config, accel Accel) (*Instance, error) {
	if cfg.Dir == "" {
		return nil, errors.New("qemu: Config.Dir is required")
	}
	_ = os.Remove(filepath.Join(cfg.Dir, "qmp.sock"))
	if cfg.AgentSocket != "" {
		_ = os.Remove(cfg.AgentSocket)
	}
	args := Args(cfg, accel)
	cmd := exec.Command(bin, args...)
	// The console comes through a plain pipe we read ourselves, so no exec goroutine holds
	// Wait hostage and every byte is seen as it arrives.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = pw
	inst := &Instance{
		Accel:       accel,
		arch:        cfg.Arch,
		disks:       cfg.Disks,
		Args:        args,
		cmd:         cmd,
		done:        make(chan struct{}),
		stderr:      newTail(16 << 10),
		firstOutput: make(chan struct{}),
		consoleDone: make(chan struct{}),
	}
	cmd.Stderr = inst.stderr
	// stdin stays open but silent: the stdio chardev would otherwise see EOF.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	cmd.Stdin = stdinR
	inst.serialIn = stdinW
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a terminal's Ctrl-C reaches only reprolab, which then
		// decides how to stop the guest, and Kill can take the whole group.
		Setpgid: true,
		// Dies with us even on SIGKILL. The signal is tied to the creating OS thread,
		// hence the locked goroutine below that lives as long as QEMU does.
		Pdeathsig: syscall.SIGKILL,
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		inst.waitErr = cmd.Wait()
		inst.serialMu.Lock()
		stdinW.Close()
		inst.serialIn = nil
		inst.serialMu.Unlock()
		close(inst.done)
	}()
	err = <-started
	pw.Close()
	stdinR.Close()
	if err != nil {
		pr.Close()
		stdinW.Close()
		return nil, fmt.Errorf("qemu: start %s: %w", bin, err)
	}
	inst.Started = time.Now()
	go inst.copyConsole(pr, cfg.Console)

	inst.QMP = qmp.New(filepath.Join(cfg.Dir, "qmp.sock"))
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	connected := make(chan error, 1)
	go func() { connected <- inst.QMP.ConnectContext(qctx) }()
	select {
	case err = <-connected:
	case <-inst.done:
		cancel()
		<-connected
		err = inst.ExitError()
	}
	if err != nil {
		// QMP usually notices a dying QEMU first; its stderr says why, so prefer that.
		select {
		case <-inst.done:
			err = inst.ExitError()
		case <-time.After(time.Second):
		}
		inst.Kill()
		return nil, startFailure(bin, err)
	}
	inst.watchIOErrors(cfg.Disks)
	return inst, nil
}

func (inst *Instance) copyConsole(r *os.File, w io.Writer) {
	defer close(inst.consoleDone)
	defer r.Close()
	buf := make([]byte, 32<<10)
	first := true
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if first {
				close(inst.firstOutput)
				first = false
			}
			if w != nil {
				_, _ = w.Write(buf[:n])
			}
		}
		if err != nil {
			return
		}
	}
}

// Exited is closed when the QEMU process has exited and been reaped.
func (inst *Instance) Exited() <-chan struct{} { return inst.done }

// ConsoleClosed is closed after the last console byte has been delivered.
func (inst *Instance) ConsoleClosed() <-chan struct{} { return inst.consoleDone }

// ExitError describes how QEMU ended, with the tail of its stderr. Only valid after Exited.
func (inst *Instance) ExitError() error {
	return &ExitError{Wait: inst.waitErr, Stderr: strings.TrimSpace(inst.stderr.String())}
}

// ExitError is how QEMU ended: its wait status (nil for a clean exit, as when a guest
// with -no-reboot resets or powers off) and the tail of its stderr.
type ExitError struct {
	Wait   error
	Stderr string
}

func (e *ExitError) Error() string {
	msg := "exited"
	if e.Wait != nil {
		msg = e.Wait.Error()
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return "QEMU " + msg
}

func (e *ExitError) Unwrap() error { return e.Wait }

// Failed says QEMU itself gave up with a non-zero exit status (a QEMU error), rather
// than exiting cleanly because the guest stopped or being killed.
func (e *ExitError) Failed() bool {
	var ee *exec.ExitError
	return errors.As(e.Wait, &ee) && ee.ExitCode() > 0
}

// KernelRejectedError is QEMU refusing the kernel image itself before the guest ran
// ("linux kernel too old to load a ram disk", "could not load kernel"): the kernel's
// failure to boot (lab/fault Boot), not the lab's.
type KernelRejectedError struct{ Err error }

func (e *KernelRejectedError) Error() string         { return e.Err.Error() }
func (e *KernelRejectedError) Unwrap() error         { return e.Err }
func (e *KernelRejectedError) FaultKind() fault.Kind { return fault.Boot }

// rejectRE matches QEMU's own messages for a kernel image it cannot load (hw/core,
// hw/i386/x86.c, hw/arm/boot.c).
var rejectRE = regexp.MustCompile(`(?i)could not load kernel|linux kernel too old|error loading (uncompressed )?kernel|cannot load kernel|kernel image .*(too|invalid)`)

// startFailure classifies QEMU dying before its monitor answered.
func startFailure(bin string, err error) error {
	err = fmt.Errorf("qemu: %s did not start: %w", bin, err)
	var ee *ExitError
	if errors.As(err, &ee) && rejectRE.MatchString(ee.Stderr) {
		return &KernelRejectedError{Err: err}
	}
	return err
}

// Kill SIGKILLs QEMU's process group and waits until it is reaped.
func (inst *Instance) Kill() {
	inst.killOnce.Do(func() {
		if inst.cmd.Process != nil {
			_ = syscall.Kill(-inst.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	<-inst.done
	if inst.QMP != nil {
		_ = inst.QMP.Disconnect()
	}
}

// Stop asks QEMU to quit over QMP, and kills it if it has not exited within grace.
func (inst *Instance) Stop(grace time.Duration) error {
	select {
	case <-inst.done:
		inst.Kill()
		return nil
	default:
	}
	var result *multierror.Error
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := inst.QMP.Execute(ctx, "quit", nil, nil); err != nil && !errors.Is(err, qmp.ErrClosed) {
		result = multierror.Append(result, err)
	}
	select {
	case <-inst.done:
	case <-ctx.Done():
		result = multierror.Append(result, fmt.Errorf("QEMU ignored quit for %s; killed", grace))
	}
	inst.Kill()
	return result.ErrorOrNil()
}

// Pid is QEMU's process ID.
func (inst *Instance) Pid() int { return inst.cmd.Process.Pid }

// Status returns the QMP run state ("running", "paused", "guest-panicked", ...).
func (inst *Instance) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	err := inst.QMP.Execute(ctx, "query-status", nil, &st)
	return st.Status, err
}

// DumpGuestMemory writes the guest's memory as an ELF core that crash(8) reads. The guest
// should be paused first (it is, after a pvpanic panic).
func (inst *Instance) DumpGuestMemory(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return inst.QMP.Execute(ctx, "dump-guest-memory", map[string]any{
		"paging": false, "protocol": "file:" + abs,
	}, nil)
}

// tail keeps the last n bytes written to it.
type tail struct {
	mu  sync.Mutex
	n   int
	buf []byte
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.n {
		t.buf = t.buf[len(t.buf)-t.n:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
