package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/matrix"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/validate"
)

const validateLong = `Validate a patch before posting it: does it do what it claims on this reproducer, on each
arch, and how sure is that.

Per arch the baseline (the kernel source + probes) and the candidate (baseline + --patch
files) are built, the candidate incrementally in the same kept tree, and their runs are
interleaved on the host's cores. The baseline must reproduce: it measures the crash rate λ
of the expected bug (5 crashes, or its half of the budget). The candidate is judged by a
sequential test: a crash with the baseline's signature stops at once (not fixed); a crash
with another signature is "changed"; a clean candidate is fixed once it has looped
T = ln(1/(1-c))/λ_low without a crash (λ_low: the lower bound of λ's exact Poisson interval).
--expect triggers asks the opposite of a debug patch: does it crash with a new report, and
how often. Infrastructure errors are retried and reported, never evidence. Run the same
command again after Ctrl-C or SIGKILL and it resumes.

--patch takes a diff, a git format-patch file or series, an mbox, or a mail with the diff
inline after prose. --budget is loop time per arch, baseline and candidate together.
Output: <results>/validate-<name>/ validation.md, validation.json, reply.txt (a Tested-by:
line when the patch did what it claims, and a paragraph for the reply; the identity comes
from $REPROLAB_TESTED_BY or $GIT_AUTHOR_NAME/$GIT_AUTHOR_EMAIL).

Exit: 0 fixed (or the debug check triggers), 1 not fixed (or it does not trigger), 2 bad
input (no patch, a patch that does not apply, a baseline that does not build, an unknown
arch, a confidence outside (0,1), a budget too small), 3 infrastructure, 6 changed,
7 inconclusive (the baseline does not reproduce, or the budget ran out first),
130 interrupted (run again to resume).`

type validateFlags struct {
	kernelFlags
	repro, reproducers, arches, expect, name, results, dsn, accel string
	candidate, cmdline                                            []string
	confidence, rate                                              float64
	budget, trial                                                 time.Duration
	jobs                                                          int
}

