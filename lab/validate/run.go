package validate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
)

// Options describe one validation.
type Options struct {
	// Name names the campaign (validate-<Name>) and its results folder.
	Name   string
	Engine *campaign.Engine
	Repro  *spec.Reproducer
	Arches []string
	// Kernel is the baseline: source, base, fragments, probes (Name and Arch are set
	// per arch). The candidate is the same plus Patches.
	Kernel  campaign.Kernel
	Patches []string
	// Cmdline turns the probes on (e.g. reprolab.delay_memcg=100) for both sides.
	Cmdline []string
	Params  Params
	// TrialDuration caps one trial's loop (default: the reproducer's budget.duration).
	TrialDuration time.Duration
	// TrialIterations overrides the reproducer's iteration cap per trial (0: the spec's):
	// a reproducer made for one-shot runs would otherwise end trials long before the
	// loop time the decision planned.
	TrialIterations int
	// Jobs is how many guests run at once (default 1).
	Jobs int
	// RateHint is a baseline rate per loop-hour known from before (a matrix, an earlier
	// validation): with it a budget too small is refused before anything runs.
	RateHint float64
	// Status, when set, gets every arch's state after each change (progress bars).
	Status func(Status)
}

// Status is one arch's progress.
type Status struct {
	Arch  string
	Phase string // checking, building baseline, building candidate, running, done
	// Baseline crashes so far and the rate they give; candidate clean hours against the
	// T they need (NaN/Inf until known).
	BaseCrashes int
	BaseHours   float64
	Rate        float64
	CandHours   float64
	CandCrashes int
	NeedHours   float64
	ETAHours    float64
	Verdict     Verdict
}

// archRun is one arch's validation in progress.
type archRun struct {
	arch       string
	base, cand *campaign.Build
	d          *Decision
	seq        map[Side]int // trial numbers used so far
	ctx        context.Context
	cancel     context.CancelFunc
	running    int
}

// Check rejects bad input before anything is built or run: unknown arch, confidence
// outside (0,1), no patch, a patch that cannot be read, a budget that cannot hold the
// run. It is all the CLI needs to refuse with exit 2 and nothing written.
func (o *Options) Check() error {
	if o.Name == "" || strings.ContainsAny(o.Name, "/\\ ") {
		return fault.Inputf("validation name %q: want a non-empty name without slashes or spaces", o.Name)
	}
	if len(o.Arches) == 0 {
		return fault.Inputf("no arch: give --arch x86_64, arm64 or both")
	}
	seen := map[string]bool{}
	for _, a := range o.Arches {
		if _, err := qemu.ParseArch(a); err != nil || seen[a] {
			if seen[a] {
				return fault.Inputf("--arch %s given twice", a)
			}
			return fault.Inputf("--arch %q: unknown arch (want x86_64 or arm64)", a)
		}
		seen[a] = true
	}
	if err := o.Params.Check(); err != nil {
		return fault.Inputf("%v", err)
	}
	if len(o.Patches) == 0 {
		return fault.Inputf("no patch to validate: give --patch FILE (a diff, a git format-patch series, an mbox or a mail with an inline diff)")
	}
	for _, p := range o.Patches {
		if _, err := patch.Load(p); err != nil {
			return fault.Inputf("%v", err)
		}
	}
	if o.Repro == nil {
		return fault.Inputf("no reproducer")
	}
	if len(o.Repro.Expect.Titles) == 0 {
		return fault.Inputf("reproducer %s expects no crash title (expect.titles): the baseline's crash could not be told from another", o.Repro.Name)
	}
	return o.checkBudget(o.RateHint)
}

// checkBudget refuses a budget that cannot hold one trial per side, or, with a known
// baseline rate, the loop time the target confidence needs.
func (o *Options) checkBudget(rate float64) error {
	b := o.Params.Budget
	if b == 0 {
		return nil
	}
	if min := time.Duration(4*MinTrialSeconds) * time.Second; b < min {
		return fault.Inputf("--budget %v is too small: each arch needs at least two trials per kernel (%v of looping); give --budget %v or more", b, min, min)
	}
	if rate > 0 {
		p := o.Params.withDefaults()
		need := NeededHours(rate, p.Confidence, p.MinCrashes)
		if need > b.Hours() {
			return fault.Inputf("--budget %v is too small to reach %.3g%% confidence at the baseline's rate of %.3g crashes/h: about %.2f h of looping per arch is needed (baseline and candidate interleaved); give --budget %v, or lower --confidence",
				b, 100*p.Confidence, rate, need, roundUp(need))
		}
	}
	return nil
}

func roundUp(hours float64) time.Duration {
	d := time.Duration(math.Ceil(hours*60)) * time.Minute
	if d < time.Minute {
		d = time.Minute
	}
	return d
}

