// Package campaign is the one engine under every use of the lab: a matrix, a patch
// validation, a bisection and a nightly are campaigns, and this is the only place that
// turns a kernel description into a build and runs one recorded trial.
//
// A Campaign has an id and a kind. A Kernel (source or prebuilt images, base config,
// fragments, patches, probes) resolves to a Build, recorded against the campaign. A Trial
// (build, reproducer, cmdline, loop budget) runs once and is recorded: its row is
// "running" from before the guest boots until its artifacts are durable, then
// "finished" with its crashes in one transaction; an interrupted trial leaves no row and
// no folder, so a resumed campaign redoes exactly what is missing (Resume).
//
// The drivers (lab/matrix, lab/validate, lab/bisect) decide what to run and what the
// results mean; they never call kbuild.Build or repro.Run themselves.
package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/hostload"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/progress"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
)

// Kind is what a campaign is for.
type Kind string

// The kinds of campaign.
const (
	Matrix   Kind = "matrix"
	Validate Kind = "validate"
	Bisect   Kind = "bisect"
	Nightly  Kind = "nightly"
)

// Campaign is one matrix, validation, bisection or nightly.
type Campaign struct {
	ID         string // unique in the store: "<kind>-<name>" (ID makes it)
	Kind       Kind
	Name       string
	SpecPath   string
	SpecSHA256 string
}

// ID is the conventional campaign id for a kind and name: "matrix-<name>",
// "validate-<name>", ...
func ID(kind Kind, name string) string { return string(kind) + "-" + name }

// Prebuilt is a ready kernel for one arch: paths, or globs that match exactly one file.
type Prebuilt struct{ Image, Modules, Vmlinux string }

// Kernel is a kernel a campaign runs: built from Source by lab/kbuild, or Prebuilt.
type Kernel struct {
	Name, Arch string
	Source     *source.Source // nil means Prebuilt
	Prebuilt   *Prebuilt
	Base       string
	Fragments  []string
	// FragmentDirs are searched for fragment names (kconfigs/ by default in kbuild).
	FragmentDirs []string
	Patches      []string
	Probes       []string
	// Tree names a kept work tree so builds of nearby commits are incremental: with a
	// Dir source that the caller moves between commits (lab/vcs Checkout), kbuild keys
	// its build tree by this name (kbuild.Spec.Tree).
	Tree string
	// Key names the kernel in build ids and progress lines; default <arch>_<name>.
	// (A matrix uses its cell's build key, arch_kernel_config_patches.)
	Key string
	// Config and PatchSet are labels recorded with the build (a matrix's axis values).
	Config, PatchSet string
}

// BuildKey is the kernel's Key, or <arch>_<name>.
func (k Kernel) BuildKey() string {
	if k.Key != "" {
		return k.Key
	}
	return k.Arch + "_" + k.Name
}

// Build is a kernel resolved to files, as recorded in the store.
type Build struct {
	ID                      string // store build id: kbuild-<key>, prebuilt-<name>-<arch>, failed-<key>
	Kernel                  Kernel
	Image, Vmlinux, Modules string
	// Params are the kernel parameters of the compiled-in probes (at their defaults).
	Params  []string
	Version string
	Seconds float64
	Cached  bool
	// Compiled is the number of C files make compiled (0 when cached or prebuilt).
	Compiled int
	// Failed is a build failure (not bad input): the caller decides what it means
	// (a matrix reports its cells as errors; a bisection skips the commit).
	Failed error
}

// Trial is one planned run of one build.
type Trial struct {
	ID      string // unique within the campaign, stable across resumes ("x86_64-baseline-3")
	Group   string // what it measures: a matrix cell id, "baseline/x86_64", a commit hash
	Attempt int
	Build   *Build
	Repro   *spec.Reproducer
	Cmdline []string
	// Iterations and Duration override the reproducer's loop budget when non-zero.
	Iterations int
	Duration   time.Duration
	// Dir is the run's folder relative to the engine's ResultsDir. Default
	// <campaign id>/<trial id>, with ".a<attempt>" appended for attempts after the first
	// (a matrix keeps its historical <trial id>).
	Dir string
}

