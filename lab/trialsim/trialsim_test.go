package trialsim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The simulated process must have the rate it claims, or every figure measured with it
// is wrong: over many trials, crashes per loop-hour converge to RatePerHour.
func TestRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Process
	}{
		{"seed idle", Process{RatePerHour: 240}},
		{"rare", Process{RatePerHour: 5}},
		{"with infra and other bugs", Process{RatePerHour: 60, OtherRatePerHour: 6, InfraProb: 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var loop float64
			crashes, infra := 0, 0
			const n = 20000
			for i := 0; i < n; i++ {
				o := tc.p.Trial(rng, 600)
				if o.Infra {
					infra++
					continue // infra time is no exposure
				}
				loop += o.LoopSeconds
				if o.Crashed {
					crashes++
				}
			}
			got := float64(crashes) / (loop / 3600)
			if math.Abs(got-tc.p.RatePerHour)/tc.p.RatePerHour > 0.05 {
				t.Errorf("rate %.2f/h, want %.2f/h", got, tc.p.RatePerHour)
			}
			if tc.p.InfraProb == 0 && infra != 0 {
				t.Errorf("%d infra errors from a process without them", infra)
			}
		})
	}
}

func TestRunChance(t *testing.T) {
	r := RateForChance(0.2, 180)
	if got := (Process{RatePerHour: r}).RunChance(180); math.Abs(got-0.2) > 1e-9 {
		t.Errorf("round trip: %v", got)
	}
	if got := (Process{}).Trial(rand.New(rand.NewPCG(1, 1)), 60); got.Crashed || got.LoopSeconds != 60 {
		t.Errorf("rate 0 must survive the whole budget: %+v", got)
	}
}
