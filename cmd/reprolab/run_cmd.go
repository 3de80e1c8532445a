package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/tmpdir"
)

// runFlags are `reprolab run`'s flags.
type runFlags struct {
	arch, kernel, vmlinux, modules, repro, accel, qemu, results, reproducers string
	iterations                                                               int
	duration, bootTimeout                                                    time.Duration
	vmcore, snapshot                                                         bool
	cmdline                                                                  []string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --kernel IMAGE --repro NAME|PATH [flags]",
		Short: "boot a kernel and loop a reproducer until it crashes or the budget is spent",
		Long: `Boot a kernel and loop a reproducer until it crashes or the budget is spent.

` + exitCodesHelp,
		Example: "  reprolab run --kernel bzImage --vmlinux vmlinux --repro memcg-writeback-null --duration 10m",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runRun(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.arch, "arch", "x86_64", "guest architecture: x86_64 or arm64")
	fl.StringVar(&f.kernel, "kernel", "", "kernel image (bzImage, Image or a distro vmlinuz)")
	fl.StringVar(&f.vmlinux, "vmlinux", "", "vmlinux with symbols, for symbolized reports")
	fl.StringVar(&f.modules, "modules", "", "a distro kernel's lib/modules/<version> tree; needed modules go into the initramfs")
	fl.StringVar(&f.repro, "repro", "", "reproducer name (under --reproducers) or path to a repro.yaml")
	fl.IntVar(&f.iterations, "iterations", 0, "iteration budget (overrides the spec's budget)")
	fl.DurationVar(&f.duration, "duration", 0, "time budget for the loop, e.g. 10m (overrides the spec's budget)")
	fl.StringVar(&f.accel, "accel", "auto", "auto (KVM when it really runs guests, else TCG), kvm or tcg")
	fl.StringVar(&f.qemu, "qemu", "", "QEMU binary (default qemu-system-x86_64 / qemu-system-aarch64 from PATH)")
	fl.StringVar(&f.results, "results", "results", "results directory")
	fl.StringVar(&f.reproducers, "reproducers", "reproducers", "where reproducer names are looked up")
	fl.BoolVar(&f.snapshot, "snapshot", false, "boot and set up once per kernel, reproducer and command line, then restore that state (seconds instead of a boot); also set by snapshot: true in the spec")
	fl.BoolVar(&f.vmcore, "vmcore", false, "dump guest memory to results/<run>/vmcore when the guest panics")
	fl.DurationVar(&f.bootTimeout, "boot-timeout", 0, "how long the guest agent may take to answer (default 60s KVM, 180s TCG)")
	fl.StringArrayVar(&f.cmdline, "cmdline", nil, "extra kernel command-line parameter (repeatable), e.g. a probe delay")
	return cmd
}

// check validates the flags before anything is swept, built or booted.
func (f *runFlags) check(cmd *cobra.Command) (*repro.Config, error) {
	if err := positiveFlags(cmd, "iterations", "duration", "boot-timeout"); err != nil {
		return nil, err
	}
	arch, err := qemu.ParseArch(f.arch)
	if err != nil {
		return nil, fault.AsInput(err)
	}
	accel, err := qemu.ParseAccel(f.accel)
	if err != nil {
		return nil, fault.AsInput(err)
	}
	if f.kernel == "" {
		return nil, usagef("--kernel is required")
	}
	if f.repro == "" {
		return nil, usagef("--repro is required")
	}
	path, err := spec.Resolve(f.repro, f.reproducers)
	if err != nil {
		return nil, fault.AsInput(err)
	}
	rs, err := spec.LoadReproducer(path)
	if err != nil {
		return nil, fault.AsInput(err)
	}
	if f.snapshot && !rs.SnapshotDefault() {
		return nil, fault.AsInput(fmt.Errorf("--snapshot: %s says snapshot: false (its setup must be fresh every trial)", path))
	}
	return &repro.Config{
		Arch: arch, Accel: accel, QEMUBinary: f.qemu,
		Kernel: f.kernel, Vmlinux: f.vmlinux, ModulesDir: f.modules,
		Repro: rs, Iterations: f.iterations, Duration: f.duration, Cmdline: f.cmdline,
		ResultsDir: f.results, CacheDir: cacheDir(), Progress: os.Stderr,
		DumpVmcore: f.vmcore, BootTimeout: f.bootTimeout,
		Snapshot: f.snapshot || rs.SnapshotAsked(),
	}, nil
}

func runRun(cmd *cobra.Command, f *runFlags) error {
	// Scratch dirs of runs that were SIGKILLed (and so could not clean up) go first.
	if _, err := tmpdir.Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "reprolab run: warning: sweeping stale scratch dirs: %v\n", err)
	}
	cfg, err := f.check(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signalContext("stopping the guest and cleaning up")
	defer stop()
	res, err := repro.Run(ctx, *cfg)
	if err != nil {
		return err
	}
	printResult(cmd, res)
	if code := res.Outcome.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

// positiveFlags rejects a zero or negative value given explicitly for a count or duration
// flag (their zero default means "the spec's" or "automatic"): a negative timeout would turn
// every iteration into a false "hung" verdict.
func positiveFlags(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil || !f.Changed {
			continue
		}
		switch f.Value.Type() {
		case "duration":
			if d, _ := cmd.Flags().GetDuration(n); d <= 0 {
				return usagef("--%s %s: must be a positive duration, e.g. 90s or 10m", n, f.Value)
			}
		case "int":
			if v, _ := cmd.Flags().GetInt(n); v <= 0 {
				return usagef("--%s %s: must be a positive number", n, f.Value)
			}
		}
	}
	return nil
}

func printResult(cmd *cobra.Command, res *repro.Result) {
	out := cmd.OutOrStdout()
	loop := time.Duration(res.LoopSeconds * float64(time.Second)).Round(time.Second)
	switch res.Outcome {
	case repro.Survived:
		fmt.Fprintf(out, "survived: %d iterations in %s\n", res.Iterations, loop)
		if res.Error != "" {
			fmt.Fprintf(out, "  %s\n", res.Error)
		}
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
		fmt.Fprintf(out, "crashed at %s after %.1fs of looping (%s): %s\n", phase, res.TimeToCrash, verdict, title)
	default:
		fmt.Fprintf(out, "%s: %s\n", res.Outcome, res.Error)
	}
	if n := len(res.Events); n > 0 {
		fmt.Fprintf(out, "events: %d guest OOM kill(s), the first at iteration %d (%s): not crashes, not host faults\n", n, res.Events[0].Iteration, res.Events[0].File)
	}
	if res.Hang != nil {
		fmt.Fprintf(out, "hang: %s; %d CPU backtraces, %d blocked tasks in %s\n", res.Hang.Title, len(res.Hang.CPUs), len(res.Hang.Blocked), res.Hang.File)
	}
	fmt.Fprintf(out, "time: %s\n", res.Timings.Split())
	if res.HostLoad != nil {
		busy := ""
		if res.HostLoad.Busy() {
			busy = " (busy host: timings and rates are not an idle host's)"
		}
		fmt.Fprintf(out, "host: %s at start%s\n", res.HostLoad, busy)
	}
	fmt.Fprintf(out, "results: %s\n", res.Dir)
}
