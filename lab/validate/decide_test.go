package validate

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/trialsim"
)

// trialSeconds is the loop budget of one simulated trial: the seed reproducer's 10 minutes.
const trialSeconds = 600

// simulate runs one validation against simulated kernels, trials one after another in
// the order the decision asks for them. It returns the result and the loop hours spent.
func simulate(rng *rand.Rand, p Params, base, cand trialsim.Process) (Result, float64) {
	d := NewDecision(p)
	for i := 0; !d.Done(); i++ {
		if i > 1_000_000 {
			panic("validation does not terminate")
		}
		side, secs := d.Next(trialSeconds)
		proc := base
		if side == Candidate {
			proc = cand
		}
		o := proc.Trial(rng, secs)
		obs := Obs{Side: side, Planned: secs, LoopSeconds: o.LoopSeconds, Infra: o.Infra}
		switch {
		case o.Crashed:
			obs.Crashed, obs.Reproduced, obs.Title, obs.Signature = true, true, "BUG: NULL pointer dereference in test_clear_page_writeback", "sig-seed"
		case o.Other:
			obs.Crashed, obs.Title, obs.Signature = true, "kernel BUG at mm/memcontrol.c:600!", "sig-other"
		}
		if o.Infra {
			obs.LoopSeconds = 0 // an infra error's loop time is no exposure
		}
		d.Add(obs)
	}
	return d.Result(), d.Base.LoopHours + d.Cand.LoopHours
}

// Rates measured from real runs of the seed (reproducers/memcg-writeback-null): ~240/h with
// the 100 µs probe on an idle host, ~50/h under load, and the slower shapes (5/h, 0.5/h) a
// weaker probe or another bug gives.
var seedRates = []float64{240, 50, 5, 0.5}

// TestVerdictTruth is the acceptance figure: over ≥ 1000 simulated validations per rate, a
// no-op patch is judged fixed in ≤ 1% at c = 0.99 and a real fix in ≥ 99%, with 2%
// infrastructure errors sprinkled in (never evidence). It prints the mean loop time.
func TestVerdictTruth(t *testing.T) {
	const n = 1000
	p := Params{Confidence: 0.99}
	for _, rate := range seedRates {
		rng := rand.New(rand.NewPCG(uint64(rate*1000), 7))
		base := trialsim.Process{RatePerHour: rate, InfraProb: 0.02}
		var noopFixed, fixFixed, fixOther int
		var noopHours, fixHours float64
		for i := 0; i < n; i++ {
			r, h := simulate(rng, p, base, base)
			noopHours += h
			if r.Verdict == Fixed {
				noopFixed++
			}
			r, h = simulate(rng, p, base, trialsim.Process{InfraProb: 0.02})
			fixHours += h
			switch r.Verdict {
			case Fixed:
				fixFixed++
			default:
				fixOther++
			}
		}
		noopPct, fixPct := 100*float64(noopFixed)/n, 100*float64(fixFixed)/n
		t.Logf("λ=%g/h c=0.99: no-op judged fixed %.1f%% (mean loop %.3g h); real fix judged fixed %.1f%% (mean loop %.3g h, both sides)",
			rate, noopPct, noopHours/n, fixPct, fixHours/n)
		if noopPct > 1 {
			t.Errorf("λ=%g: no-op judged fixed in %.1f%% > 1%%", rate, noopPct)
		}
		if fixPct < 99 {
			t.Errorf("λ=%g: real fix judged fixed in only %.1f%% < 99%% (%d other verdicts)", rate, fixPct, fixOther)
		}
	}
}

