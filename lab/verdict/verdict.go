// Package verdict judges evidence: whether a matrix cell did what its spec expected, how
// sure a clean run is that a bug is absent, and how much longer it must loop to be sure.
// lab/render only formats what this package decides; lab/validate and lab/bisect use
// the same pure functions, so all three agree on what "clean" means.
//
// A race is a Poisson process in loop time. If the bug crashes an unfixed kernel at rate
// λ per hour, a kernel that loops T hours without a crash would have crashed with
// probability 1 − exp(−λT) were it not fixed: that is the confidence of a clean result.
// λ is only measured, so the judgement uses λ_low, the lower end of its exact Poisson
// interval — a lucky, fast-crashing baseline cannot shorten the clean run it demands.
package verdict

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/store"
)

// Verdicts of a cell against its expectation.
const (
	Pass       = "pass"       // crashed as expected, or clean as expected and conclusively so
	Fail       = "fail"       // a crash or hang where none was expected, or no crash where one was
	Error      = "error"      // no run said anything about the kernel (build failed, infra errors)
	Incomplete = "incomplete" // fewer finished runs than planned, or clean but not yet conclusive
)

// DefaultConfidence is the clean confidence a matrix asks for when its spec names none.
const DefaultConfidence = 0.99

// CleanConfidence is the confidence that a kernel which looped hours without a crash is
// free of a bug that crashes at lowRate per hour: 1 − exp(−λ_low·T). Unknown or zero
// rates and no loop time give 0.
func CleanConfidence(lowRate, hours float64) float64 {
	if !(lowRate > 0) || !(hours > 0) || math.IsInf(lowRate, 0) {
		return 0
	}
	return 1 - math.Exp(-lowRate*hours)
}

// HoursNeeded is the clean loop time that reaches confidence c against lowRate:
// ln(1/(1−c))/λ_low. It is +Inf when no time can (no rate, or c outside (0,1)).
func HoursNeeded(lowRate, c float64) float64 {
	if !(lowRate > 0) || !(c > 0 && c < 1) || math.IsInf(lowRate, 0) {
		return math.Inf(1)
	}
	return math.Log(1/(1-c)) / lowRate
}

// Policy is what a clean result is measured against.
type Policy struct {
	// Confidence is the clean confidence to reach (DefaultConfidence if 0).
	Confidence float64
	// RatePerHour is a crash rate the spec names for clean cells that have no crashing
	// counterpart to measure against (0: none). It is taken as λ_low as given.
	RatePerHour float64
}

func (p Policy) target() float64 {
	if p.Confidence > 0 && p.Confidence < 1 {
		return p.Confidence
	}
	return DefaultConfidence
}

// Cell is a matrix cell as the judge sees it.
type Cell struct {
	store.Cell
	Build *store.Build // nil: not built yet or prebuilt
	Stats stats.Cell
}

// Clean is the evidence behind a clean cell's verdict.
type Clean struct {
	// Against names the rate's source: a counterpart cell ID, or "spec".
	Against    string
	RateLow    float64 // λ_low per hour
	Hours      float64 // clean loop hours
	Confidence float64 // reached
	Target     float64
	HoursMore  float64 // further clean looping the target needs: 0 once reached, +Inf without a rate
	Conclusive bool
}

// Judgement is a cell's verdict and why.
type Judgement struct {
	Verdict, Reason string
	Clean           *Clean // set for cells that ran clean where clean was expected
}

// Judge decides every cell. Clean cells are measured against their crashing counterpart
// (Counterpart), or the policy's named rate when they have none.
func Judge(cells []Cell, p Policy) []Judgement {
	out := make([]Judgement, len(cells))
	for i := range cells {
		out[i] = judge(cells, i, p)
	}
	return out
}

func judge(cells []Cell, i int, p Policy) Judgement {
	c := cells[i]
	s := c.Stats
	kernelFailed := s.Crashes + s.Hangs
	var j Judgement
	switch {
	case c.Build != nil && c.Build.Status != "ok":
		j = Judgement{Verdict: Error, Reason: "build failed: " + firstLine(c.Build.Error)}
	case s.Runs < c.PlannedRuns && s.Valid() == 0:
		j = Judgement{Verdict: Incomplete, Reason: "not run yet"}
	case s.Valid() == 0:
		j = Judgement{Verdict: Error, Reason: "no run reached the kernel: infrastructure errors only"}
	case c.ExpectCrash && s.Crashes > 0:
		j = Judgement{Verdict: Pass, Reason: "reproduced as expected"}
	case c.ExpectCrash:
		j = Judgement{Verdict: Fail, Reason: fmt.Sprintf("expected a crash, none in %d runs", s.Valid())}
	case kernelFailed > 0:
		j = Judgement{Verdict: Fail, Reason: fmt.Sprintf("unexpected crash or hang (%d of %d runs)", kernelFailed, s.Valid())}
	default:
		j = judgeClean(cells, i, p)
	}
	if j.Verdict == Pass && s.Runs < c.PlannedRuns {
		j.Verdict, j.Reason = Incomplete, fmt.Sprintf("%s, %d of %d runs so far", j.Reason, s.Runs, c.PlannedRuns)
	}
	return j
}

