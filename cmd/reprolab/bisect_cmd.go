package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/bisectrun"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/vcs"
)

const bisectLong = `Find the commit that introduced a crash (or, with --fix, the one that removed it).

The crashing end is looped first and must crash with the reproducer's expected title: that
measures the crash rate λ. The clean end must then stay clean for T = ln(1/α)/λ_low (λ_low
the lower bound of λ's Poisson interval), and so must every commit judged good; a commit is
bad at its first expected crash. A crash with another signature is re-run, then the commit
skipped; a commit that does not build (or lacks the probe's anchor) is skipped, never bad.
Infrastructure errors are retried and never decide anything.

Every build and run is recorded: run the same command again after Ctrl-C or SIGKILL and it
continues where it stopped. Results go to <results>/bisect-<name>/: report.md, report.json,
bisect.log (git bisect replay accepts it) and culprit.txt.

Exit: 0 answered (a culprit, or the candidates skipped commits leave), 2 bad input or an
endpoint that contradicts the request (bad end does not reproduce, good end crashes too),
3 infrastructure, 130 interrupted (run again to resume).`

type bisectFlags struct {
	repro, arch, git, good, bad, base, results, dsn, accel, reproducers, name string
	kernelSpec, kconfigs                                                      string
	fix, verifyRevert                                                         bool
	confidence                                                                float64
	duration, maxEnd                                                          time.Duration
	endCrashes                                                                int
	probes, patches, fragments, cmdline, exclude                              []string
}