// Each other shape of validation ends with its own verdict.
func TestVerdictCases(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		name       string
		p          Params
		base, cand trialsim.Process
		want       Verdict
		minPct     float64
		reason     string
	}{
		{"baseline never crashes", Params{Confidence: 0.99, Budget: 2 * time.Hour}, trialsim.Process{}, trialsim.Process{}, Inconclusive, 100, "baseline does not reproduce (probe does not discriminate)"},
		{"fix trades the crash for another", Params{Confidence: 0.99}, trialsim.Process{RatePerHour: 50}, trialsim.Process{OtherRatePerHour: 60}, Changed, 99, "another signature"},
		{"budget too small for the confidence", Params{Confidence: 0.99, Budget: time.Hour}, trialsim.Process{RatePerHour: 10}, trialsim.Process{}, Inconclusive, 98, "not yet conclusive"},
		{"debug check fires", Params{Confidence: 0.99, Expect: ExpectTriggers}, trialsim.Process{RatePerHour: 50}, trialsim.Process{OtherRatePerHour: 40}, Triggers, 99, "new report"},
		{"debug check never fires, bug still there", Params{Confidence: 0.99, Expect: ExpectTriggers}, trialsim.Process{RatePerHour: 50}, trialsim.Process{RatePerHour: 50}, NotTriggered, 99, "baseline's signature"},
		{"lab keeps failing", Params{Confidence: 0.99}, trialsim.Process{RatePerHour: 50, InfraProb: 1}, trialsim.Process{InfraProb: 1}, InfraFailed, 100, "infrastructure errors in a row"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			got := 0
			var hours float64
			var last Result
			for i := 0; i < n; i++ {
				r, h := simulate(rng, tc.p, tc.base, tc.cand)
				hours += h
				if r.Verdict == tc.want {
					got++
					last = r
				}
			}
			pct := 100 * float64(got) / n
			t.Logf("%s: %q in %.1f%%, mean loop %.3g h; e.g. %s", tc.name, tc.want, pct, hours/n, last.Reason)
			if pct < tc.minPct {
				t.Errorf("%q in %.1f%% < %.0f%%", tc.want, pct, tc.minPct)
			}
			if !strings.Contains(last.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", last.Reason, tc.reason)
			}
		})
	}
}

// NeededHours must predict what the simulated fixed validations spend, or the budget
// check refuses runs that would succeed (or accepts ones that cannot).
func TestNeededHours(t *testing.T) {
	for _, rate := range seedRates {
		need := NeededHours(rate, 0.99, 5)
		rng := rand.New(rand.NewPCG(5, 6))
		var hours float64
		const n = 500
		for i := 0; i < n; i++ {
			_, h := simulate(rng, Params{Confidence: 0.99}, trialsim.Process{RatePerHour: rate}, trialsim.Process{})
			hours += h
		}
		mean := hours / n
		t.Logf("λ=%g/h: needed %.3g h predicted, %.3g h mean simulated", rate, need, mean)
		if math.Abs(mean-need)/need > 0.35 {
			t.Errorf("λ=%g: NeededHours %.3g h, simulation spends %.3g h", rate, need, mean)
		}
	}
	if !math.IsInf(NeededHours(0, 0.99, 5), 1) {
		t.Error("a rate of 0 must need forever")
	}
}

func TestParamsCheck(t *testing.T) {
	for _, tc := range []struct {
		p   Params
		bad string
	}{
		{Params{Confidence: 0.99}, ""},
		{Params{Confidence: 0}, "strictly between 0 and 1"},
		{Params{Confidence: 1}, "strictly between 0 and 1"},
		{Params{Confidence: -0.5}, "strictly between 0 and 1"},
		{Params{Confidence: math.NaN()}, "strictly between 0 and 1"},
		{Params{Confidence: 0.9, Expect: "works"}, "want fixed or triggers"},
		{Params{Confidence: 0.9, Budget: -time.Hour}, "must be positive"},
	} {
		err := tc.p.Check()
		if (err == nil) != (tc.bad == "") || (err != nil && !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%+v: error %v, want %q", tc.p, err, tc.bad)
		}
	}
}

// BenchmarkDecision is the cost of the decision itself: one simulated validation of a
// real fix at the seed's loaded rate (50/h), about 20 trials, per op (~1 ms on 2 loaded
// cores: the exact interval is recomputed per trial; nothing next to a trial of minutes).
func BenchmarkDecision(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	base := trialsim.Process{RatePerHour: 50}
	trials := 0
	for i := 0; i < b.N; i++ {
		d := NewDecision(Params{Confidence: 0.99})
		for !d.Done() {
			side, secs := d.Next(trialSeconds)
			p := base
			if side == Candidate {
				p = trialsim.Process{}
			}
			o := p.Trial(rng, secs)
			d.Add(Obs{Side: side, Planned: secs, LoopSeconds: o.LoopSeconds, Crashed: o.Crashed, Reproduced: o.Crashed, Signature: "s", Title: "t"})
			trials++
		}
	}
	b.ReportMetric(float64(trials)/float64(b.N), "trials/op")
}
