// Package bisect locates the commit that introduced (or, with Fix, removed) a flaky kernel
// crash without lying about it: a commit that merely did not crash yet is not "good".
//
// The search is a pure function of the observations so far (builds and finished runs, as
// the store holds them): New folds them into a State, and State.Next says what to do next
// (build a commit, run a commit with a loop budget) or gives the Result. A driver executes
// the decision, records the observation and asks again; after SIGKILL it replays the
// stored observations and continues where it stopped, and two hosts adding runs at once
// only add observations.
//
// Each commit is decided by a sequential test on the crash rate λ measured at the crashing
// end: a run whose crash matches the reproducer's expectation makes it crash at once; it is
// clean only after T = ln(1/α)/λ_low hours of clean looping, with λ_low the lower bound of
// λ's exact Poisson interval, so that a commit which still crashes at λ would have crashed
// in that time with probability ≥ 1-α. A crash with another signature is recorded and the
// commit re-run; if it persists the commit is skipped. Infrastructure errors are retried and
// never decide anything. A commit that does not build (or whose probe anchor is missing) is
// skipped with the reason, never bad; a range left with only skipped commits names no
// culprit, only the candidates.
//
// Endpoints come first: the crashing end must reproduce (this measures λ), the clean end
// must stay clean for T. λ is then pooled over every commit found crashing, so a crashing
// end faster than the range it calibrates lengthens T as the evidence comes in. The answer carries its confidence, the product over the clean
// verdicts of 1 - exp(-λ_low·t_clean).
//
// Fixed is syzkaller's strategy (a fixed number of runs per commit, any crash is bad) kept
// for the side-by-side measurement in the simulation.
package bisect

import (
	"fmt"
	"github.com/reprolab/reprolab/lab/vcs"
	"math"
	"strings"

	"github.com/reprolab/reprolab/lab/stats"
)

// Commit is one commit of the range, oldest first.
type Commit struct {
	Hash, Subject string
}

// Problem is what to bisect and how sure to be.
type Problem struct {
	// Commits from the old end (index 0) to the new end (last), in history order. Cause
	// bisection: index 0 is good (clean), the last is bad (crashes); Fix: index 0
	// crashes and the last is clean. The search finds the first commit in the new state.
	Commits []Commit
	Fix     bool
	// Confidence is the target for the whole answer (default 0.99): each clean verdict
	// gets α = 1 - Confidence^(1/S) with S the expected number of clean verdicts, so
	// their product reaches it.
	Confidence float64
	// RunSeconds is one trial's loop budget (the reproducer's duration); trials of the
	// sequential test are cut shorter when less clean time is missing.
	RunSeconds float64
	// EndCrashes is how many expected crashes the crashing end collects to measure λ
	// (default 10: λ_low ≈ λ/2, where 3 crashes would give λ/5 and steps 2.4× longer).
	EndCrashes int
	// MaxEndSeconds bounds the looping at the crashing end (default 50 trials): no crash
	// by then is "bad end does not reproduce"; fewer than EndCrashes crashes go on with a
	// wider interval.
	MaxEndSeconds float64
	// MaxOther is how many crashes with another signature skip a commit (default 2).
	MaxOther int
	// MaxInfra is how many infrastructure errors in a row at one commit stop the
	// bisection as an infrastructure failure (default 8).
	MaxInfra int
	// Fixed, when > 0, is the fixed-runs strategy instead: Fixed trials of RunSeconds
	// per commit, bad at any expected crash, no λ, no confidence.
	Fixed int
}

// Result of one run as the search sees it.
type Result int

// Run results.
const (
	Clean Result = iota // the budget passed without a crash
	Crash               // the expected crash (title/signature matches the reproducer)
	Other               // a crash with another signature
	Infra               // the lab failed the run: no evidence
)

func (r Result) String() string {
	return [...]string{"clean", "crash", "other", "infra"}[r]
}

// Obs is one observation: a build of a commit or a finished run on it.
type Obs struct {
	Commit string
	// Build: BuildFailed with the reason is a skip; BuildSeconds is recorded for the table.
	IsBuild      bool
	BuildFailed  string
	BuildSeconds float64
	// Run: loop seconds until the run ended, its result, the crash title.
	Result      Result
	LoopSeconds float64
	Title       string
}

// Verdict of one commit.
type Verdict string

// Verdicts.
const (
	Pending Verdict = ""
	Good    Verdict = "good" // clean (the old state in a cause bisection)
	Bad     Verdict = "bad"  // crashes
	Skip    Verdict = "skip"
)

