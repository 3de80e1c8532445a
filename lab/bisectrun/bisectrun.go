// Package bisectrun runs a bisection on real kernels: lab/bisect decides, this package
// carries the decisions out on lab/campaign (builds, recorded trials) and lab/vcs (the
// range, a kept work tree moved from commit to commit so builds are incremental), and
// writes the results.
//
// Every build and run is recorded in the store under the campaign "bisect-<name>"; the
// search is replayed from those records on every start, so the same command after
// Ctrl-C or SIGKILL continues where it stopped (a run cut off is discarded and redone).
package bisectrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/bisect"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/vcs"
)

// Options are one bisection.
type Options struct {
	Engine *campaign.Engine // set by Run
	Repo   *vcs.Git
	Repro  *spec.Reproducer
	// Kernel is the template every commit is built from: Arch, Base, Fragments,
	// FragmentDirs, Patches, Probes (Source, Name, Key and Tree are set per commit).
	Kernel campaign.Kernel
	// Exclude are folders left out of the kept tree (a snapshot without their objects).
	Exclude []string
	// Good and Bad are revisions. Cause bisection: good is an ancestor of bad. Fix: bad
	// (crashing) is an ancestor of good (fixed), and the search finds the fix.
	Good, Bad string
	Fix       bool
	// Confidence is the target for the answer (default 0.99).
	Confidence float64
	// RunSeconds is one trial's loop budget (default the reproducer's duration, else
	// 10 minutes); EndCrashes and MaxEndSeconds tune the crashing end (lab/bisect).
	RunSeconds    float64
	EndCrashes    int
	MaxEndSeconds float64
	Cmdline       []string
	// Name names the campaign and the results folder (default from repro, arch, range).
	Name string
	// TreeDir is the kept work tree (default <engine cache>/bisect/trees/<tree name>).
	TreeDir string
	// VerifyRevert builds the crashing end with the culprit reverted and tests it.
	VerifyRevert bool
	Progress     io.Writer
}

// Report is a bisection's outcome, as written to results/bisect-<name>/.
type Report struct {
	Name       string          `json:"name"`
	Campaign   string          `json:"campaign"`
	Repo       string          `json:"repo"`
	Arch       string          `json:"arch"`
	Repro      string          `json:"repro"`
	Fix        bool            `json:"fix"`
	Good       vcs.Commit      `json:"good"`
	Bad        vcs.Commit      `json:"bad"`
	Commits    int             `json:"commits"`
	Target     float64         `json:"target_confidence"`
	Answer     *bisect.Answer  `json:"answer,omitempty"`
	Culprit    *vcs.Commit     `json:"culprit,omitempty"`
	Candidates []vcs.Commit    `json:"candidates,omitempty"`
	Revert     *RevertCheck    `json:"revert,omitempty"`
	Stopped    string          `json:"stopped,omitempty"`
	Steps      []StepRow       `json:"steps"`
	Finished   time.Time       `json:"finished"`
	log        *vcs.Result     // for bisect.log
	terms      vcs.Terms       // good/bad, or broken/fixed
	state      *bisect.State   // for the steps table
	builds     map[string]bool // commits whose build was recorded
	commitInfo map[string]vcs.Commit
}

// StepRow is one line of the per-step table.
type StepRow struct {
	Commit       string  `json:"commit"`
	Subject      string  `json:"subject"`
	Verdict      string  `json:"verdict"`
	Reason       string  `json:"reason,omitempty"`
	Runs         int     `json:"runs"`
	InfraErrors  int     `json:"infra_errors"`
	LoopMinutes  float64 `json:"loop_minutes"`
	Crashes      int     `json:"crashes"`
	Other        int     `json:"other_crashes"`
	BuildMinutes float64 `json:"build_minutes"`
	Confidence   float64 `json:"confidence,omitempty"`
}

// RevertCheck is --verify-revert: the crashing end with the culprit reverted.
type RevertCheck struct {
	Commit      string  `json:"commit"`
	Verdict     string  `json:"verdict"` // "clean" (as a culprit should) or "crashes"
	Runs        int     `json:"runs"`
	LoopMinutes float64 `json:"loop_minutes"`
	Error       string  `json:"error,omitempty"`
}