func newBisectCmd() *cobra.Command {
	var f bisectFlags
	cmd := &cobra.Command{
		Use:     "bisect --repro R --git TREE --good REV --bad REV [flags]",
		Short:   "find the commit that introduced (or fixed) a crash, with a sequential test per commit, resumable",
		Long:    bisectLong,
		Example: "  reprolab bisect --repro memcg-writeback-null --arch x86_64 --git ~/linux --good v4.10 --bad v4.11 --confidence 0.99",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runBisect(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repro, "repro", "", "reproducer name (under --reproducers) or path to a repro.yaml")
	fl.StringVar(&f.arch, "arch", "x86_64", "x86_64 or arm64")
	fl.StringVar(&f.git, "git", "", "the kernel git tree (a clone or a bare repository); it is never modified")
	fl.StringVar(&f.good, "good", "", "a commit without the crash (with --fix: the fixed one, newer)")
	fl.StringVar(&f.bad, "bad", "", "a commit with the crash (with --fix: the older one)")
	fl.BoolVar(&f.fix, "fix", false, "find the first commit where the crash stops")
	fl.Float64Var(&f.confidence, "confidence", 0.99, "target confidence of the answer, in (0,1)")
	fl.StringArrayVar(&f.probes, "probe", nil, "probe spec (repeatable); its variant is chosen per commit from the version there")
	fl.StringArrayVar(&f.patches, "patch", nil, "patch applied at every commit (repeatable)")
	fl.StringVar(&f.base, "base", "", "base config: tinyconfig (default), defconfig, ...")
	fl.StringArrayVar(&f.fragments, "fragment", nil, "kconfig fragment name or path (repeatable; default kbuild's)")
	fl.StringVar(&f.kernelSpec, "kernel-spec", "", "take base, fragments, patches and probes from a kernel spec (its source is ignored: every commit is built)")
	fl.StringVar(&f.kconfigs, "kconfigs", "kconfigs", "folder of kconfig fragments")
	fl.StringArrayVar(&f.exclude, "exclude", nil, "folder left out of the kept tree (repeatable)")
	fl.StringArrayVar(&f.cmdline, "cmdline", nil, "extra kernel command-line parameter (repeatable), e.g. a probe delay")
	fl.DurationVar(&f.duration, "duration", 0, "loop budget of one trial (default the reproducer's)")
	fl.IntVar(&f.endCrashes, "end-crashes", 0, "expected crashes the crashing end collects to measure λ (default 10)")
	fl.DurationVar(&f.maxEnd, "max-end", 0, "looping the crashing end may take without a crash before giving up (default 50 trials)")
	fl.BoolVar(&f.verifyRevert, "verify-revert", false, "also test the crashing end with the culprit reverted")
	fl.StringVar(&f.name, "name", "", "name of the bisection (default <repro>-<arch>-<good>..<bad>)")
	fl.StringVar(&f.results, "results", "results", "results directory (run artifacts, database, reports)")
	fl.StringVar(&f.dsn, "db", "", "results database: a SQLite file or postgres://… DSN (default <results>/reprolab.db)")
	fl.StringVar(&f.accel, "accel", "auto", "auto, kvm or tcg")
	fl.StringVar(&f.reproducers, "reproducers", "reproducers", "where reproducer names are looked up")
	return cmd
}

// options checks the flags and opens what they name; nothing is built or run yet.
func (f *bisectFlags) options(cmd *cobra.Command) (*bisectrun.Options, qemu.Accel, error) {
	if err := positiveFlags(cmd, "duration", "end-crashes", "max-end"); err != nil {
		return nil, "", err
	}
	for flag, v := range map[string]string{"repro": f.repro, "git": f.git, "good": f.good, "bad": f.bad} {
		if v == "" {
			return nil, "", usagef("--%s is required", flag)
		}
	}
	if f.confidence <= 0 || f.confidence >= 1 {
		return nil, "", usagef("--confidence %g: must be between 0 and 1, e.g. 0.99", f.confidence)
	}
	accel, err := qemu.ParseAccel(f.accel)
	if err != nil {
		return nil, "", usagef("--accel: %v", err)
	}
	if _, err := qemu.ParseArch(f.arch); err != nil {
		return nil, "", usagef("--arch: %v", err)
	}
	path, err := spec.Resolve(f.repro, f.reproducers)
	if err != nil {
		return nil, "", fault.AsInput(err)
	}
	rs, err := spec.LoadReproducer(path)
	if err != nil {
		return nil, "", fault.AsInput(err)
	}
	k, err := f.kernel(cmd)
	if err != nil {
		return nil, "", err
	}
	repo, err := vcs.Open(cmd.Context(), f.git)
	if err != nil {
		return nil, "", err
	}
	return &bisectrun.Options{Repo: repo, Repro: rs, Good: f.good, Bad: f.bad, Fix: f.fix, Confidence: f.confidence, Kernel: k,
		Exclude: f.exclude, RunSeconds: f.duration.Seconds(), EndCrashes: f.endCrashes, MaxEndSeconds: f.maxEnd.Seconds(),
		Cmdline: f.cmdline, Name: f.name, VerifyRevert: f.verifyRevert, Progress: os.Stderr}, accel, nil
}

func runBisect(cmd *cobra.Command, f *bisectFlags) error {
	o, accel, err := f.options(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signalContext("stopping the guest; run the same command again to resume")
	defer stop()
	bis, err := bisectrun.Prepare(ctx, *o)
	if err != nil {
		return err
	}
	st, err := openDB(ctx, f.results, &f.dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	e := &campaign.Engine{Store: st, ResultsDir: f.results, CacheDir: cacheDir(), Accel: accel, Progress: os.Stderr}
	if e.Remote, err = remoteTrials(ctx, st, f.dsn, accel, false); err != nil {
		return err
	}
	rep, err := bis.Run(ctx, e)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "reprolab bisect: interrupted; run the same command again to resume")
		return exitStatus(fault.ExitInterrupted)
	}
	if rep != nil && rep.Finished.Unix() > 0 {
		rep.Markdown(cmd.OutOrStdout())
		fmt.Fprintf(os.Stderr, "reports: %s/ (report.md, report.json, bisect.log, culprit.txt)\n", bisectrun.ResultsDir(f.results, rep.Name))
	}
	return err
}

// kernel is the template every commit is built from: the flags, over a kernel spec's
// config when one is given.
func (f *bisectFlags) kernel(cmd *cobra.Command) (campaign.Kernel, error) {
	kc, _ := filepath.Abs(f.kconfigs)
	k := campaign.Kernel{Arch: f.arch, Base: f.base, Fragments: f.fragments, Patches: abs(f.patches), Probes: abs(f.probes), FragmentDirs: []string{kc}}
	if f.kernelSpec == "" {
		return k, nil
	}
	ks, err := kbuild.LoadSpec(f.kernelSpec)
	if err != nil {
		return k, fault.AsInput(err)
	}
	if !cmd.Flags().Changed("arch") && ks.Arch != "" {
		k.Arch = ks.Arch
	}
	if k.Base == "" {
		k.Base = ks.Base
	}
	k.Fragments = append(ks.Fragments, k.Fragments...)
	k.Patches = append(abs(ks.Patches), k.Patches...)
	k.Probes = append(abs(ks.Probes), k.Probes...)
	return k, nil
}

// abs makes spec paths absolute: the kept tree is elsewhere.
func abs(paths []string) []string {
	var out []string
	for _, p := range paths {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		out = append(out, p)
	}
	return out
}