// Step is everything known about one commit.
type Step struct {
	Index        int
	Commit       Commit
	Built        bool
	BuildSeconds float64
	Verdict      Verdict
	Reason       string // of a skip
	Runs         int
	Infra        int // infrastructure errors (all), InfraRow those in a row
	InfraRow     int
	Crashes      int // expected crashes
	Other        int
	OtherTitle   string
	CleanSeconds float64 // loop seconds without the expected crash
	LoopSeconds  float64 // all loop seconds
	Order        int     // when the commit was first touched (0: never)
	// Confidence of a clean verdict: 1 - exp(-λ_low·CleanSeconds).
	Confidence float64
}

// Action is what the driver must do next.
type Action int

// Actions.
const (
	Build Action = iota
	Run
	Done
	Stop // the bisection cannot go on: Decision.Err says why
)

// Decision is the next thing to do.
type Decision struct {
	Action  Action
	Commit  Commit
	Index   int
	Seconds float64 // Run: the loop budget
	// Phase says why: "crashing end", "clean end", "bisect".
	Phase  string
	Result *Answer // Done
	Err    error   // Stop: a StopError
}

// StopError is a bisection that cannot answer: an endpoint contradicts the request, or
// infrastructure keeps failing. Infra tells which (exit 3 rather than 2).
type StopError struct {
	Msg   string
	Infra bool
}

func (e *StopError) Error() string { return e.Msg }

// Answer is the outcome of a finished bisection.
type Answer struct {
	// Culprit is the first commit in the new state, nil when skipped commits leave
	// several candidates.
	Culprit *Commit
	// Candidates are the commits the culprit can be: the culprit alone, or the skipped
	// commits before the first new one and that one.
	Candidates []Commit
	// Confidence is the product over clean verdicts (NaN for the fixed strategy).
	Confidence float64
	Rate       float64 // λ̂ per hour at the crashing end, and its interval bounds
	RateLow    float64
	RateHigh   float64
	StepHours  float64 // T: clean hours a clean verdict needs
	Steps      []Step  // the commits tested, in the order they were first touched
	LoopHours  float64 // all looping
	Runs       int
}

// State is the search after a sequence of observations.
type State struct {
	p       Problem
	index   map[string]int
	steps   []Step
	touched int
	endT    float64 // T in seconds, known once the crashing end is measured
	lamLow  float64 // per second
	lam     float64
	lamHigh float64
	alpha   float64
}

// New folds observations into a state. Observations of commits outside the range are
// ignored (a driver's store may hold other campaigns' runs only if it mixes them).
func New(p Problem, obs []Obs) (*State, error) {
	if len(p.Commits) < 2 {
		return nil, fmt.Errorf("bisect: need at least two commits, got %d", len(p.Commits))
	}
	if p.Confidence <= 0 || p.Confidence >= 1 {
		p.Confidence = 0.99
	}
	if p.RunSeconds <= 0 {
		p.RunSeconds = 600
	}
	if p.EndCrashes <= 0 {
		p.EndCrashes = 10
	}
	if p.MaxEndSeconds <= 0 {
		p.MaxEndSeconds = 50 * p.RunSeconds
	}
	if p.MaxOther <= 0 {
		p.MaxOther = 2
	}
	if p.MaxInfra <= 0 {
		p.MaxInfra = 8
	}
	s := &State{p: p, index: make(map[string]int, len(p.Commits)), steps: make([]Step, len(p.Commits))}
	for i, c := range p.Commits {
		s.index[c.Hash] = i
		s.steps[i] = Step{Index: i, Commit: c}
	}
	// S: the clean end plus about half of the log2(n) steps, at least 2; Bonferroni-like
	// split of 1-Confidence over them keeps the product of clean confidences ≥ target.
	expected := math.Max(2, 1+math.Ceil(math.Log2(float64(len(p.Commits))))/2+1)
	s.alpha = 1 - math.Pow(p.Confidence, 1/expected)
	for _, o := range obs {
		s.Add(o)
	}
	return s, nil
}

// Add folds one more observation in.
func (s *State) Add(o Obs) {
	i, ok := s.index[o.Commit]
	if !ok {
		return
	}
	st := &s.steps[i]
	if st.Order == 0 {
		s.touched++
		st.Order = s.touched
	}
	if o.IsBuild {
		st.BuildSeconds += o.BuildSeconds
		if o.BuildFailed != "" {
			st.Verdict, st.Reason = Skip, o.BuildFailed
			return
		}
		st.Built = true
		return
	}
	st.Runs++
	if o.Result == Infra {
		st.Infra++
		st.InfraRow++
		return
	}
	st.InfraRow = 0
	st.LoopSeconds += o.LoopSeconds
	switch o.Result {
	case Crash:
		st.Crashes++
	case Other:
		st.Other++
		if st.OtherTitle == "" {
			st.OtherTitle = o.Title
		}
		st.CleanSeconds += o.LoopSeconds
	case Clean:
		st.CleanSeconds += o.LoopSeconds
	}
}

