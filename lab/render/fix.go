package render

import (
	"math"

	"github.com/reprolab/reprolab/lab/stats"
)

// FixVerdict compares a clean candidate cell with a crashing baseline that differs only
// in its patch set: T clean hours against a baseline rate λ give confidence 1-exp(-λT)
// that the candidate removed the crash. The conservative figure uses the lower end of
// the baseline's rate interval.
type FixVerdict struct {
	Candidate, Baseline *Cell
	CleanHours          float64
	Confidence          float64 // at the baseline's point rate
	Conservative        float64 // at the lower confidence limit of the baseline rate
	HoursFor99          float64 // clean hours needed for 99% at the conservative rate
}

// FixVerdicts lists every clean cell that has a crashing twin with other patches.
func (r *Report) FixVerdicts() []FixVerdict {
	var out []FixVerdict
	for _, cand := range r.Cells {
		if cand.Stats.Valid() == 0 || cand.Stats.Crashes > 0 || cand.Stats.LoopHours <= 0 {
			continue
		}
		for _, base := range r.Cells {
			if base == cand || base.Patches == cand.Patches || base.Arch != cand.Arch || base.Kernel != cand.Kernel ||
				base.Config != cand.Config || base.Probe != cand.Probe || base.Cmdline != cand.Cmdline ||
				base.Stats.Crashes == 0 || !base.Stats.Known() {
				continue
			}
			out = append(out, FixVerdict{
				Candidate: cand, Baseline: base, CleanHours: cand.Stats.LoopHours,
				Confidence:   stats.FixConfidence(base.Stats.Rate, cand.Stats.LoopHours),
				Conservative: stats.FixConfidence(base.Stats.RateLow, cand.Stats.LoopHours),
				HoursFor99:   stats.HoursForConfidence(base.Stats.RateLow, 0.99),
			})
		}
	}
	return out
}

// num is a float for JSON: NaN and ±Inf are not JSON numbers, so they become null.
func num(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}
