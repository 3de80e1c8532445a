// Package trialsim is a fake trial runner for measuring campaign algorithms
// (validation, bisection) over thousands of simulated cases: a kernel under a looping
// reproducer crashes as a Poisson process in loop time, with a rate per loop-hour, and
// a trial can also end in a crash of another bug or in an infrastructure error.
//
// It is for statistics only. Every algorithm measured with it is also run end to end on
// real QEMU guests and real kernels; a simulation never stands in for that.
package trialsim

import (
	"math"
	"math/rand/v2"
)

// Process is how one kernel behaves under the reproducer.
type Process struct {
	// RatePerHour is λ of the expected crash per hour of looping (0: never crashes).
	RatePerHour float64
	// OtherRatePerHour is the rate of crashes with another signature (another bug).
	OtherRatePerHour float64
	// InfraProb is the chance that a trial ends in an infrastructure error before its
	// budget, at a uniformly random point of its loop time.
	InfraProb float64
	// BootSeconds is the wall time a trial spends before its first iteration.
	BootSeconds float64
}

// Outcome is one simulated trial.
type Outcome struct {
	LoopSeconds float64 // looping time until the trial ended
	WallSeconds float64 // boot plus loop
	Crashed     bool    // the expected crash ended the trial
	Other       bool    // a crash of another bug ended the trial
	Infra       bool    // an infrastructure error ended it: no evidence
}

// Trial runs one trial with a loop budget (seconds): it ends at the first event.
func (p Process) Trial(rng *rand.Rand, budgetSeconds float64) Outcome {
	t := budgetSeconds
	var o Outcome
	if c := exp(rng, p.RatePerHour); c < t {
		t, o = c, Outcome{Crashed: true}
	}
	if c := exp(rng, p.OtherRatePerHour); c < t {
		t, o = c, Outcome{Other: true}
	}
	if p.InfraProb > 0 && rng.Float64() < p.InfraProb {
		if c := rng.Float64() * budgetSeconds; c < t {
			t, o = c, Outcome{Infra: true}
		}
	}
	o.LoopSeconds = t
	o.WallSeconds = p.BootSeconds + t
	return o
}

// exp draws the loop time (seconds) to the next event of a Poisson process with the
// given rate per hour; +Inf for a zero rate.
func exp(rng *rand.Rand, perHour float64) float64 {
	if perHour <= 0 {
		return math.Inf(1)
	}
	return rng.ExpFloat64() / perHour * 3600
}

// RunChance is the chance that one trial of budgetSeconds crashes at the expected rate:
// 1 - exp(-λt). It converts a "crashes in 20% of runs" description into a rate.
func (p Process) RunChance(budgetSeconds float64) float64 {
	return 1 - math.Exp(-p.RatePerHour*budgetSeconds/3600)
}

// RateForChance is the rate per hour at which a trial of budgetSeconds crashes with
// probability chance.
func RateForChance(chance, budgetSeconds float64) float64 {
	return -math.Log(1-chance) / budgetSeconds * 3600
}
