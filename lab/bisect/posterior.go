package bisect

import (
	"math"
)

// Posterior is the probabilistic bisection, measured beside the sequential test: a
// distribution over which commit is the culprit (the first in the new state), updated by
// every run, as a pure function of the observations. The next commit tested is the
// testable one where P(culprit ≤ x) is nearest ½, with a batch of loop time per build
// (builds are dear); the answer is the commit whose posterior reaches the target.
//
// The likelihood of clean looping t at commit x is e^(−λt) for culprits at or below x (x
// would crash) and 1 above; an expected crash at x rules out every culprit above x. λ is
// λ_low from the crashing end, pooled over crashing commits as in the sequential test, so
// an overestimated rate cannot make clean time count for more than it proves.
//
// It shares State's endpoint phase (the crashing end measures λ, the clean end is
// verified) and differs in how the range is searched. Simulation only for now: the
// driver (lab/bisectrun) runs the sequential test.
type Posterior struct {
	*State
	// BatchSeconds is the loop time asked of a commit per decision (default RunSeconds).
	BatchSeconds float64
}

// NewPosterior folds observations into a probabilistic bisection of p.
func NewPosterior(p Problem, obs []Obs) (*Posterior, error) {
	s, err := New(p, obs)
	if err != nil {
		return nil, err
	}
	return &Posterior{State: s, BatchSeconds: s.p.RunSeconds}, nil
}

// posterior is P(culprit = i) for i in 1..n-1 (index 0 is the old end, never the culprit).
// In a fix bisection the roles flip: crashing commits are the old side.
func (q *Posterior) posterior() []float64 {
	n := len(q.steps)
	logp := make([]float64, n)
	logp[0] = math.Inf(-1)
	lam := q.lamLow
	clean := make([]float64, n) // clean seconds per commit that counts as evidence
	for x := 1; x < n-1; x++ {
		if st := q.steps[x]; st.Verdict != Skip || st.Crashes > 0 {
			clean[x] = st.CleanSeconds
		}
	}
	if !q.p.Fix {
		// Culprit c: commits x ≥ c crash. Clean time at x ≥ c weighs e^(−λt); a crash at x
		// rules out c > x.
		suffix, minCrash := 0.0, n-1
		for x := n - 1; x >= 1; x-- {
			if x < n-1 {
				suffix += clean[x]
				if q.steps[x].Crashes > 0 {
					minCrash = x
				}
			}
			logp[x] = -lam * suffix
		}
		for c := minCrash + 1; c < n; c++ {
			logp[c] = math.Inf(-1)
		}
	} else {
		// Culprit c (the fix): commits x < c crash. A crash at x rules out c ≤ x.
		prefix, maxCrash := 0.0, 0
		for c := 1; c < n; c++ {
			x := c - 1
			if x >= 1 {
				prefix += clean[x]
				if q.steps[x].Crashes > 0 {
					maxCrash = x
				}
			}
			logp[c] = -lam * prefix
		}
		for c := 1; c <= maxCrash; c++ {
			logp[c] = math.Inf(-1)
		}
	}
	max := math.Inf(-1)
	for _, v := range logp {
		max = math.Max(max, v)
	}
	p := make([]float64, n)
	sum := 0.0
	for i, v := range logp {
		p[i] = math.Exp(v - max)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// Next is what to do now.
func (q *Posterior) Next() Decision {
	d := q.State.Next()
	if d.Phase != "bisect" {
		return d // endpoints, stops, or a range already closed by skips
	}
	n := len(q.steps)
	p := q.posterior()
	best := 0
	for i := 1; i < n; i++ {
		if p[i] > p[best] {
			best = i
		}
	}
	if p[best] >= q.p.Confidence {
		return Decision{Action: Done, Result: q.answerAt(best, p)}
	}
	// A block of skipped commits and the first testable one after it, holding the mass,
	// cannot be split: it is the answer's candidates.
	lo := best
	for lo > 1 && q.steps[lo-1].Verdict == Skip {
		lo--
	}
	mass := 0.0
	for i := lo; i <= best; i++ {
		mass += p[i]
	}
	if lo < best && mass >= q.p.Confidence && q.tested(lo-1) && q.tested(best) {
		return Decision{Action: Done, Result: q.answer(lo-1, best)}
	}
	// The testable commit where the CDF crosses ½ (a commit x splits culprits ≤ x from > x).
	cdf, pick, bestGap := 0.0, -1, 2.0
	for x := 1; x < n-1; x++ {
		cdf += p[x]
		if q.steps[x].Verdict == Skip || q.steps[x].Crashes > 0 {
			continue
		}
		if g := math.Abs(cdf - 0.5); g < bestGap {
			pick, bestGap = x, g
		}
	}
	if pick < 0 {
		return Decision{Action: Done, Result: q.answerAt(best, p)}
	}
	w := q.work(pick, "bisect")
	if w.Action == Run {
		w.Seconds = q.BatchSeconds
	}
	return w
}

// tested says the commit has evidence enough to bound a block: it crashed, or it is an
// endpoint, or its clean time reached T.
func (q *Posterior) tested(i int) bool {
	if i <= 0 || i >= len(q.steps)-1 {
		return true
	}
	st := q.steps[i]
	return st.Crashes > 0 || st.CleanSeconds >= q.endT
}

func (q *Posterior) answerAt(best int, p []float64) *Answer {
	a := q.answer(best-1, best)
	a.Confidence = p[best]
	return a
}