// crashEnd and cleanEnd are the indexes of the endpoints.
func (s *State) crashEnd() int {
	if s.p.Fix {
		return 0
	}
	return len(s.steps) - 1
}

func (s *State) cleanEnd() int { return len(s.steps) - 1 - s.crashEnd() }

// measure derives λ and T from the crashing end once it has enough evidence; ok=false
// while it needs more looping.
func (s *State) measure() (ok bool, stop error) {
	e := &s.steps[s.crashEnd()]
	enough := e.Crashes >= s.p.EndCrashes || e.LoopSeconds >= s.p.MaxEndSeconds
	if s.p.Fixed > 0 {
		enough = e.Crashes > 0 || e.Runs-e.Infra >= s.p.Fixed
	}
	if !enough {
		return false, nil
	}
	if e.Crashes == 0 {
		msg := fmt.Sprintf("bad end does not reproduce: %s (%s) looped %.1f min in %d runs without the expected crash",
			vcs.Short(e.Commit.Hash), e.Commit.Subject, e.LoopSeconds/60, e.Runs-e.Infra)
		if e.Other > 0 {
			msg += fmt.Sprintf("; it crashed %d times with another signature (%s)", e.Other, e.OtherTitle)
		}
		return false, &StopError{Msg: msg}
	}
	s.pool()
	return true, nil
}

// pool estimates λ from every crashing commit so far, the crashing end and the steps
// found bad (each contributes its crashes and its loop time, the first crash ending a
// step's looping), and sets T from its lower bound. A crashing end that crashes faster
// than the commits in the range would otherwise make T too short for them; pooling
// lowers λ as their slower crashes come in, and clean verdicts short of the new T reopen.
func (s *State) pool() {
	k, t := 0, 0.0
	for _, st := range s.steps {
		if st.Crashes > 0 && st.Verdict != Skip {
			k += st.Crashes
			t += st.LoopSeconds
		}
	}
	s.lam, s.lamLow, s.lamHigh = stats.PoissonRate(k, t, 0.95)
	s.endT = math.Log(1/s.alpha) / s.lamLow
}

// verdict decides a commit from its evidence (the endpoints' rules are the caller's).
func (s *State) verdict(i int) {
	st := &s.steps[i]
	if st.Verdict == Skip {
		return
	}
	st.Verdict = Pending
	switch {
	case st.Crashes > 0:
		st.Verdict = Bad
	case st.Other >= s.p.MaxOther:
		st.Verdict, st.Reason = Skip, fmt.Sprintf("crashes with another signature %d times (%s)", st.Other, st.OtherTitle)
	case s.p.Fixed > 0 && st.Runs-st.Infra >= s.p.Fixed:
		st.Verdict = Good
	case s.p.Fixed == 0 && s.endT > 0 && st.CleanSeconds >= s.endT:
		st.Verdict = Good
	}
	if st.Verdict == Good && s.p.Fixed == 0 {
		st.Confidence = 1 - math.Exp(-s.lamLow*st.CleanSeconds)
	}
}

// isNew says whether a verdict is the new state of the search.
func (s *State) isNew(v Verdict) bool {
	if s.p.Fix {
		return v == Good
	}
	return v == Bad
}

func (s *State) isOld(v Verdict) bool {
	if s.p.Fix {
		return v == Bad
	}
	return v == Good
}

// work is the decision that advances commit i: build it, or run it.
func (s *State) work(i int, phase string) Decision {
	st := &s.steps[i]
	d := Decision{Commit: st.Commit, Index: i, Phase: phase}
	if st.InfraRow >= s.p.MaxInfra {
		d.Action = Stop
		d.Err = &StopError{Infra: true, Msg: fmt.Sprintf("infrastructure failed %d runs in a row on %s (%s): fix the lab and run the same command again to resume",
			st.InfraRow, vcs.Short(st.Commit.Hash), st.Commit.Subject)}
		return d
	}
	if !st.Built {
		d.Action = Build
		return d
	}
	d.Action, d.Seconds = Run, s.p.RunSeconds
	switch {
	case s.p.Fixed > 0:
	case i == s.crashEnd() && s.endT == 0:
		d.Seconds = math.Min(s.p.RunSeconds, s.p.MaxEndSeconds-st.LoopSeconds)
	default:
		d.Seconds = math.Min(s.p.RunSeconds, s.endT-st.CleanSeconds)
	}
	d.Seconds = math.Max(d.Seconds, 1)
	return d
}

