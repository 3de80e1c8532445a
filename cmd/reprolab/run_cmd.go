package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reprolab/reprolab/lab/cache"

	"golang.org/x/term"

	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/tmpdir"
)

// cacheDir is where kernels, images and verdicts are cached, outside the repo.
func cacheDir() string { return cache.Dir() }

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// signalContext is cancelled on SIGINT/SIGTERM, so QEMU is stopped and scratch files are
// removed before reprolab exits. A second signal exits at once; QEMU still dies with us
// through its parent-death signal.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "\nreprolab: %v: stopping the guest and cleaning up (again to exit at once)\n", sig)
		cancel()
		<-ch
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func runMain(args []string) int {
	fs := flag.NewFlagSet("reprolab run", flag.ContinueOnError)
	archF := fs.String("arch", "x86_64", "guest architecture: x86_64 or arm64")
	kernel := fs.String("kernel", "", "kernel image (bzImage, Image or a distro vmlinuz)")
	vmlinux := fs.String("vmlinux", "", "vmlinux with symbols, for symbolized reports")
	modules := fs.String("modules", "", "a distro kernel's lib/modules/<version> tree; needed modules go into the initramfs")
	reproF := fs.String("repro", "", "reproducer name (under reproducers/) or path to a repro.yaml")
	iterations := fs.Int("iterations", 0, "iteration budget (overrides the spec's budget)")
	duration := fs.Duration("duration", 0, "time budget for the loop, e.g. 10m (overrides the spec's budget)")
	accelF := fs.String("accel", "auto", "auto (KVM when it really runs guests, else TCG), kvm or tcg")
	qemuBin := fs.String("qemu", "", "QEMU binary (default qemu-system-x86_64 / qemu-system-aarch64 from PATH)")
	results := fs.String("results", "results", "results directory")
	reproDir := fs.String("reproducers", "reproducers", "where reproducer names are looked up")
	vmcore := fs.Bool("vmcore", false, "dump guest memory to results/<run>/vmcore when the guest panics")
	bootTimeout := fs.Duration("boot-timeout", 0, "how long the guest agent may take to answer (default 60s KVM, 180s TCG)")
	var cmdline multiFlag
	fs.Var(&cmdline, "cmdline", "extra kernel command-line parameter (repeatable), e.g. a probe delay")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: reprolab run --arch x86_64|arm64 --kernel IMAGE [--vmlinux F] [--modules DIR] --repro NAME|PATH [--iterations N] [--duration D]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitBadInput
	}
	// Scratch dirs of runs that were SIGKILLed (and so could not clean up) go first.
	if _, err := tmpdir.Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "reprolab run: warning: sweeping stale scratch dirs: %v\n", err)
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "reprolab run: "+format+"\n", a...)
		return exitBadInput
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	arch, err := qemu.ParseArch(*archF)
	if err != nil {
		return bad("%v", err)
	}
	accel, err := qemu.ParseAccel(*accelF)
	if err != nil {
		return bad("%v", err)
	}
	if *kernel == "" {
		return bad("--kernel is required")
	}
	if *reproF == "" {
		return bad("--repro is required")
	}
	path, err := spec.Resolve(*reproF, *reproDir)
	if err != nil {
		return bad("%v", err)
	}
	rs, err := spec.LoadReproducer(path)
	if err != nil {
		return bad("%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	res, err := repro.Run(ctx, repro.Config{
		Arch: arch, Accel: accel, QEMUBinary: *qemuBin,
		Kernel: *kernel, Vmlinux: *vmlinux, ModulesDir: *modules,
		Repro: rs, Iterations: *iterations, Duration: *duration, Cmdline: cmdline,
		ResultsDir: *results, CacheDir: cacheDir(), Progress: os.Stderr, TTY: tty,
		DumpVmcore: *vmcore, BootTimeout: *bootTimeout,
	})
	if err != nil {
		var ie *repro.InputError
		if errors.As(err, &ie) {
			return bad("%v", err)
		}
		fmt.Fprintf(os.Stderr, "reprolab run: %v\n", err)
		return exitInfra
	}
	printResult(res)
	return res.Outcome.ExitCode()
}

func printResult(res *repro.Result) {
	loop := time.Duration(res.LoopSeconds * float64(time.Second)).Round(time.Second)
	switch res.Outcome {
	case repro.Survived:
		fmt.Printf("survived: %d iterations in %s\n", res.Iterations, loop)
	case repro.Crashed:
		title := "(no report parsed)"
		if len(res.Crashes) > 0 {
			title = res.Crashes[0].Title
		}
		phase := fmt.Sprintf("iteration %d", res.CrashedIter)
		if res.CrashedIter == 0 {
			phase = "boot/setup"
		}
		verdict := "not the expected crash"
		if res.Reproduced {
			verdict = "reproduced"
		}
		fmt.Printf("crashed at %s after %.1fs of looping (%s): %s\n", phase, res.TimeToCrash, verdict, title)
	default:
		fmt.Printf("%s: %s\n", res.Outcome, res.Error)
	}
	fmt.Printf("results: %s\n", res.Dir)
}
