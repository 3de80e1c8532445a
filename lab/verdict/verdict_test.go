package verdict

import (
	"math"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/render"
	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/store"
)

func near(a, b, eps float64) bool { return math.Abs(a-b) <= eps*math.Max(1, math.Abs(b)) }

// The seed thread's numbers (DESIGN.md): unfixed v4.11 with the probe panics 3–12 s into
// each run; the backported fix ran 6 × 3 min clean.
func TestSeedConfidence(t *testing.T) {
	var base []stats.Sample
	for _, ttc := range []float64{3, 5, 7, 12, 4, 9} {
		base = append(base, stats.Sample{Outcome: stats.Crashed, LoopSeconds: ttc, TimeToCrash: ttc, Reproduced: true})
	}
	c := stats.Summarize(base, 0.95)
	if conf := CleanConfidence(c.RateLow, 6*3.0/60); conf < 0.999999 {
		t.Fatalf("6×3 min clean against a ≥%.0f/h baseline: confidence %v", c.RateLow, conf)
	}
	h := HoursNeeded(c.RateLow, 0.99)
	if got := CleanConfidence(c.RateLow, h); !near(got, 0.99, 1e-9) {
		t.Fatalf("HoursNeeded round trip: %v", got)
	}
}

func TestConfidenceEdges(t *testing.T) {
	for _, r := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if CleanConfidence(r, 1) != 0 || !math.IsInf(HoursNeeded(r, 0.9), 1) {
			t.Errorf("rate %v: an unknown rate must give no confidence", r)
		}
	}
	for _, c := range []float64{0, 1, -0.5, 1.5, math.NaN()} {
		if !math.IsInf(HoursNeeded(10, c), 1) {
			t.Errorf("confidence %v: no time reaches it", c)
		}
	}
	if CleanConfidence(10, 0) != 0 {
		t.Error("no loop time, no confidence")
	}
	// T = ln(1/(1−c))/λ: 0.99 at 1/h is ln 100 h.
	if h := HoursNeeded(1, 0.99); !near(h, math.Log(100), 1e-12) {
		t.Errorf("HoursNeeded(1, 0.99) = %v", h)
	}
}

// cell makes a judged cell: crashes of loopSec seconds of looping over runs runs.
func cell(id, arch, kernel, probe string, expect bool, runs, crashes int, loopSec float64) Cell {
	var smp []stats.Sample
	for i := 0; i < runs; i++ {
		s := stats.Sample{Outcome: stats.Survived, LoopSeconds: loopSec / float64(runs)}
		if i < crashes {
			s.Outcome, s.TimeToCrash = stats.Crashed, s.LoopSeconds
		}
		smp = append(smp, s)
	}
	return Cell{Cell: store.Cell{ID: id, Arch: arch, Kernel: kernel, Config: "seed", Probe: probe, Patches: "none", Cmdline: "plain",
		ExpectCrash: expect, PlannedRuns: runs}, Stats: stats.Summarize(smp, 0.95)}
}