// Engine builds kernels and runs trials, recording both in Store.
type Engine struct {
	Store      *store.Store
	ResultsDir string
	CacheDir   string // default kbuild.DefaultCacheDir()
	Accel      qemu.Accel
	// Progress gets build and guest progress lines, prefixed with what they belong to.
	Progress io.Writer
	// Logf, when set, receives the engine's own notices (a matrix prefixes them with its
	// name); by default they go to Progress as "campaign: ...".
	Logf func(format string, a ...any)
	// Build and Run default to kbuild.Build and repro.Run (tests substitute fakes).
	Build func(context.Context, kbuild.Spec) (*kbuild.Result, error)
	Run   func(context.Context, repro.Config) (*repro.Result, error)

	progOnce sync.Once
	prog     io.Writer
	// Remote, when set, runs trials elsewhere instead of here (lab/fleet: enqueued for
	// workers on a shared database): Trial hands the trial over and returns its finished
	// run, or (nil, nil) when ctx ends first. Resume then leaves runs in progress alone:
	// they are the workers'.
	Remote func(ctx context.Context, campaignID string, t Trial) (*store.Run, error)
	// Fresh boots every trial; by default trials restore a snapshot taken after boot and
	// setup (one per kernel, reproducer and command line) unless the spec says
	// snapshot: false, so a campaign spends its hours looping instead of booting.
	Fresh bool
}

// progress is where builds and trials report: Progress, made a lab/progress Display
// once if it is not one already, so parallel builds and guests share one set of bars
// on a terminal instead of each redrawing its own.
func (e *Engine) progress() io.Writer {
	e.progOnce.Do(func() {
		switch d, _, owned := progress.From(e.Progress); {
		case e.Progress == nil:
			e.prog = io.Discard
		case owned:
			e.prog = d
		default:
			e.prog = e.Progress
		}
	})
	return e.prog
}

func (e *Engine) logf(format string, a ...any) {
	if e.Logf != nil {
		e.Logf(format, a...)
		return
	}
	fmt.Fprintf(e.progress(), "campaign: %s\n", fmt.Sprintf(format, a...))
}

func (e *Engine) cacheDir() string {
	if e.CacheDir == "" {
		return kbuild.DefaultCacheDir()
	}
	return e.CacheDir
}

// Open records the campaign (or updates its spec path and hash), creating ResultsDir.
func (e *Engine) Open(ctx context.Context, c Campaign) error {
	if c.ID == "" || c.Kind == "" {
		return fault.Inputf("campaign %q: needs an id and a kind", c.Name)
	}
	if err := os.MkdirAll(e.ResultsDir, 0o755); err != nil {
		return fault.Inputf("results dir %s: %v", e.ResultsDir, err)
	}
	// Every driver (matrix, validate, bisect) opens its campaign first: one place to say
	// the host is too busy for rates and timings to mean what they do on an idle one.
	if w := hostload.Warning(string(c.Kind) + " " + c.Name); w != "" {
		fmt.Fprintln(e.progress(), w)
	}
	return e.Store.PutCampaign(ctx, store.Campaign{ID: c.ID, Kind: string(c.Kind), Name: c.Name, SpecPath: c.SpecPath, SpecSHA256: c.SpecSHA256})
}