// judgeClean passes a clean cell only once its clean loop time reaches the target
// confidence: a kernel that looped for 0.13 s proves nothing about a race.
func judgeClean(cells []Cell, i int, p Policy) Judgement {
	c := cells[i]
	cl := &Clean{Hours: c.Stats.LoopHours, Target: p.target()}
	if k := Counterpart(cells, i); k >= 0 {
		cl.Against, cl.RateLow = cells[k].ID, cells[k].Stats.RateLow
	} else if p.RatePerHour > 0 {
		cl.Against, cl.RateLow = "spec", p.RatePerHour
	}
	cl.Confidence = CleanConfidence(cl.RateLow, cl.Hours)
	cl.HoursMore = math.Max(0, HoursNeeded(cl.RateLow, cl.Target)-cl.Hours)
	cl.Conclusive = cl.RateLow > 0 && cl.Confidence >= cl.Target
	j := Judgement{Clean: cl}
	switch {
	case cl.Conclusive:
		j.Verdict = Pass
		j.Reason = fmt.Sprintf("clean as expected (confidence %s against %s)", Percent(cl.Confidence), cl.source())
	case cl.RateLow > 0:
		j.Verdict = Incomplete
		j.Reason = fmt.Sprintf("clean, not yet conclusive (confidence %s, needs %s h more against %s)",
			Percent(cl.Confidence), Hours(cl.HoursMore), cl.source())
	default:
		j.Verdict = Incomplete
		j.Reason = "clean, not yet conclusive (no rate to measure against: no crashing counterpart with the probe on " +
			"on this arch and kernel, and the spec names no clean rate_per_hour)"
	}
	return j
}

func (cl *Clean) source() string {
	if cl.Against == "spec" {
		return fmt.Sprintf("the spec's %s/h", Hours(cl.RateLow))
	}
	return fmt.Sprintf("≥ %s/h of %s", Hours(cl.RateLow), cl.Against)
}

// Counterpart is the index of the cell a clean cell i is measured against, or -1: a cell
// of the same arch and kernel with the probe on that is expected to crash (the spec's
// expect_crash names the unfixed, probe-on cells) and has crashed in the loop. Among
// several, the one sharing most of config, cmdline and probe wins, then spec order.
func Counterpart(cells []Cell, i int) int {
	c := cells[i]
	best, bestScore := -1, -1
	for k, o := range cells {
		if k == i || o.Arch != c.Arch || o.Kernel != c.Kernel || o.Probe == "0" || o.Probe == "" || !o.ExpectCrash ||
			o.Stats.Crashes-o.Stats.SetupCrashes == 0 || !(o.Stats.RateLow > 0) {
			continue
		}
		score := b2i(o.Config == c.Config)*4 + b2i(o.Cmdline == c.Cmdline)*2 + b2i(o.Probe == c.Probe)
		if score > bestScore {
			best, bestScore = k, score
		}
	}
	return best
}

// Fix compares a clean candidate cell with a crashing baseline that differs only in its
// patch set.
type Fix struct {
	Candidate, Baseline int // indices into the judged cells
	CleanHours          float64
	Confidence          float64 // at the baseline's point rate
	Conservative        float64 // at the lower limit of the baseline rate's interval
	HoursFor99          float64 // clean hours needed for 99% at the conservative rate
}

// Fixes lists every clean cell that has a crashing twin with other patches.
func Fixes(cells []Cell) []Fix {
	var out []Fix
	for ci, cand := range cells {
		if cand.Stats.Valid() == 0 || cand.Stats.Crashes > 0 || cand.Stats.LoopHours <= 0 {
			continue
		}
		for bi, base := range cells {
			if bi == ci || base.Patches == cand.Patches || base.Arch != cand.Arch || base.Kernel != cand.Kernel ||
				base.Config != cand.Config || base.Probe != cand.Probe || base.Cmdline != cand.Cmdline ||
				base.Stats.Crashes == 0 || !base.Stats.Known() {
				continue
			}
			out = append(out, Fix{
				Candidate: ci, Baseline: bi, CleanHours: cand.Stats.LoopHours,
				Confidence:   CleanConfidence(base.Stats.Rate, cand.Stats.LoopHours),
				Conservative: CleanConfidence(base.Stats.RateLow, cand.Stats.LoopHours),
				HoursFor99:   HoursNeeded(base.Stats.RateLow, 0.99),
			})
		}
	}
	return out
}

// Percent writes a confidence for people, never rounding up to a target it has not
// reached: 12%, 98.9%, > 99.9999%.
func Percent(f float64) string {
	switch {
	case f > 0.999999:
		return "> 99.9999%"
	case f >= 0.9999:
		return strconv.FormatFloat(math.Floor(1e6*f)/1e4, 'f', 4, 64) + "%"
	case f >= 0.1:
		return strconv.FormatFloat(math.Floor(1e3*f)/10, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(100*f, 'g', 2, 64) + "%"
}

// Hours writes hours, or a rate per hour, to about two significant figures: 1.8, 450.
func Hours(h float64) string {
	switch {
	case math.IsInf(h, 0) || math.IsNaN(h):
		return "∞"
	case h >= 10:
		return strconv.FormatFloat(h, 'f', 0, 64)
	case h >= 0.1:
		return strconv.FormatFloat(h, 'f', 1, 64)
	}
	return strconv.FormatFloat(h, 'g', 2, 64)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