// bisection is one Run in progress.
type bisection struct {
	o       Options
	id      string
	commits []vcs.Commit
	index   map[string]int
	prob    bisect.Problem
	builds  map[string]*campaign.Build // built this time or recorded with an image
	runs    map[string]int             // trials recorded per group (for trial ids)
	stored  []store.Run                // finished runs found at the start (the revert check's too)
	tree    string
	out     io.Writer
}

// Bisection is a checked request, ready to run.
type Bisection struct {
	b   *bisection
	rep *Report
}

// Prepare checks the request against the tree (revisions, ancestry) before anything is
// opened, written or built: bad input is a fault.Input error naming the flag.
func Prepare(ctx context.Context, o Options) (*Bisection, error) {
	b := &bisection{o: o, out: o.Progress, builds: map[string]*campaign.Build{}, runs: map[string]int{}}
	if b.out == nil {
		b.out = io.Discard
	}
	rep, err := b.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return &Bisection{b: b, rep: rep}, nil
}

// Name is the bisection's name (its campaign is bisect-<name>).
func (x *Bisection) Name() string { return x.rep.Name }

// Run bisects on the engine, resuming from its store, and writes the results. A
// StopError of lab/bisect (an endpoint contradicts the request) is returned as bad input
// after the report of what was measured is written.
func (x *Bisection) Run(ctx context.Context, e *campaign.Engine) (*Report, error) {
	b, rep := x.b, x.rep
	b.o.Engine = e
	if b.o.TreeDir == "" {
		b.o.TreeDir = TreeDir(e.CacheDir, b.o.Repo.Dir(), b.o.Kernel)
	}
	o := b.o
	if err := e.Open(ctx, campaign.Campaign{ID: b.id, Kind: campaign.Bisect, Name: rep.Name, SpecPath: o.Repro.Path}); err != nil {
		return nil, err
	}
	lock, err := e.Lock(b.id)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	finished, discarded, err := e.Resume(ctx, b.id)
	if err != nil {
		return nil, err
	}
	if discarded > 0 {
		fmt.Fprintf(b.out, "bisect %s: %d interrupted run(s) discarded, redone\n", rep.Name, discarded)
	}
	b.stored = finished
	obs, err := b.observations(ctx, finished)
	if err != nil {
		return nil, err
	}
	st, err := bisect.New(b.prob, obs)
	if err != nil {
		return nil, fault.Inputf("bisect %s: %v", rep.Name, err)
	}
	if len(obs) > 0 {
		fmt.Fprintf(b.out, "bisect %s: resuming from %d recorded builds and runs\n", rep.Name, len(obs))
	}
	rep.state = st
	runErr := b.loop(ctx, st, rep)
	if runErr == nil && o.VerifyRevert && rep.Culprit != nil {
		rep.Revert = b.verifyRevert(ctx, st, rep)
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	rep.Finished = time.Now().UTC()
	if werr := rep.Write(ResultsDir(e.ResultsDir, rep.Name)); werr != nil && runErr == nil {
		runErr = fault.AsInfra(werr)
	}
	return rep, runErr
}

// ResultsDir is where a bisection's report goes.
func ResultsDir(results, name string) string { return filepath.Join(results, "bisect-"+name) }

// resolve checks the revisions and lists the range.
func (b *bisection) resolve(ctx context.Context) (*Report, error) {
	o, g := b.o, b.o.Repo
	good, err := g.Info(ctx, o.Good)
	if err != nil {
		return nil, fault.AsInput(fmt.Errorf("--good %s: %w", o.Good, err))
	}
	bad, err := g.Info(ctx, o.Bad)
	if err != nil {
		return nil, fault.AsInput(fmt.Errorf("--bad %s: %w", o.Bad, err))
	}
	if good.Hash == bad.Hash {
		return nil, fault.Inputf("--good %s and --bad %s are the same commit %s: give two different commits", o.Good, o.Bad, good.Short())
	}
	old, nw := good, bad
	if o.Fix {
		old, nw = bad, good
	}
	if ok, err := g.IsAncestor(ctx, old.Hash, nw.Hash); err != nil {
		return nil, err
	} else if !ok {
		if o.Fix {
			return nil, fault.Inputf("--fix: --bad %s (crashing) is not an ancestor of --good %s (fixed): a fix bisection goes forward from the crashing commit", o.Bad, o.Good)
		}
		return nil, fault.Inputf("--good %s is not an ancestor of --bad %s: give a good commit older than the bad one (or --fix to find a fix)", o.Good, o.Bad)
	}
	rng, err := g.Commits(ctx, old.Hash, nw.Hash, true)
	if err != nil {
		return nil, err
	}
	b.commits = append([]vcs.Commit{old}, rng...)
	b.index = map[string]int{}
	for i, c := range b.commits {
		b.index[c.Hash] = i
		b.prob.Commits = append(b.prob.Commits, bisect.Commit{Hash: c.Hash, Subject: c.Subject})
	}
	b.prob.Fix, b.prob.Confidence = o.Fix, o.Confidence
	b.prob.RunSeconds, b.prob.EndCrashes, b.prob.MaxEndSeconds = o.RunSeconds, o.EndCrashes, o.MaxEndSeconds
	if b.prob.RunSeconds <= 0 {
		b.prob.RunSeconds = o.Repro.Budget.Duration.Std().Seconds()
	}
	if b.prob.RunSeconds <= 0 {
		b.prob.RunSeconds = 600
	}
	if b.prob.Confidence <= 0 {
		b.prob.Confidence = 0.99
	}
	name := o.Name
	if name == "" {
		name = fmt.Sprintf("%s-%s-%s..%s", o.Repro.Name, o.Kernel.Arch, good.Short()[:8], bad.Short()[:8])
		if o.Fix {
			name += "-fix"
		}
	}
	// The name names results/bisect-<name>/: one folder, never a path out of results/.
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fault.Inputf("--name %q: one word without '/' (it names the folder results/bisect-<name>)", name)
	}
	b.id = campaign.ID(campaign.Bisect, name)
	b.tree = treeName(g.Dir(), o.Kernel)
	terms := vcs.Terms{}
	if o.Fix {
		terms = vcs.Terms{Old: "broken", New: "fixed"}
	}
	return &Report{Name: name, Campaign: b.id, Repo: g.Dir(), Arch: o.Kernel.Arch, Repro: o.Repro.Name, Fix: o.Fix, Good: good, Bad: bad,
		Commits: len(b.commits), Target: b.prob.Confidence, terms: terms, builds: map[string]bool{}, commitInfo: map[string]vcs.Commit{}}, nil
}