// CampaignID is the store id of the validation.
func (o *Options) CampaignID() string { return campaign.ID(campaign.Validate, o.Name) }

// ReportDir is where the validation's files go: <results>/validate-<name>.
func ReportDir(resultsDir, name string) string {
	return filepath.Join(resultsDir, campaign.ID(campaign.Validate, name))
}

// Run validates the patches: checks, builds, runs and decides every arch, resuming a
// campaign of the same name. It returns the report (also when interrupted: then
// Interrupted is set and the verdicts so far are kept). Bad input (including a
// baseline that does not build, or a candidate whose patches do not apply) is a
// fault.Input error and nothing is written.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	o.Params = o.Params.withDefaults()
	if o.Jobs <= 0 {
		o.Jobs = 1
	}
	if o.TrialDuration <= 0 {
		o.TrialDuration = time.Duration(o.Repro.Budget.Duration)
	}
	if o.TrialDuration <= 0 {
		o.TrialDuration = 10 * time.Minute
	}
	e := o.Engine
	cid := o.CampaignID()
	sum := o.inputsHash()
	if err := o.sameInputs(ctx, sum); err != nil {
		return nil, err
	}
	if err := e.Open(ctx, campaign.Campaign{ID: cid, Kind: campaign.Validate, Name: o.Name, SpecPath: o.Repro.Path, SpecSHA256: sum}); err != nil {
		return nil, err
	}
	lock, err := e.Lock(cid)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	finished, discarded, err := e.Resume(ctx, cid)
	if err != nil {
		return nil, err
	}
	if discarded > 0 && e.Progress != nil {
		fmt.Fprintf(e.Progress, "validate %s: %d interrupted runs discarded, to be redone\n", o.Name, discarded)
	}
	runs := map[string]*archRun{}
	for _, a := range o.Arches {
		runs[a] = &archRun{arch: a, d: NewDecision(o.Params), seq: map[Side]int{}}
	}
	replay(runs, finished)
	for _, a := range o.Arches {
		if r := runs[a]; r.d.Base.Crashes > 0 && r.d.Base.LoopHours > 0 {
			// Measured before (a resume): refuse a budget that cannot reach the target.
			if err := o.checkBudget(float64(r.d.Base.Crashes) / r.d.Base.LoopHours); err != nil {
				return nil, err
			}
		}
	}
	if err := o.build(ctx, runs); err != nil {
		return nil, err
	}
	err = o.schedule(ctx, runs)
	rep := o.report(runs, ctx.Err() != nil)
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// inputsHash covers what the recorded runs are evidence about: the reproducer, the
// kernel's source, config and probes, the command line and every patch's content.
func (o *Options) inputsHash() string {
	h := sha256.New()
	k := o.Kernel
	src := ""
	if k.Source != nil {
		src = describe(k.Source)
	}
	fmt.Fprintf(h, "validate-v1\n%s\n%s\n%s\n%v\n%v\n%v\n%v\n", o.Repro.Path, src, k.Base, k.Fragments, k.Patches, o.Cmdline, o.Params.Expect)
	for _, p := range append(append([]string(nil), k.Probes...), o.Patches...) {
		data, err := os.ReadFile(p)
		if err != nil {
			// lab/kbuild names an unreadable probe or patch in its own error, later.
			fmt.Fprintf(h, "unreadable:%s\n", p)
			continue
		}
		fmt.Fprintf(h, "%d:%s\n", len(data), data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sameInputs refuses to resume a validation whose runs were made with other inputs:
// they would be counted as evidence about kernels that are not the ones built now.
func (o *Options) sameInputs(ctx context.Context, sum string) error {
	cs, err := o.Engine.Store.Campaigns(ctx, string(campaign.Validate))
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.ID != o.CampaignID() || c.SpecSHA256 == "" || c.SpecSHA256 == sum {
			continue
		}
		runs, err := o.Engine.Store.Runs(ctx, c.ID)
		if err != nil {
			return err
		}
		if len(runs) > 0 {
			return fault.Inputf("validation %q already has %d runs made with other inputs (patches, kernel, probes or command line changed): give another --name to start afresh", o.Name, len(runs))
		}
	}
	return nil
}

// kernel is the baseline or candidate kernel of an arch.
func (o *Options) kernel(arch string, side Side) campaign.Kernel {
	k := o.Kernel
	k.Arch, k.Name = arch, string(side)
	k.Key = fmt.Sprintf("%s_validate-%s_%s", arch, o.Name, side)
	// No kept tree (Kernel.Tree is for a checkout moved between commits): baseline and
	// candidate have the same source and config, so lab/kbuild builds both in the one
	// work tree it keys by source and config, not patches, and the candidate recompiles
	// only what its patches touch.
	k.Patches = append([]string(nil), o.Kernel.Patches...)
	if side == Candidate {
		k.Patches = append(k.Patches, o.Patches...)
		k.PatchSet = "candidate"
	} else {
		k.PatchSet = "baseline"
	}
	return k
}

// build builds every arch's baseline and candidate. Both are configured first, patches
// and probes applied (a config-only build: seconds, not the 20 minutes of a baseline compile), so a
// patch for another tree is refused before anything slow runs.
func (o *Options) build(ctx context.Context, runs map[string]*archRun) error {
	e := o.Engine
	cid := o.CampaignID()
	for _, a := range o.Arches {
		if runs[a].d.Done() {
			continue
		}
		// The candidate first: its patches are what most often does not fit the tree.
		// If it does not configure, the baseline tells whose fault that is.
		o.status(runs[a], "checking the patches")
		err := e.Prepare(ctx, o.kernel(a, Candidate))
		if err == nil || fault.IsInput(err) || ctx.Err() != nil {
			if err != nil {
				return err
			}
			continue
		}
		side := Candidate
		if berr := e.Prepare(ctx, o.kernel(a, Baseline)); berr != nil {
			if fault.IsInput(berr) || ctx.Err() != nil {
				return berr
			}
			side, err = Baseline, berr
		}
		return fault.Inputf("%s: %s: %v", a, doesNotBuild(side), err)
	}
	for _, a := range o.Arches {
		r := runs[a]
		if r.d.Done() {
			continue
		}
		for _, side := range []Side{Baseline, Candidate} {
			o.status(r, "building "+string(side))
			b, err := e.Kernel(ctx, cid, o.kernel(a, side))
			if err != nil {
				return err
			}
			if b.Failed != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fault.Inputf("%s: %s: %v", a, doesNotBuild(side), b.Failed)
			}
			if side == Baseline {
				r.base = b
			} else {
				r.cand = b
			}
		}
	}
	return nil
}

func doesNotBuild(side Side) string {
	if side == Candidate {
		return "the candidate (baseline + patches) does not build"
	}
	return "the baseline (source + probes) does not build"
}

func (o *Options) status(r *archRun, phase string) {
	if o.Status == nil {
		return
	}
	s := Status{Arch: r.arch, Phase: phase, BaseCrashes: r.d.Base.Crashes, BaseHours: r.d.Base.LoopHours,
		CandHours: r.d.Cand.LoopHours, CandCrashes: r.d.Cand.Crashes + r.d.Cand.Other, NeedHours: r.d.NeedHours(),
		ETAHours: r.d.ETAHours(), Verdict: r.d.Result().Verdict, Rate: math.NaN()}
	if r.d.Base.LoopHours > 0 {
		s.Rate = float64(r.d.Base.Crashes) / r.d.Base.LoopHours
	}
	o.Status(s)
}

// replay feeds the runs a resumed campaign kept, in the order they finished.
func replay(runs map[string]*archRun, finished []store.Run) {
	sort.SliceStable(finished, func(i, j int) bool { return finished[i].Finished.Before(finished[j].Finished) })
	for _, fr := range finished {
		side, arch, ok := parseGroup(fr.Group)
		r := runs[arch]
		if !ok || r == nil {
			continue
		}
		if n := trialNumber(fr.ID); n > r.seq[side] {
			r.seq[side] = n
		}
		if !r.d.Done() {
			r.d.Add(obsOf(fr, side, 0))
		}
	}
}

func group(side Side, arch string) string { return string(side) + "/" + arch }

func parseGroup(g string) (Side, string, bool) {
	s, a, ok := strings.Cut(g, "/")
	if !ok || (Side(s) != Baseline && Side(s) != Candidate) {
		return "", "", false
	}
	return Side(s), a, true
}

func trialID(arch string, side Side, n int) string { return fmt.Sprintf("%s-%s-%d", arch, side, n) }

func trialNumber(id string) int {
	i := strings.LastIndexByte(id, '-')
	var n int
	fmt.Sscanf(id[i+1:], "%d", &n)
	return n
}

// obsOf is a recorded run as the decision sees it.
func obsOf(r store.Run, side Side, planned float64) Obs {
	o := Obs{Side: side, Planned: planned, LoopSeconds: r.LoopSeconds, Infra: !r.Evidence()}
	switch r.Outcome {
	case "boot-failed":
		o.BootFailed = true
	case "hung":
		o.Hung = true
	case "crashed":
		o.Crashed, o.Reproduced, o.BeforeLoop = true, r.Reproduced, r.CrashIteration == 0
	}
	if len(r.Crashes) > 0 {
		c := r.Crashes[0]
		for _, x := range r.Crashes {
			if x.Type != "warning" { // the first oops, not a WARNING that came before it
				c = x
				break
			}
		}
		o.Title, o.Signature = c.Title, c.Signature
		if o.Hung {
			o.Crashed = true
		}
	}
	return o
}