func TestJudge(t *testing.T) {
	// The counterpart: 3 crashes in 30 s of looping, λ_low ≈ 22/h.
	base := cell("x_v411_p100", "x86_64", "v4.11", "100", true, 3, 3, 30)
	lowBase := base.Stats.RateLow
	tests := []struct {
		name    string
		cells   []Cell
		policy  Policy
		verdict string
		reason  string // substring
	}{
		{"long clean loop against the counterpart", []Cell{cell("c", "x86_64", "v4.11", "0", false, 3, 0, 3600), base}, Policy{},
			Pass, "clean as expected (confidence > 99.9999% against ≥ "},
		{"0.13 s clean is nothing", []Cell{cell("c", "x86_64", "v4.11", "0", false, 1, 0, 0.13), base}, Policy{},
			Incomplete, "clean, not yet conclusive (confidence "},
		{"other arch is no counterpart", []Cell{cell("c", "arm64", "v4.11", "0", false, 3, 0, 3600), base}, Policy{},
			Incomplete, "no rate to measure against"},
		{"probe-off crash is no counterpart", []Cell{cell("c", "x86_64", "v4.11", "0", false, 3, 0, 3600),
			cell("b", "x86_64", "v4.11", "0", true, 3, 3, 30)}, Policy{}, Incomplete, "no rate to measure against"},
		{"spec rate when no counterpart", []Cell{cell("c", "x86_64", "v4.13", "100", false, 3, 0, 540), base}, Policy{RatePerHour: 300},
			Pass, "against the spec's 300/h"},
		{"spec rate, too short", []Cell{cell("c", "x86_64", "v4.13", "100", false, 3, 0, 3600*0.128)}, Policy{RatePerHour: 1},
			Incomplete, "confidence 12%, needs 4.5 h more against the spec's 1.0/h"},
		{"target confidence from the spec", []Cell{cell("c", "x86_64", "v4.13", "100", false, 3, 0, 3600*0.128)}, Policy{RatePerHour: 1, Confidence: 0.1},
			Pass, "confidence 12%"},
		{"expected crash came", []Cell{base}, Policy{}, Pass, "reproduced as expected"},
		{"expected crash did not come", []Cell{cell("c", "x86_64", "v4.11", "100", true, 3, 0, 30)}, Policy{}, Fail, "expected a crash, none in 3 runs"},
		{"unexpected crash", []Cell{cell("c", "x86_64", "v4.13", "100", false, 3, 1, 30)}, Policy{}, Fail, "unexpected crash or hang (1 of 3 runs)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := Judge(tt.cells, tt.policy)[0]
			if j.Verdict != tt.verdict || !strings.Contains(j.Reason, tt.reason) {
				t.Fatalf("%s: %q, want %s: %q", j.Verdict, j.Reason, tt.verdict, tt.reason)
			}
		})
	}
	// The short clean run's figures are the formula's.
	j := Judge([]Cell{cell("c", "x86_64", "v4.11", "0", false, 1, 0, 0.13), base}, Policy{})[0]
	T := 0.13 / 3600
	if cl := j.Clean; cl.Against != "x_v411_p100" || !near(cl.Confidence, 1-math.Exp(-lowBase*T), 1e-12) ||
		!near(cl.HoursMore, math.Log(100)/lowBase-T, 1e-12) || cl.Conclusive {
		t.Fatalf("%+v (λ_low %v)", cl, lowBase)
	}
}

func TestFixes(t *testing.T) {
	base := cell("b", "x86_64", "v4.11", "100", true, 3, 3, 30)
	fix := cell("f", "x86_64", "v4.11", "100", false, 3, 0, 540)
	fix.Patches = "fix"
	other := cell("o", "arm64", "v4.11", "100", false, 3, 0, 540)
	other.Patches = "fix"
	fv := Fixes([]Cell{base, fix, other})
	if len(fv) != 1 || fv[0].Candidate != 1 || fv[0].Baseline != 0 || fv[0].Conservative > fv[0].Confidence || fv[0].Conservative < 0.99 {
		t.Fatalf("%+v", fv)
	}
}

// render shows the verdicts by name; the names must be these.
func TestRenderNames(t *testing.T) {
	if render.Pass != Pass || render.Fail != Fail || render.Error != Error || render.Incomplete != Incomplete {
		t.Fatal("lab/render's verdict names differ from lab/verdict's")
	}
}

func TestFormats(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string
	}{{0.12, "12%"}, {0.9899, "98.9%"}, {0.99, "99%"}, {0.99995, "99.9950%"}, {0.9999999, "> 99.9999%"}, {0.004, "0.4%"}} {
		if got := Percent(tt.f); got != tt.want {
			t.Errorf("Percent(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
	for _, tt := range []struct {
		h    float64
		want string
	}{{1.83, "1.8"}, {450.4, "450"}, {0.0132, "0.013"}, {math.Inf(1), "∞"}} {
		if got := Hours(tt.h); got != tt.want {
			t.Errorf("Hours(%v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}