// TreeDir is the kept work tree of an arch and config under a cache folder: a nightly's
// build of a new head and the bisection after it share it, so the bisection's first
// steps are incremental too.
func TreeDir(cacheDir, repo string, k campaign.Kernel) string {
	return filepath.Join(cacheDir, "bisect", "trees", treeName(repo, k))
}

// KernelAt is the kernel template k at commit hash, built from the kept tree treeDir
// (moved there by the caller with vcs Checkout).
func KernelAt(k campaign.Kernel, treeDir, hash string) campaign.Kernel {
	k.Source = &source.Source{Dir: treeDir}
	k.Name = hash
	k.Key = k.Arch + "_" + hash[:12]
	k.Tree = filepath.Base(treeDir) // kbuild's build tree follows the kept tree
	return k
}

// treeName names the kept tree of a repository, arch and config: commits built with the
// same config share it, whatever the bisection (a kept tree is a worktree of one repository).
func treeName(repo string, k campaign.Kernel) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s", repo, k.Arch, k.Base, strings.Join(k.Fragments, ","), strings.Join(k.Patches, ","), strings.Join(k.Probes, ","))
	return k.Arch + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// observations are the stored builds and runs of the campaign, oldest first.
func (b *bisection) observations(ctx context.Context, runs []store.Run) ([]bisect.Obs, error) {
	builds, err := b.o.Engine.Store.Builds(ctx, b.id)
	if err != nil {
		return nil, err
	}
	type timed struct {
		t time.Time
		o bisect.Obs
	}
	var all []timed
	for _, r := range builds {
		if _, ok := b.index[r.Kernel]; !ok {
			continue
		}
		o := bisect.Obs{Commit: r.Kernel, IsBuild: true, BuildSeconds: r.Seconds}
		if r.Status != "ok" {
			o.BuildFailed = r.Error
		} else if _, err := os.Stat(r.Image); err == nil {
			b.builds[r.Kernel] = &campaign.Build{ID: r.ID, Image: r.Image, Vmlinux: r.Vmlinux, Modules: r.Modules, Version: r.Version, Cached: true,
				Kernel: b.kernel(r.Kernel)}
		}
		all = append(all, timed{r.Created, o})
	}
	for _, r := range runs {
		b.runs[r.Group]++
		if _, ok := b.index[r.Group]; !ok {
			continue
		}
		all = append(all, timed{r.Started, bisect.Obs{Commit: r.Group, Result: result(r), LoopSeconds: r.LoopSeconds, Title: title(r)}})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].o.Commit == all[j].o.Commit && all[i].o.IsBuild != all[j].o.IsBuild {
			return all[i].o.IsBuild // a commit's build comes before its runs
		}
		return all[i].t.Before(all[j].t)
	})
	out := make([]bisect.Obs, len(all))
	for i, t := range all {
		out[i] = t.o
	}
	return out, nil
}

