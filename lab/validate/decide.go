// Package validate answers the question a kernel developer asks before posting a patch —
// does it do what it claims on this reproducer, and how sure is that — with a measured
// verdict instead of a feeling.
//
// Per arch it runs a baseline kernel (source + probes) and a candidate (baseline +
// patches), interleaved. The baseline must reproduce: it measures the crash rate λ of the
// expected bug, and a baseline that never crashes makes the whole validation
// inconclusive, never "fixed" (a probe that does not discriminate proves nothing). The
// candidate is judged by a sequential test: a crash with the baseline's signature stops at
// once (not fixed), a crash with another signature is a changed behaviour, and a clean
// candidate is fixed only once its clean loop time T reaches ln(1/(1−c))/λ_low, λ_low the
// lower bound of λ's exact Poisson interval, so a lucky baseline cannot shorten the run.
//
// decide.go is the pure decision logic (no I/O, measured over thousands of simulated
// validations with lab/trialsim); run.go drives it on lab/campaign.
package validate

import (
	"fmt"
	"math"
	"time"

	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/verdict"
)

// Expect is what the candidate is supposed to do.
type Expect string

const (
	// ExpectFixed: the candidate is a fix; the baseline's crash must be gone.
	ExpectFixed Expect = "fixed"
	// ExpectTriggers: the candidate is a debug patch (a new VM_BUG_ON, a WARN); it must
	// crash with a new report, and the question is at what rate.
	ExpectTriggers Expect = "triggers"
)

// ParseExpect reads --expect.
func ParseExpect(s string) (Expect, error) {
	switch Expect(s) {
	case ExpectFixed, ExpectTriggers:
		return Expect(s), nil
	}
	return "", fmt.Errorf("--expect %q: want fixed or triggers", s)
}

// Verdict is the answer for one arch.
type Verdict string

// The verdicts.
const (
	Undecided    Verdict = ""
	Fixed        Verdict = "fixed"
	NotFixed     Verdict = "not fixed"
	Changed      Verdict = "changed"
	Triggers     Verdict = "triggers"
	NotTriggered Verdict = "does not trigger"
	Inconclusive Verdict = "inconclusive"
	// InfraFailed: the lab kept failing (infrastructure errors in a row); nothing about
	// the kernel is known.
	InfraFailed Verdict = "infra error"
)

// Side is which kernel a trial ran.
type Side string

// The two kernels of a validation.
const (
	Baseline  Side = "baseline"
	Candidate Side = "candidate"
)

// Params are the knobs of the decision.
type Params struct {
	Expect Expect
	// Confidence is the target c in (0,1): of a fix, that the unfixed kernel would have
	// crashed in the candidate's clean time; λ_low is taken from the two-sided exact
	// interval at the same level.
	Confidence float64
	// MinCrashes is how many expected crashes the baseline needs before λ counts as
	// measured (default 5); in triggers mode also how many new-report crashes measure
	// the candidate's rate.
	MinCrashes int
	// Budget is the loop time per arch, baseline and candidate together; each side may
	// use half of it (they are interleaved one to one). Zero: unlimited.
	Budget time.Duration
	// MaxInfraInARow infrastructure errors in a row on one side stop the validation as
	// an infrastructure failure (default 3): retried, never evidence, but not forever.
	MaxInfraInARow int
}

func (p Params) withDefaults() Params {
	if p.Expect == "" {
		p.Expect = ExpectFixed
	}
	if p.MinCrashes <= 0 {
		p.MinCrashes = 5
	}
	if p.MaxInfraInARow <= 0 {
		p.MaxInfraInARow = 3
	}
	return p
}

// Check rejects parameters no validation can use (bad input).
func (p Params) Check() error {
	if !(p.Confidence > 0 && p.Confidence < 1) {
		return fmt.Errorf("confidence %v: must be strictly between 0 and 1 (e.g. 0.99)", p.Confidence)
	}
	if p.Budget < 0 {
		return fmt.Errorf("budget %v: must be positive", p.Budget)
	}
	if p.Expect != "" && p.Expect != ExpectFixed && p.Expect != ExpectTriggers {
		return fmt.Errorf("expect %q: want fixed or triggers", p.Expect)
	}
	return nil
}