func newValidateCmd() *cobra.Command {
	var f validateFlags
	cmd := &cobra.Command{
		Use:   "validate --repro R --patch P... <kernel source flags> [flags]",
		Short: "validate a patch (fix or debug patch) against a reproducing baseline, with a measured verdict",
		Long:  validateLong,
		Example: `  reprolab validate --repro memcg-writeback-null --git ~/linux --ref v4.11 \
      --fragments base,arch,virtio-guest,pvpanic,memcg,dmcrypt-swap,ext4 \
      --probe reproducers/memcg-writeback-null/probes/seed.yaml --cmdline reprolab.delay_memcg=100 \
      --patch fix.patch --budget 2h`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runValidate(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repro, "repro", "", "reproducer name (under --reproducers) or path to a repro.yaml")
	fl.StringVar(&f.reproducers, "reproducers", "reproducers", "where reproducer names are looked up")
	fl.StringVar(&f.arches, "arch", "x86_64,arm64", "comma-separated arches")
	addSourceFlags(fl, &f.kernelFlags)
	fl.StringArrayVar(&f.candidate, "patch", nil, "the candidate's patch: diff, format-patch, mbox or mail (repeatable, applied in order)")
	fl.StringArrayVar(&f.cmdline, "cmdline", nil, "kernel parameter for both kernels (repeatable), e.g. the probe's delay reprolab.delay_memcg=100")
	fl.StringVar(&f.expect, "expect", "fixed", "fixed (a fix) or triggers (a debug patch that should fire)")
	fl.Float64Var(&f.confidence, "confidence", 0.99, "target confidence, strictly between 0 and 1")
	fl.DurationVar(&f.budget, "budget", 2*time.Hour, "loop time per arch, baseline and candidate together (each gets half)")
	fl.DurationVar(&f.trial, "trial-duration", 0, "loop time of one trial at most (default the reproducer's budget.duration)")
	fl.Float64Var(&f.rate, "baseline-rate", 0, "the baseline's crash rate per hour if known (a matrix): a budget too small is refused before running")
	fl.StringVar(&f.name, "name", "", "validation name: results folder and resume key (default from the first patch file)")
	fl.StringVar(&f.results, "results", "results", "results directory")
	fl.StringVar(&f.dsn, "db", "", "results database: a SQLite file or postgres://… DSN (default <results>/reprolab.db)")
	fl.StringVar(&f.accel, "accel", "auto", "auto, kvm or tcg")
	fl.IntVar(&f.jobs, "jobs", 0, "guests in parallel (default: what the host's cores take)")
	fl.StringVar(&f.cache, "cache", cacheDir(), "cache folder (env REPROLAB_CACHE)")
	return cmd
}

var nameRe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// options turns the flags into a validation, every check that needs no build done.
func (f *validateFlags) options(cmd *cobra.Command) (validate.Options, qemu.Accel, error) {
	var o validate.Options
	// A budget is required: a baseline that never crashes would otherwise loop forever.
	if err := positiveFlags(cmd, "trial-duration", "jobs", "budget"); err != nil {
		return o, "", err
	}
	if f.budget < 0 {
		return o, "", usagef("--budget %s: cannot be negative (0: unlimited)", f.budget)
	}
	accel, err := qemu.ParseAccel(f.accel)
	if err != nil {
		return o, "", usagef("--accel: %v", err)
	}
	expect, err := validate.ParseExpect(f.expect)
	if err != nil {
		return o, "", usagef("%v", err)
	}
	if f.repro == "" {
		return o, "", usagef("--repro is required")
	}
	path, err := spec.Resolve(f.repro, f.reproducers)
	if err != nil {
		return o, "", fault.AsInput(err)
	}
	if o.Repro, err = spec.LoadReproducer(path); err != nil {
		return o, "", fault.AsInput(err)
	}
	ks, err := f.kbuildSpec("build")
	if err != nil {
		return o, "", err
	}
	if f.git+f.dir+f.tarball+f.url+f.kernelOrg+f.debian == "" && f.spec == "" {
		return o, "", usagef("no kernel source: give --git DIR --ref REF, --dir, --tarball, --url, --kernel-org, --debian or --spec")
	}
	o.Kernel = campaign.Kernel{Source: &ks.Source, Base: ks.Base, Fragments: ks.Fragments, FragmentDirs: ks.FragmentDirs, Patches: ks.Patches, Probes: ks.Probes}
	o.Name = f.name
	if o.Name == "" && len(f.candidate) > 0 {
		o.Name = strings.Trim(nameRe.ReplaceAllString(strings.TrimSuffix(filepath.Base(f.candidate[0]), filepath.Ext(f.candidate[0])), "-"), "-")
	}
	for _, a := range strings.Split(f.arches, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.Arches = append(o.Arches, a)
		}
	}
	o.Patches, o.Cmdline, o.TrialDuration, o.RateHint, o.Jobs = f.candidate, f.cmdline, f.trial, f.rate, f.jobs
	o.Params = validate.Params{Expect: expect, Confidence: f.confidence, Budget: f.budget}
	return o, accel, o.Check()
}

func runValidate(cmd *cobra.Command, f *validateFlags) error {
	o, accel, err := f.options(cmd)
	if err != nil {
		return err // nothing was opened or written
	}
	ctx, stop := signalContext("stopping the guests; run the same command again to resume")
	defer stop()
	st, err := openDB(ctx, f.results, &f.dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.Jobs <= 0 {
		o.Jobs = matrix.DefaultJobs(o.Repro.Guest.CPUs, o.Repro.Guest.Memory.MB())
	}
	prog := validate.NewProgress(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())), o.Arches)
	o.Engine = &campaign.Engine{Store: st, ResultsDir: f.results, CacheDir: f.cache, Accel: accel, Progress: prog}
	if o.Engine.Remote, err = remoteTrials(ctx, st, f.dsn, accel, false); err != nil {
		return err
	}
	o.Status = prog.Update
	rep, err := validate.Run(ctx, o)
	prog.Wait()
	if err != nil {
		if ctx.Err() != nil && !fault.IsInput(err) {
			fmt.Fprintln(os.Stderr, "reprolab validate: interrupted; run the same command again to resume")
			return exitStatus(fault.ExitInterrupted)
		}
		return err
	}
	dir := validate.ReportDir(f.results, o.Name)
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Fprint(cmd.OutOrStdout(), rep.Markdown())
	fmt.Fprintf(os.Stderr, "validate %s: %s; %s/ (validation.md, validation.json, reply.txt)\n", o.Name, rep.Verdict, dir)
	if rep.Interrupted {
		fmt.Fprintln(os.Stderr, "reprolab validate: interrupted; run the same command again to resume")
		return exitStatus(fault.ExitInterrupted)
	}
	if rep.ExitCode != 0 {
		return exitStatus(rep.ExitCode)
	}
	return nil
}
