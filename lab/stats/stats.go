// Package stats turns a cell's runs into the numbers a maintainer decides on: how often the
// bug fires per hour of looping (with an exact Poisson confidence interval), how long it
// takes, which distinct crashes appear (lab/verdict judges what they mean).
//
// A race is a Poisson process in loop time: crashes arrive at some rate λ, so k crashes in
// T hours of looping give λ̂ = k/T, and the exact (Garwood) interval comes from chi-square
// quantiles. Counting runs instead of hours would make a 10-minute run and a 10-hour run
// the same evidence, which they are not.
package stats

import (
	"math"
	"sort"
)

// Outcome names as recorded by lab/repro (kept as strings so this package stands alone).
const (
	Crashed     = "crashed"
	Hung        = "hung"
	Survived    = "survived"
	BootFailed  = "boot-failed"
	InfraError  = "infra-error"
	Interrupted = "interrupted"
)

// Sample is one finished run as statistics see it.
type Sample struct {
	Outcome string
	// LoopSeconds is the time spent looping the reproducer (the exposure).
	LoopSeconds float64
	// TimeToCrash is loop start → crash, for crashed runs.
	TimeToCrash float64
	// Reproduced says the crash matched a title the reproducer expects.
	Reproduced bool
	// BeforeLoop says the crash came during boot or setup, before the first iteration:
	// it counts as a crash but not towards the loop rate (it had no loop time), and it
	// has no time to crash.
	BeforeLoop bool
	// Crashes are the distinct crash reports of the run (a run can log several).
	Crashes []Signature
}

// Signature identifies a distinct crash.
type Signature struct {
	Signature string `json:"signature"`
	Title     string `json:"title"`
}

// SignatureCount is a distinct crash and how many runs showed it.
type SignatureCount struct {
	Signature
	Runs int `json:"runs"`
}

// Spread summarises a set of durations (seconds).
type Spread struct {
	N      int       `json:"n"`
	Min    float64   `json:"min"`
	Q1     float64   `json:"q1"`
	Median float64   `json:"median"`
	Q3     float64   `json:"q3"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// Cell is the summary of one matrix cell.
type Cell struct {
	Runs    int `json:"runs"` // every finished run, infra errors included
	Crashes int `json:"crashes"`
	// SetupCrashes are crashes before the loop (during boot or setup); Rate counts only
	// the others, per hour of looping, which keeps it an unbiased loop-phase rate.
	SetupCrashes int `json:"setup_crashes"`
	Reproduced   int `json:"reproduced"` // crashes whose title the reproducer expects
	Hangs        int `json:"hangs"`
	Survived     int `json:"survived"`
	BootFailed   int `json:"boot_failed"`
	InfraErrors  int `json:"infra_errors"` // say nothing about the kernel; kept out of the rate

	LoopHours  float64 `json:"loop_hours"`
	Confidence float64 `json:"confidence"` // of the interval, e.g. 0.95
	// Rate is crashes per hour of looping; RateLow/RateHigh its exact Poisson interval.
	// With no loop time at all the rate is unknown and all three are NaN (JSON: null is
	// not representable, so render checks Known()).
	Rate     float64 `json:"-"`
	RateLow  float64 `json:"-"`
	RateHigh float64 `json:"-"`

	TimeToCrash Spread           `json:"time_to_crash_seconds"`
	Signatures  []SignatureCount `json:"signatures"`
}

// Known says whether the cell has loop time to estimate a rate from.
func (c Cell) Known() bool { return !math.IsNaN(c.Rate) }

// Valid is the number of runs that say something about the kernel.
func (c Cell) Valid() int { return c.Runs - c.InfraErrors }

// Summarize computes a cell's statistics at the given interval confidence (0.95 if 0).
func Summarize(samples []Sample, confidence float64) Cell {
	if confidence <= 0 || confidence >= 1 {
		confidence = 0.95
	}
	c := Cell{Confidence: confidence}
	var ttc []float64
	sigs := map[string]*SignatureCount{}
	var order []string
	exposure := 0.0
	for _, s := range samples {
		c.Runs++
		switch s.Outcome {
		case InfraError, Interrupted:
			c.InfraErrors++
			continue
		case BootFailed:
			c.BootFailed++
			continue
		case Crashed:
			c.Crashes++
			if s.Reproduced {
				c.Reproduced++
			}
			if s.BeforeLoop {
				c.SetupCrashes++
			} else {
				ttc = append(ttc, s.TimeToCrash)
			}
		case Hung:
			c.Hangs++
		case Survived:
			c.Survived++
		}
		exposure += s.LoopSeconds
		seen := map[string]bool{}
		for _, sig := range s.Crashes {
			key := sig.Signature
			if key == "" {
				key = sig.Title
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			if sigs[key] == nil {
				sigs[key] = &SignatureCount{Signature: sig}
				order = append(order, key)
			}
			sigs[key].Runs++
		}
	}
	c.LoopHours = exposure / 3600
	c.Rate, c.RateLow, c.RateHigh = PoissonRate(c.Crashes-c.SetupCrashes, c.LoopHours, confidence)
	c.TimeToCrash = Summary(ttc)
	for _, k := range order {
		c.Signatures = append(c.Signatures, *sigs[k])
	}
	sort.SliceStable(c.Signatures, func(i, j int) bool { return c.Signatures[i].Runs > c.Signatures[j].Runs })
	return c
}

// PoissonRate returns the rate k/t and its exact two-sided Garwood interval:
// [χ²(α/2; 2k)/2t, χ²(1-α/2; 2k+2)/2t] with α = 1-confidence. With t = 0 nothing is
// known and all three are NaN.
func PoissonRate(k int, t, confidence float64) (rate, lo, hi float64) {
	if t <= 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	lo, hi = PoissonInterval(k, confidence)
	return float64(k) / t, lo / t, hi / t
}

// PoissonInterval is the exact interval for the mean of a Poisson count k.
func PoissonInterval(k int, confidence float64) (lo, hi float64) {
	alpha := 1 - confidence
	if k > 0 {
		lo = ChiSquareQuantile(alpha/2, 2*float64(k)) / 2
	}
	hi = ChiSquareQuantile(1-alpha/2, 2*float64(k)+2) / 2
	return lo, hi
}

// Summary computes min, quartiles (linear interpolation between order statistics) and max.
func Summary(values []float64) Spread {
	s := Spread{N: len(values)}
	if len(values) == 0 {
		return s
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	s.Values = v
	s.Min, s.Max = v[0], v[len(v)-1]
	s.Q1, s.Median, s.Q3 = quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75)
	return s
}

func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}