// Obs is one finished trial as the decision sees it.
type Obs struct {
	Side Side
	// Planned is the loop budget Next gave the trial.
	Planned     float64
	LoopSeconds float64
	// Infra: the lab failed the trial; it is counted and reported, never evidence.
	Infra bool
	// BootFailed: the kernel never brought the guest up (the kernel's fault).
	BootFailed bool
	// Crashed with the report Title/Signature; Reproduced when the title is one the
	// reproducer expects. BeforeLoop: during boot or setup (no loop time).
	Crashed    bool
	Reproduced bool
	BeforeLoop bool
	Hung       bool
	Title      string
	Signature  string
}

// SideStats are one side's counts.
type SideStats struct {
	Runs        int     `json:"runs"` // trials that are evidence
	InfraErrors int     `json:"infra_errors"`
	LoopHours   float64 `json:"loop_hours"`
	// Crashes are the expected bug's crashes in the loop (the rate's numerator).
	Crashes int `json:"crashes"`
	// Other are crashes, hangs and boot failures with another report.
	Other      int                    `json:"other"`
	Signatures []stats.SignatureCount `json:"signatures"`
	infraRow   int
}

func (s *SideStats) add(sig stats.Signature) {
	for i := range s.Signatures {
		if s.Signatures[i].Signature.Signature == sig.Signature {
			s.Signatures[i].Runs++
			return
		}
	}
	s.Signatures = append(s.Signatures, stats.SignatureCount{Signature: sig, Runs: 1})
}

func (s *SideStats) has(sig string) bool {
	for _, c := range s.Signatures {
		if c.Signature.Signature == sig {
			return true
		}
	}
	return false
}

// Rate is crashes per loop-hour with its exact interval at confidence c (NaN without
// loop time).
func (s SideStats) Rate(c float64) (rate, lo, hi float64) {
	return stats.PoissonRate(s.Crashes, s.LoopHours, c)
}

// Decision is the sequential test of one arch.
type Decision struct {
	P         Params
	Base      SideStats
	Cand      SideStats
	baseSigs  map[string]bool // signatures of the baseline's expected crashes
	candNew   int             // triggers mode: candidate crashes with a new report
	pending   [2]float64      // loop seconds planned for trials still running, per side
	verdict   Verdict
	reason    string
	culprit   stats.Signature
	decidedAt float64
}

// NewDecision starts the test (Params already checked).
func NewDecision(p Params) *Decision {
	return &Decision{P: p.withDefaults(), baseSigs: map[string]bool{}}
}

// Done reports whether the test has a verdict.
func (d *Decision) Done() bool { return d.verdict != Undecided }

// MinTrialSeconds is the shortest loop a trial is cut to: below it the boot dominates.
const MinTrialSeconds = 30

// Next plans the next trial: which side, and its loop budget in seconds (at most
// maxSeconds, the reproducer's own). The side with less loop time (finished plus still
// running) goes next, so baseline and candidate share the host's cores and its load
// drift evenly; a side whose half of the budget is spent runs no more. A candidate trial
// never runs more than MinTrialSeconds ahead of the baseline, nor past the T it still
// needs, so a validation does not overshoot by a whole trial. Pass the seconds back in
// Obs.Planned. Call it only while !Done().
func (d *Decision) Next(maxSeconds float64) (Side, float64) {
	half := d.halfBudget()
	bt, ct := d.Base.LoopHours+d.pending[0]/3600, d.Cand.LoopHours+d.pending[1]/3600
	baseOpen := half <= 0 || bt < half
	candOpen := half <= 0 || ct < half
	side := Baseline
	if (ct < bt && candOpen) || !baseOpen {
		side = Candidate
	}
	left := math.Inf(1)
	if half > 0 {
		left = (half - bt) * 3600
	}
	if side == Candidate {
		left = math.Inf(1)
		if half > 0 {
			left = (half - ct) * 3600
		}
		if baseOpen {
			// Against the baseline's finished time only: a baseline trial planned for
			// ten minutes may crash in ten seconds.
			left = math.Min(left, (d.Base.LoopHours-ct)*3600+MinTrialSeconds)
		}
		if need := d.NeedHours(); d.P.Expect == ExpectFixed && d.Base.Crashes >= d.P.MinCrashes && !math.IsInf(need, 1) {
			left = math.Min(left, (need-ct)*3600)
		}
	}
	secs := math.Min(maxSeconds, math.Max(MinTrialSeconds, left))
	d.pending[sideIndex(side)] += secs
	return side, secs
}

func sideIndex(s Side) int {
	if s == Candidate {
		return 1
	}
	return 0
}

func (d *Decision) halfBudget() float64 { return d.P.Budget.Hours() / 2 }