// result is what a recorded run says to the search.
func result(r store.Run) bisect.Result {
	switch {
	case !r.Evidence():
		return bisect.Infra
	case r.Reproduced:
		return bisect.Crash
	case r.Outcome == "survived":
		return bisect.Clean
	}
	// Another crash, a hang or a boot failure: the commit cannot be judged by this run.
	return bisect.Other
}

func title(r store.Run) string {
	if len(r.Crashes) > 0 {
		return r.Crashes[0].Title
	}
	return r.Outcome
}

// kernel is the template at one commit.
func (b *bisection) kernel(hash string) campaign.Kernel {
	return KernelAt(b.o.Kernel, b.o.TreeDir, hash)
}

// loop carries out decisions until the search is done or stops.
func (b *bisection) loop(ctx context.Context, st *bisect.State, rep *Report) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := st.Next()
		switch d.Action {
		case bisect.Done:
			b.finish(ctx, st, rep, d.Result)
			return nil
		case bisect.Stop:
			b.finish(ctx, st, rep, nil)
			rep.Stopped = d.Err.Error()
			if se, ok := d.Err.(*bisect.StopError); ok && se.Infra {
				return fault.AsInfra(d.Err)
			}
			return fault.AsInput(d.Err)
		case bisect.Build:
			o, err := b.build(ctx, d)
			if err != nil {
				return err
			}
			st.Add(o)
		case bisect.Run:
			o, err := b.run(ctx, d, st.StepHours())
			if err != nil {
				return err
			}
			if o != nil {
				st.Add(*o)
			}
		}
	}
}

// build moves the kept tree to the commit and builds it. Bad input at an endpoint is the
// user's; at a commit inside the range (a probe anchor missing, a patch that does not
// apply there) it skips that commit, recorded with the reason.
func (b *bisection) build(ctx context.Context, d bisect.Decision) (bisect.Obs, error) {
	o := bisect.Obs{Commit: d.Commit.Hash, IsBuild: true}
	fmt.Fprintf(b.out, "bisect: %s: building %s %s\n", d.Phase, d.Commit.Hash[:12], d.Commit.Subject)
	t0 := time.Now()
	unlock, err := LockTree(ctx, b.o.TreeDir, b.out)
	if err != nil {
		return o, err
	}
	defer unlock()
	if _, err := b.o.Repo.Checkout(ctx, b.o.TreeDir, d.Commit.Hash, b.o.Exclude); err != nil {
		return o, err
	}
	k := b.kernel(d.Commit.Hash)
	bl, err := b.o.Engine.Kernel(ctx, b.id, k)
	o.BuildSeconds = time.Since(t0).Seconds()
	switch {
	case err != nil && fault.IsInput(err) && d.Index > 0 && d.Index < len(b.commits)-1:
		o.BuildFailed = "cannot build here: " + err.Error()
		rec := store.Build{Campaign: b.id, ID: "skip-" + k.Key, Arch: k.Arch, Kernel: d.Commit.Hash, Source: "git " + b.o.Repo.Dir() + "@" + d.Commit.Hash,
			Status: "failed", Error: o.BuildFailed, Seconds: o.BuildSeconds}
		return o, b.o.Engine.Store.PutBuild(ctx, rec)
	case err != nil:
		return o, err
	case bl.Failed != nil:
		o.BuildFailed = bl.Failed.Error()
	default:
		b.builds[d.Commit.Hash] = bl
		fmt.Fprintf(b.out, "bisect: built %s in %.1f min (%d files compiled, cached=%v)\n", d.Commit.Hash[:12], o.BuildSeconds/60, bl.Compiled, bl.Cached)
	}
	return o, nil
}