// Next is what to do now.
func (s *State) Next() Decision {
	ce := s.crashEnd()
	if s.steps[ce].Verdict == Skip {
		return Decision{Action: Stop, Err: &StopError{Msg: fmt.Sprintf("bad end %s (%s) cannot be tested: %s",
			vcs.Short(s.steps[ce].Commit.Hash), s.steps[ce].Commit.Subject, s.steps[ce].Reason)}}
	}
	if s.endT == 0 && !(s.p.Fixed > 0 && s.steps[ce].Crashes > 0) {
		ok, stop := s.measure()
		if stop != nil {
			return Decision{Action: Stop, Err: stop}
		}
		if !ok {
			return s.work(ce, "crashing end")
		}
	}
	if s.p.Fixed == 0 {
		s.pool()
	}
	s.verdict(ce)
	ge := s.cleanEnd()
	s.verdict(ge)
	switch g := s.steps[ge]; g.Verdict {
	case Skip:
		return Decision{Action: Stop, Err: &StopError{Msg: fmt.Sprintf("good end %s (%s) cannot be tested: %s", vcs.Short(g.Commit.Hash), g.Commit.Subject, g.Reason)}}
	case Bad:
		return Decision{Action: Stop, Err: &StopError{Msg: fmt.Sprintf("good end crashes too: %s (%s) crashed with the expected title after %.1f min of looping",
			vcs.Short(g.Commit.Hash), g.Commit.Subject, g.LoopSeconds/60)}}
	case Pending:
		return s.work(ge, "clean end")
	}
	for i := 1; i < len(s.steps)-1; i++ {
		s.verdict(i)
	}
	lo, hi := s.bounds()
	// Candidates strictly between lo and hi that are not yet decided.
	var open []int
	for i := lo + 1; i < hi; i++ {
		if s.steps[i].Verdict == Pending {
			open = append(open, i)
		}
	}
	if len(open) == 0 {
		return Decision{Action: Done, Result: s.answer(lo, hi)}
	}
	// A commit already under test is finished first (its evidence is paid for), else the
	// open commit nearest the middle; skipped commits are stepped around.
	mid := (lo + hi) / 2
	best := -1
	for _, i := range open {
		if s.steps[i].Order > 0 && s.steps[i].Verdict == Pending {
			best = i
			break
		}
	}
	if best < 0 {
		for _, i := range open {
			if best < 0 || abs(i-mid) < abs(best-mid) {
				best = i
			}
		}
	}
	return s.work(best, "bisect")
}

// bounds: hi is the first commit in the new state, lo the last one in the old state below it.
func (s *State) bounds() (lo, hi int) {
	hi = len(s.steps) - 1
	for i := range s.steps {
		if s.isNew(s.steps[i].Verdict) {
			hi = i
			break
		}
	}
	for i := hi - 1; i >= 0; i-- {
		if s.isOld(s.steps[i].Verdict) {
			return i, hi
		}
	}
	return 0, hi
}

func (s *State) answer(lo, hi int) *Answer {
	a := &Answer{Confidence: 1, StepHours: s.endT / 3600, Rate: s.lam * 3600, RateLow: s.lamLow * 3600, RateHigh: s.lamHigh * 3600}
	for i := lo + 1; i <= hi; i++ {
		a.Candidates = append(a.Candidates, s.steps[i].Commit)
	}
	if len(a.Candidates) == 1 {
		c := a.Candidates[0]
		a.Culprit = &c
	}
	steps := make([]Step, 0, s.touched)
	for _, st := range s.steps {
		if st.Order > 0 {
			steps = append(steps, st)
		}
		if st.Verdict == Good {
			a.Confidence *= st.Confidence
		}
		a.LoopHours += st.LoopSeconds / 3600
		a.Runs += st.Runs
	}
	if s.p.Fixed > 0 {
		a.Confidence = math.NaN()
	}
	sortSteps(steps)
	a.Steps = steps
	return a
}

// Steps are the commits touched so far, in the order they were first touched (for a
// progress table before the answer).
func (s *State) Steps() []Step {
	for i := range s.steps {
		s.verdict(i)
	}
	var out []Step
	for _, st := range s.steps {
		if st.Order > 0 {
			out = append(out, st)
		}
	}
	sortSteps(out)
	return out
}

// StepHours is T, the clean hours a clean verdict needs (0 until the crashing end is
// measured).
func (s *State) StepHours() float64 { return s.endT / 3600 }

func sortSteps(st []Step) {
	for i := 1; i < len(st); i++ {
		for j := i; j > 0 && st[j].Order < st[j-1].Order; j-- {
			st[j], st[j-1] = st[j-1], st[j]
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Describe is a one-line account of an answer.
func (a *Answer) Describe() string {
	if a.Culprit != nil {
		return fmt.Sprintf("first new commit %s (%s), confidence %.4f", vcs.Short(a.Culprit.Hash), a.Culprit.Subject, a.Confidence)
	}
	var hs []string
	for _, c := range a.Candidates {
		hs = append(hs, vcs.Short(c.Hash))
	}
	return fmt.Sprintf("no single culprit: skipped commits leave %d candidates (%s)", len(hs), strings.Join(hs, " "))
}