// Add feeds one finished trial and re-evaluates. Trials that finish after the verdict
// (they ran in parallel) are counted but do not change it.
func (d *Decision) Add(o Obs) {
	s := &d.Base
	if o.Side == Candidate {
		s = &d.Cand
	}
	d.pending[sideIndex(o.Side)] = math.Max(0, d.pending[sideIndex(o.Side)]-o.Planned)
	if o.Infra {
		s.InfraErrors++
		s.infraRow++
		if s.infraRow >= d.P.MaxInfraInARow && !d.Done() {
			d.decide(InfraFailed, fmt.Sprintf("%d infrastructure errors in a row on the %s: the lab, not the kernel, is failing (see the runs' errors)", s.infraRow, o.Side))
		}
		return
	}
	s.infraRow = 0
	s.Runs++
	s.LoopHours += o.LoopSeconds / 3600
	sig := stats.Signature{Signature: o.Signature, Title: o.Title}
	switch {
	case o.BootFailed:
		sig = stats.Signature{Signature: "boot-failed", Title: "the kernel did not boot"}
	case o.Hung && !o.Crashed:
		sig = stats.Signature{Signature: "hung", Title: "the reproducer hung with a silent console"}
	case !o.Crashed:
		sig = stats.Signature{}
	}
	if sig.Signature == "" && sig.Title != "" {
		sig.Signature = sig.Title
	}
	if sig.Signature != "" {
		s.add(sig)
	}
	if o.Side == Baseline {
		d.addBaseline(o, sig)
	} else {
		d.addCandidate(o, sig)
	}
	if !d.Done() {
		d.evaluate()
	}
}

func (d *Decision) addBaseline(o Obs, sig stats.Signature) {
	switch {
	case o.Crashed && o.Reproduced:
		d.baseSigs[sig.Signature] = true
		if !o.BeforeLoop {
			d.Base.Crashes++
		}
	case sig.Signature != "":
		d.Base.Other++
	}
}

// sameBug: the candidate crash is the baseline's bug (its title is one the reproducer
// expects, or its signature is one the baseline showed with such a title).
func (d *Decision) sameBug(o Obs, sig stats.Signature) bool {
	return o.Crashed && (o.Reproduced || d.baseSigs[sig.Signature])
}

func (d *Decision) addCandidate(o Obs, sig stats.Signature) {
	if sig.Signature == "" {
		return
	}
	same := d.sameBug(o, sig)
	if same && !o.BeforeLoop {
		d.Cand.Crashes++
	}
	if !same {
		d.Cand.Other++
	}
	if d.Done() {
		return
	}
	switch d.P.Expect {
	case ExpectFixed:
		if same {
			d.decide(NotFixed, "the candidate crashed with the baseline's signature")
		} else {
			d.culprit = sig
			d.decide(Changed, fmt.Sprintf("the candidate crashed with another signature: %s", sig.Title))
		}
	case ExpectTriggers:
		if !same {
			d.candNew++
			if d.culprit.Signature == "" {
				d.culprit = sig
			}
		}
	}
}

// evaluate decides when the evidence suffices or the budget is spent.
func (d *Decision) evaluate() {
	half := d.halfBudget()
	baseSpent := half > 0 && d.Base.LoopHours >= half
	candSpent := half > 0 && d.Cand.LoopHours >= half
	measured := d.Base.Crashes >= d.P.MinCrashes || (baseSpent && d.Base.Crashes > 0)
	if d.Base.Crashes == 0 && baseSpent {
		d.decide(Inconclusive, fmt.Sprintf("baseline does not reproduce (probe does not discriminate): no expected crash in %.2f h of looping", d.Base.LoopHours))
		return
	}
	if d.P.Expect == ExpectTriggers {
		d.evaluateTriggers(measured, candSpent)
		return
	}
	if measured && d.Cand.LoopHours >= d.NeedHours() {
		d.decide(Fixed, fmt.Sprintf("clean for %.2f h, %.2f h needed at λ_low %.3g/h", d.Cand.LoopHours, d.NeedHours(), d.LambdaLow()))
		return
	}
	if candSpent && (baseSpent || measured) {
		d.decide(Inconclusive, d.shortfall())
	}
}