// run runs one trial on the commit's build; nil when it was interrupted.
func (b *bisection) run(ctx context.Context, d bisect.Decision, stepHours float64) (*bisect.Obs, error) {
	bl := b.builds[d.Commit.Hash]
	if bl == nil {
		// Recorded as built by an earlier invocation whose image is gone: build again.
		o, err := b.build(ctx, d)
		if err != nil || b.builds[d.Commit.Hash] == nil {
			if err == nil {
				err = fault.Infraf("commit %s built before but not now: %s", d.Commit.Hash[:12], o.BuildFailed)
			}
			return nil, err
		}
		bl = b.builds[d.Commit.Hash]
	}
	secs := max(d.Seconds, 10)
	b.runs[d.Commit.Hash]++
	tid := fmt.Sprintf("%s-r%d", d.Commit.Hash[:12], b.runs[d.Commit.Hash])
	extra := ""
	if stepHours > 0 {
		extra = fmt.Sprintf(", a clean verdict needs %.1f min", stepHours*60)
	}
	fmt.Fprintf(b.out, "bisect: %s: %s: trial %s, loop %.1f min%s\n", d.Phase, d.Commit.Hash[:12], tid, secs/60, extra)
	r, err := b.o.Engine.Trial(ctx, b.id, campaign.Trial{ID: tid, Group: d.Commit.Hash, Attempt: 1, Build: bl, Repro: b.o.Repro,
		Cmdline: b.o.Cmdline, Duration: time.Duration(secs * float64(time.Second))})
	if err != nil || r == nil {
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	o := bisect.Obs{Commit: d.Commit.Hash, Result: result(*r), LoopSeconds: r.LoopSeconds, Title: title(*r)}
	fmt.Fprintf(b.out, "bisect: %s: %s after %.1f min of looping (%s)\n", tid, o.Result, r.LoopSeconds/60, r.Outcome)
	return &o, nil
}

// finish fills the report from the search.
func (b *bisection) finish(ctx context.Context, st *bisect.State, rep *Report, a *bisect.Answer) {
	rep.Answer = a
	steps := st.Steps()
	if a != nil {
		steps = a.Steps
	}
	old, nw := rep.Good, rep.Bad
	if b.o.Fix {
		old, nw = rep.Bad, rep.Good
	}
	lr := &vcs.Result{Good: old, Bad: nw}
	for _, s := range steps {
		rep.Steps = append(rep.Steps, StepRow{Commit: s.Commit.Hash, Subject: s.Commit.Subject, Verdict: string(s.Verdict), Reason: s.Reason,
			Runs: s.Runs, InfraErrors: s.Infra, LoopMinutes: s.LoopSeconds / 60, Crashes: s.Crashes, Other: s.Other,
			BuildMinutes: s.BuildSeconds / 60, Confidence: s.Confidence})
		if s.Index == 0 || s.Index == len(b.commits)-1 || s.Verdict == bisect.Pending {
			continue
		}
		v := vcs.Skip
		switch {
		case s.Verdict == bisect.Skip:
		case (s.Verdict == bisect.Bad) != b.o.Fix:
			v = vcs.Bad
		default:
			v = vcs.Good
		}
		lr.Steps = append(lr.Steps, vcs.Step{Commit: b.commits[s.Index], Verdict: v})
	}
	if a != nil {
		for _, c := range a.Candidates {
			rep.Candidates = append(rep.Candidates, b.commits[b.index[c.Hash]])
		}
		if a.Culprit != nil {
			c := b.commits[b.index[a.Culprit.Hash]]
			if info, err := b.o.Repo.Info(ctx, c.Hash); err == nil {
				c = info
			}
			rep.Culprit = &c
			lr.Culprit = &c
		} else {
			lr.Candidates = rep.Candidates
		}
	}
	rep.log = lr
}

func durationOf(secs float64) time.Duration { return time.Duration(secs * float64(time.Second)) }