// Lock takes the campaign's exclusive, non-blocking lock in ResultsDir
// (.<campaign id>.lock): a second invocation would take the first one's running trials
// for interrupted ones and discard them. The kernel drops the lock when its holder dies,
// even by SIGKILL, so a resume never finds it stale. Close the file to release it.
func (e *Engine) Lock(campaignID string) (*os.File, error) {
	if err := os.MkdirAll(e.ResultsDir, 0o755); err != nil {
		return nil, fault.Inputf("results dir %s: %v", e.ResultsDir, err)
	}
	path := filepath.Join(e.ResultsDir, "."+campaignID+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fault.Infraf("campaign lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fault.Inputf("%s is already running on %s (%s): wait for it or stop it; a second invocation would discard its runs in progress",
			campaignID, e.ResultsDir, strings.TrimSpace(string(holder)))
	}
	_ = f.Truncate(0)
	host, _ := os.Hostname()
	fmt.Fprintf(f, "pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	return f, nil
}

// Kernel builds or locates a kernel and records the build against the campaign. Bad
// input (a spec kbuild refuses, a prebuilt path matching no file) is a fault.Input error;
// a build that fails is returned with Build.Failed set and a nil error.
func (e *Engine) Kernel(ctx context.Context, campaignID string, k Kernel) (*Build, error) {
	if k.Source == nil {
		return e.prebuilt(ctx, campaignID, k)
	}
	rec := store.Build{Campaign: campaignID, Arch: k.Arch, Kernel: k.Name, Config: k.Config, Patches: k.PatchSet, Status: "ok", Source: describeSource(k.Source)}
	spec := kbuild.Spec{
		Name: k.Name, Arch: k.Arch, Source: *k.Source, Base: k.Base, Fragments: k.Fragments, Patches: k.Patches, Probes: k.Probes,
		FragmentDirs: k.FragmentDirs, CacheDir: e.cacheDir(), Tree: k.Tree, Progress: PrefixWriter(e.progress(), "build "+k.BuildKey()+": "),
	}
	e.logf("kernel %s: building %s (cached builds return at once)", k.BuildKey(), rec.Source)
	build := e.Build
	if build == nil {
		build = BuildKernel
	}
	t0 := time.Now()
	res, err := build(ctx, spec)
	b := &Build{Kernel: k, Seconds: time.Since(t0).Seconds()}
	rec.Seconds = b.Seconds
	if err != nil {
		if fault.IsInput(err) { // kbuild's, source's, patch's and probe's errors carry their kind
			return nil, fault.Inputf("kernel %s (%s): %w", k.Name, k.BuildKey(), err)
		}
		b.ID = "failed-" + k.BuildKey()
		b.Failed = fmt.Errorf("building %s: %w", k.BuildKey(), err)
		rec.ID, rec.Status, rec.Error = b.ID, "failed", err.Error()
		e.logf("kernel %s: build FAILED: %v", k.BuildKey(), err)
		return b, e.Store.PutBuild(ctx, rec)
	}
	b.ID = "kbuild-" + res.Key
	b.Image, b.Vmlinux, b.Params, b.Version, b.Cached, b.Compiled = res.Kernel, res.Vmlinux, res.CmdlineParams, res.Version, res.Cached, res.Compiled
	rec.ID, rec.Image, rec.Vmlinux, rec.Version, rec.Cached, rec.Compiled = b.ID, b.Image, b.Vmlinux, b.Version, b.Cached, b.Compiled
	e.logf("kernel %s: %s (%.0fs, cached=%v)", k.BuildKey(), res.Kernel, b.Seconds, res.Cached)
	return b, e.Store.PutBuild(ctx, rec)
}

// BuildKernel builds one kernel outside any campaign, recording nothing: `reprolab
// kernel build`. It is, with Engine.Kernel, the only way into kbuild.Build, so every
// build the lab makes goes through this package.
func BuildKernel(ctx context.Context, spec kbuild.Spec) (*kbuild.Result, error) {
	return kbuild.Build(ctx, spec)
}

func (e *Engine) prebuilt(ctx context.Context, campaignID string, k Kernel) (*Build, error) {
	if k.Prebuilt == nil {
		return nil, fault.Inputf("kernel %s (%s): neither a source nor a prebuilt image", k.Name, k.Arch)
	}
	b := &Build{Kernel: k, ID: "prebuilt-" + k.Name + "-" + k.Arch, Cached: true}
	var err error
	if b.Image, err = resolvePath(k, "image", k.Prebuilt.Image); err != nil {
		return nil, err
	}
	if b.Image == "" {
		return nil, fault.Inputf("kernel %s (%s): prebuilt kernel without an image", k.Name, k.Arch)
	}
	if b.Modules, err = resolvePath(k, "modules", k.Prebuilt.Modules); err != nil {
		return nil, err
	}
	if b.Vmlinux, err = resolvePath(k, "vmlinux", k.Prebuilt.Vmlinux); err != nil {
		return nil, err
	}
	e.logf("kernel %s/%s: prebuilt %s", k.Name, k.Arch, b.Image)
	return b, e.Store.PutBuild(ctx, store.Build{Campaign: campaignID, ID: b.ID, Arch: k.Arch, Kernel: k.Name, Source: "prebuilt " + b.Image,
		Image: b.Image, Modules: b.Modules, Vmlinux: b.Vmlinux, Status: "ok", Cached: true})
}

// resolvePath finds a prebuilt file: a path or a glob matching exactly one file.
// Drivers expand ~ and variables in their own spec syntax first.
func resolvePath(k Kernel, what, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	matches, _ := filepath.Glob(p)
	if len(matches) != 1 {
		return "", fault.Inputf("kernel %s (%s): %s %s matches %d files, want exactly one", k.Name, k.Arch, what, p, len(matches))
	}
	return matches[0], nil
}

// describeSource is a one-line description of a kernel source for the database.
func describeSource(s *source.Source) string {
	switch {
	case s.Git != "":
		return "git " + s.Git + "@" + s.Ref
	case s.Dir != "":
		return "dir " + s.Dir
	case s.Tarball != "":
		return "tarball " + s.Tarball
	case s.URL != "":
		return "url " + s.URL + " sha256:" + s.SHA256
	case s.KernelOrg != "":
		return "kernel.org " + s.KernelOrg
	case s.Debian != "":
		return "debian " + s.Debian
	}
	return "?"
}

// dir is the trial's folder relative to ResultsDir.
func (t Trial) dir(campaignID string) string {
	if t.Dir != "" {
		return t.Dir
	}
	d := filepath.Join(campaignID, t.ID)
	if t.Attempt > 1 {
		d += fmt.Sprintf(".a%d", t.Attempt)
	}
	return d
}

// Trial records, runs and finishes one trial: BeginRun, repro.Run, FinishRun once the
// artifacts are durable. It returns (nil, nil) when the trial was interrupted (its row
// and folder are discarded, so a resumed campaign redoes it). Bad input found by the
// run itself is a fault.Input error, and nothing is recorded. An infrastructure error is
// a finished run with outcome infra-error: recorded, never evidence (store.Run.Evidence).
func (e *Engine) Trial(ctx context.Context, campaignID string, t Trial) (*store.Run, error) {
	if t.Build == nil || t.Build.Failed != nil || t.Build.Image == "" {
		return nil, fault.Inputf("trial %s: no built kernel to run", t.ID)
	}
	arch, err := qemu.ParseArch(t.Build.Kernel.Arch)
	if err != nil {
		return nil, fault.Inputf("trial %s: %v", t.ID, err)
	}
	if e.Remote != nil {
		if t.Dir == "" {
			t.Dir = t.dir(campaignID)
		}
		return e.Remote(ctx, campaignID, t)
	}
	rel := t.dir(campaignID)
	dir := filepath.Join(e.ResultsDir, rel)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fault.Infraf("clearing %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fault.Infraf("results dir: %w", err)
	}
	host, _ := os.Hostname()
	rec := store.Run{ID: t.ID, Campaign: campaignID, Group: t.Group, Attempt: t.Attempt, BuildID: t.Build.ID, Arch: t.Build.Kernel.Arch,
		Host: host, Kernel: t.Build.Image, Dir: rel, Started: time.Now()}
	if err := e.Store.BeginRun(ctx, rec); err != nil {
		return nil, err
	}
	run := e.Run
	if run == nil {
		run = repro.Run
	}
	dctx := context.WithoutCancel(ctx) // recording the end must survive the cancellation
	res, err := run(ctx, repro.Config{
		Arch: arch, Accel: e.Accel, Kernel: t.Build.Image, Vmlinux: t.Build.Vmlinux, ModulesDir: t.Build.Modules,
		Repro: t.Repro, Iterations: t.Iterations, Duration: t.Duration, Cmdline: t.Cmdline,
		ResultsDir: filepath.Dir(dir), CacheDir: e.cacheDir(), RunID: filepath.Base(dir),
		Snapshot: !e.Fresh && t.Repro.SnapshotDefault(),
		Progress: PrefixWriter(e.progress(), "  "+t.ID+": "),
	})
	if err != nil {
		// Bad input found by the run itself: nothing ran, nothing counts.
		_ = e.Store.DiscardRun(dctx, campaignID, t.ID, t.Attempt)
		_ = os.RemoveAll(dir)
		return nil, fault.AsInput(fmt.Errorf("trial %s: %w", t.ID, err))
	}
	if res.Outcome == repro.Interrupted || res.Outcome == repro.Running || ctx.Err() != nil {
		if err := e.Store.DiscardRun(dctx, campaignID, t.ID, t.Attempt); err != nil {
			return nil, err
		}
		_ = os.RemoveAll(dir)
		return nil, nil
	}
	// repro.Run has synced the artifacts and written the final meta.json before
	// returning; only now does the run count.
	rec.Outcome, rec.Error, rec.Accel, rec.Host = string(res.Outcome), res.Error, res.Accel, res.Host
	rec.Cmdline, rec.Iterations, rec.CrashIteration, rec.Reproduced = res.Cmdline, res.Iterations, res.CrashedIter, res.Reproduced
	rec.BootSeconds, rec.LoopSeconds, rec.TimeToCrash = res.BootSeconds, res.LoopSeconds, res.TimeToCrash
	rec.Started, rec.Finished = res.Started, res.Finished
	if l := res.HostLoad; l != nil {
		rec.Load, rec.Cores = [3]float64{l.Load1, l.Load5, l.Load15}, l.Cores
	}
	// The split without each iteration's duration (meta.json keeps those): a row stays small.
	split := res.Timings
	split.Iterations.Millis, split.Iterations.GuestMs = nil, nil
	if b, err := json.Marshal(split); err == nil {
		rec.Timings = string(b)
	}
	if rec.Finished.IsZero() {
		rec.Finished = time.Now()
	}
	rec.WallSeconds = rec.Finished.Sub(rec.Started).Seconds()
	for _, c := range res.Crashes {
		rec.Crashes = append(rec.Crashes, store.Crash{Title: c.Title, Type: c.Type, Signature: c.Signature, ReportPath: c.File})
	}
	rec.State = store.Finished
	if err := e.Store.FinishRun(dctx, rec); err != nil {
		return nil, err
	}
	for i := range rec.Crashes {
		rec.Crashes[i].Seq = i + 1
	}
	return &rec, nil
}

// Resume prepares a campaign to continue after Ctrl-C, SIGKILL or a reboot: a run still
// "running" was cut off and its partial artifacts prove nothing, so its row and folder
// are discarded (the trial is redone). It returns the finished runs to keep. Take the
// campaign's Lock first: another live invocation's running trials look the same.
func (e *Engine) Resume(ctx context.Context, campaignID string) (finished []store.Run, discarded int, err error) {
	runs, err := e.Store.Runs(ctx, campaignID)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range runs {
		if r.State == store.Finished {
			finished = append(finished, r)
			continue
		}
		if e.Remote != nil {
			continue // a worker's, in progress (or a dead worker's: its successor redoes it)
		}
		if err := e.Store.DiscardRun(ctx, campaignID, r.ID, r.Attempt); err != nil {
			return nil, discarded, err
		}
		if r.Dir != "" {
			if err := os.RemoveAll(filepath.Join(e.ResultsDir, r.Dir)); err != nil {
				return nil, discarded, fault.Infraf("removing interrupted run %s: %w", r.ID, err)
			}
		}
		discarded++
	}
	return finished, discarded, nil
}

// Runs lists a campaign's runs (all states), by group and attempt.
func (e *Engine) Runs(ctx context.Context, campaignID string) ([]store.Run, error) {
	return e.Store.Runs(ctx, campaignID)
}

// PrefixWriter prefixes each line written to w, and names the progress bars of builds
// and runs started on it (lab/progress), so parallel guests and builds stay readable.
func PrefixWriter(w io.Writer, prefix string) io.Writer { return progress.Prefix(w, prefix) }