func (d *Decision) evaluateTriggers(measured, candSpent bool) {
	switch {
	case d.candNew >= d.P.MinCrashes:
		d.decide(Triggers, fmt.Sprintf("the candidate crashed with a new report %d times: %s", d.candNew, d.culprit.Title))
	case d.candNew == 0 && d.Cand.Crashes >= d.P.MinCrashes:
		d.decide(NotTriggered, fmt.Sprintf("the candidate crashed %d times with the baseline's signature and never with a new report", d.Cand.Crashes))
	case d.candNew == 0 && d.Cand.Crashes == 0 && measured && d.Cand.LoopHours >= d.NeedHours():
		d.decide(NotTriggered, fmt.Sprintf("clean for %.2f h: at the baseline's rate a firing check would have shown", d.Cand.LoopHours))
	case candSpent:
		if d.candNew > 0 {
			d.decide(Triggers, fmt.Sprintf("the candidate crashed with a new report %d times before the budget was spent: %s", d.candNew, d.culprit.Title))
		} else {
			d.decide(Inconclusive, d.shortfall())
		}
	}
}

func (d *Decision) shortfall() string {
	need := d.NeedHours()
	if math.IsInf(need, 1) {
		return "budget spent before the baseline's rate was measured"
	}
	return fmt.Sprintf("clean, not yet conclusive (confidence %s, needs %s h more): raise --budget",
		verdict.Percent(d.Confidence()), verdict.Hours(math.Max(0, need-d.Cand.LoopHours)))
}

func (d *Decision) decide(v Verdict, why string) {
	d.verdict, d.reason = v, why
	d.decidedAt = d.Base.LoopHours + d.Cand.LoopHours
}

// LambdaLow is the lower bound of the baseline's rate (two-sided exact interval at the
// target confidence); 0 before the first crash.
func (d *Decision) LambdaLow() float64 {
	if d.Base.LoopHours <= 0 {
		return 0
	}
	_, lo, _ := d.Base.Rate(d.P.Confidence)
	return lo
}

// NeedHours is the clean candidate time T the target confidence needs: ln(1/(1−c))/λ_low
// (+Inf before the baseline crashed).
func (d *Decision) NeedHours() float64 {
	return verdict.HoursNeeded(d.LambdaLow(), d.P.Confidence)
}

// Confidence is what the candidate's clean time gives so far: 1 − exp(−λ_low·T).
func (d *Decision) Confidence() float64 {
	if d.Cand.Crashes > 0 {
		return 0
	}
	return verdict.CleanConfidence(d.LambdaLow(), d.Cand.LoopHours)
}

// Result is the verdict with its reasons.
type Result struct {
	Verdict Verdict
	Reason  string
	// Culprit is the other (changed) or new (triggers) report.
	Culprit stats.Signature
	// Confidence reached (of a fix, or of a check that does not fire).
	Confidence float64
	// DecidedAtHours is the loop time (both sides) when the verdict came.
	DecidedAtHours float64
}

// Result is the verdict so far (Undecided while running).
func (d *Decision) Result() Result {
	r := Result{Verdict: d.verdict, Reason: d.reason, Culprit: d.culprit, DecidedAtHours: d.decidedAt}
	switch d.verdict {
	case Fixed, Inconclusive, NotTriggered:
		r.Confidence = d.Confidence()
	}
	return r
}

// ETAHours is a rough loop time still needed (both sides, at the current estimates): what
// progress shows. +Inf before the baseline crashed.
func (d *Decision) ETAHours() float64 {
	if d.Done() {
		return 0
	}
	if d.Base.Crashes == 0 {
		return math.Inf(1)
	}
	rate := float64(d.Base.Crashes) / d.Base.LoopHours
	need := NeededHours(rate, d.P.Confidence, d.P.MinCrashes)
	return math.Max(0, need-(d.Base.LoopHours+d.Cand.LoopHours))
}

// NeededHours is the loop time per arch (both sides, interleaved one to one) that a fixed
// candidate needs, expected at a baseline rate of ratePerHour: each side runs s hours,
// where s is the least time at which the baseline has both MinCrashes crashes and enough
// of them that s ≥ ln(1/(1−c))/λ_low. Budget checks and ETAs use it; it is an expectation,
// not a guarantee (λ is itself estimated).
func NeededHours(ratePerHour, confidence float64, minCrashes int) float64 {
	if ratePerHour <= 0 || math.IsNaN(ratePerHour) {
		return math.Inf(1)
	}
	if minCrashes <= 0 {
		minCrashes = 5
	}
	l := -math.Log(1 - confidence)
	for k := minCrashes; k < 100000; k++ {
		lo, _ := stats.PoissonInterval(k, confidence)
		// λ_low = lo/s and T = l/λ_low = l·s/lo: the candidate's s suffices when lo ≥ l.
		if lo >= l {
			return 2 * float64(k) / ratePerHour
		}
	}
	return math.Inf(1)
}
