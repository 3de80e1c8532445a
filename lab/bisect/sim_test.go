package bisect

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/trialsim"
)

// history is a synthetic commit range with the truth about every commit.
type history struct {
	n       int
	culprit int // first commit in the new state
	fix     bool
	rate    []float64 // expected-crash rate per hour of each commit
	other   []float64
	infra   []float64
	skip    map[int]bool
}

// simCase is one row of testdata/sim-cases.tsv.
type simCase struct {
	name                  string
	n                     int
	rate                  float64 // λ per hour at crashing commits
	skipFrac              float64 // share of commits that do not build
	infra, other          float64 // infra chance per run, other-signature rate per hour
	flakyEnd              bool    // the crashing end crashes 2× faster and fails infra 30%
	fix                   bool
	reps                  int
	culpritFirst, culLast bool
}

func loadCases(t testing.TB) []simCase {
	f, err := os.Open("testdata/sim-cases.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []simCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fl := strings.Fields(line)
		if len(fl) != 8 {
			t.Fatalf("sim-cases.tsv: %q: want 8 fields", line)
		}
		num := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("sim-cases.tsv: %q: %v", line, err)
			}
			return v
		}
		c := simCase{name: fl[0], rate: num(fl[2]), skipFrac: num(fl[3]), infra: num(fl[4]), other: num(fl[5]), reps: int(num(fl[7]))}
		for _, flag := range strings.Split(fl[6], ",") {
			switch flag {
			case "flaky-end":
				c.flakyEnd = true
			case "fix":
				c.fix = true
			case "-":
			default:
				t.Fatalf("sim-cases.tsv: unknown flag %q", flag)
			}
		}
		for _, n := range strings.Split(fl[1], ",") {
			cc := c
			cc.n = int(num(n))
			cc.name = fmt.Sprintf("%s/n=%d", c.name, cc.n)
			cases = append(cases, cc)
		}
	}
	return cases
}

func (c simCase) history(rng *rand.Rand, rep int) history {
	h := history{n: c.n, fix: c.fix, rate: make([]float64, c.n), other: make([]float64, c.n), infra: make([]float64, c.n), skip: map[int]bool{}}
	switch rep % 10 {
	case 0:
		h.culprit = 1
	case 1:
		h.culprit = c.n - 1
	default:
		h.culprit = 1 + rng.IntN(c.n-1)
	}
	for i := range c.n {
		crashes := i >= h.culprit
		if c.fix {
			crashes = i < h.culprit
		}
		if crashes {
			// Rates differ between commits of the crashing side: the sequential test
			// must hold when a step crashes slower than the end it was calibrated on.
			h.rate[i] = c.rate * (0.7 + 0.6*rng.Float64())
		}
		h.infra[i] = c.infra
		h.other[i] = c.other
		if i > 0 && i < c.n-1 && rng.Float64() < c.skipFrac {
			h.skip[i] = true
		}
	}
	end := c.n - 1
	if c.fix {
		end = 0
	}
	h.rate[end] = c.rate
	if c.flakyEnd {
		// The end measures λ twice the rate of the other crashing commits.
		for i := range h.rate {
			if i != end {
				h.rate[i] /= 2
			}
		}
		h.infra[end] = 0.3
	}
	return h
}

type simResult struct {
	right, wrong, ambiguous, stopped int
	// identifiable: neither the culprit nor its parent is a build skip, so an exact answer
	// is possible; exact counts the right single culprits among them.
	identifiable, exact    int
	steps, loopHours, runs float64
	n                      int
}

func (r *simResult) add(o simResult) {
	r.right += o.right
	r.wrong += o.wrong
	r.ambiguous += o.ambiguous
	r.stopped += o.stopped
	r.identifiable += o.identifiable
	r.exact += o.exact
	r.steps += o.steps
	r.loopHours += o.loopHours
	r.runs += o.runs
	r.n += o.n
}

func (r simResult) String() string {
	n := float64(r.n)
	return fmt.Sprintf("%4d bisections  exact %5.1f%% of %3d identifiable  right %5.1f%%  wrong %4.1f%%  ambiguous %4.1f%%  stopped %4.1f%%  steps %5.1f  runs %6.1f  loop %7.1f h",
		r.n, 100*float64(r.exact)/float64(r.identifiable), r.identifiable, 100*float64(r.right)/n, 100*float64(r.wrong)/n, 100*float64(r.ambiguous)/n, 100*float64(r.stopped)/n, r.steps/n, r.runs/n, r.loopHours/n)
}

const runSeconds = 600 // the seed reproducer's 10-minute budget

// decider is a search strategy: the sequential State or the Posterior.
type decider interface {
	Next() Decision
	Add(Obs)
}

// simulate runs one bisection of h with the strategy in p (Commits filled in here).
func simulate(t testing.TB, rng *rand.Rand, h history, p Problem) simResult {
	return simulateWith(t, rng, h, p, false)
}

func simulateWith(t testing.TB, rng *rand.Rand, h history, p Problem, posterior bool) simResult {
	p.Commits = make([]Commit, h.n)
	for i := range p.Commits {
		p.Commits[i] = Commit{Hash: fmt.Sprintf("c%05d", i), Subject: fmt.Sprintf("commit %d", i)}
	}
	p.Fix = h.fix
	p.RunSeconds = runSeconds
	st, err := New(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var s decider = st
	if posterior {
		q, _ := NewPosterior(p, nil)
		s, st = q, q.State
	}
	var r simResult
	r.n = 1
	ident := !h.skip[h.culprit] && !h.skip[h.culprit-1]
	if ident {
		r.identifiable = 1
	}
	for guard := 0; ; guard++ {
		if guard > 1e6 {
			t.Fatalf("bisection does not end")
		}
		d := s.Next()
		switch d.Action {
		case Build:
			r.steps++
			o := Obs{Commit: d.Commit.Hash, IsBuild: true, BuildSeconds: 120}
			if h.skip[d.Index] {
				o.BuildFailed = "build failed"
			}
			s.Add(o)
		case Run:
			pr := trialsim.Process{RatePerHour: h.rate[d.Index], OtherRatePerHour: h.other[d.Index], InfraProb: h.infra[d.Index], BootSeconds: 20}
			out := pr.Trial(rng, d.Seconds)
			o := Obs{Commit: d.Commit.Hash, LoopSeconds: out.LoopSeconds}
			switch {
			case out.Crashed:
				o.Result = Crash
			case out.Other:
				o.Result, o.Title = Other, "WARNING in another_function"
			case out.Infra:
				o.Result = Infra
			}
			s.Add(o)
		case Stop:
			if testing.Verbose() {
				t.Logf("stopped: %v", d.Err)
			}
			r.stopped = 1
			return r
		case Done:
			a := d.Result
			r.loopHours, r.runs = a.LoopHours, float64(a.Runs)
			if a.Culprit != nil {
				i := st.index[a.Culprit.Hash]
				if h.skip[i] {
					t.Fatalf("culprit %s is a skipped commit", a.Culprit.Hash)
				}
				if i == h.culprit {
					r.right = 1
					if ident {
						r.exact = 1
					}
				} else {
					r.wrong = 1
					if testing.Verbose() {
						t.Logf("wrong: named %d, truth %d of %d (fix=%v)", i, h.culprit, h.n, h.fix)
						for _, st := range a.Steps {
							t.Logf("  %d %s crashes=%d clean=%.0fs rate=%.2f", st.Index, st.Verdict, st.Crashes, st.CleanSeconds, h.rate[st.Index])
						}
					}
				}
				return r
			}
			// No single culprit: the candidates must be skipped commits followed by one
			// tested commit, and contain the truth.
			verdicts := map[string]Verdict{}
			for _, st := range a.Steps {
				verdicts[st.Commit.Hash] = st.Verdict
			}
			found := false
			for j, c := range a.Candidates {
				i := st.index[c.Hash]
				found = found || i == h.culprit
				if j < len(a.Candidates)-1 && !h.skip[i] && verdicts[c.Hash] != Skip {
					t.Fatalf("ambiguous answer with a tested commit %s among the candidates", c.Hash)
				}
			}
			if !found {
				r.wrong = 1
				return r
			}
			r.ambiguous = 1
			return r
		}
	}
}

// withPosterior adds the probabilistic bisection to TestSimulation (a minute more):
// go test -v -run Simulation ./lab/bisect -args -posterior
var withPosterior = flag.Bool("posterior", false, "also simulate the probabilistic bisection (Posterior)")

// TestSimulation is the algorithm's truth: ≥ 500 bisections of synthetic histories at
// c = 0.99 find the right culprit ≥ 95% of the time (ambiguous answers over skipped
// culprits are right when they contain it, counted apart), beside the fixed 10 runs.
func TestSimulation(t *testing.T) {
	cases := loadCases(t)
	strategies := []struct {
		name      string
		p         Problem
		posterior bool
	}{
		{"sequential c=0.99", Problem{Confidence: 0.99}, false},
		{"fixed 10 runs", Problem{Fixed: 10}, false},
	}
	if *withPosterior {
		strategies = append(strategies, struct {
			name      string
			p         Problem
			posterior bool
		}{"posterior c=0.99", Problem{Confidence: 0.99}, true})
	}
	type key struct{ strategy, group string }
	byRate := map[key]*simResult{}
	totals := make([]simResult, len(strategies))
	var groups []string
	for si, st := range strategies {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, c := range cases {
			var cr simResult
			for rep := range c.reps {
				h := c.history(rng, rep)
				cr.add(simulateWith(t, rng, h, st.p, st.posterior))
			}
			totals[si].add(cr)
			g := fmt.Sprintf("λ=%g/h", c.rate)
			k := key{st.name, g}
			if byRate[k] == nil {
				byRate[k] = &simResult{}
				if si == 0 {
					groups = append(groups, g)
				}
			}
			byRate[k].add(cr)
			if testing.Verbose() {
				t.Logf("%-18s %-28s %s", st.name, c.name, cr)
			}
		}
	}
	for _, g := range groups {
		for _, st := range strategies {
			t.Logf("%-18s %-12s %s", st.name, g, byRate[key{st.name, g}])
		}
	}
	for si, st := range strategies {
		t.Logf("%-18s %-12s %s", st.name, "all", totals[si])
	}
	seq := totals[0]
	if seq.n < 500 {
		t.Fatalf("only %d simulated bisections, want ≥ 500", seq.n)
	}
	if acc := float64(seq.exact) / float64(seq.identifiable); acc < 0.95 {
		t.Errorf("sequential: right culprit in %.3f of identifiable histories, want ≥ 0.95", acc)
	}
	if acc := float64(seq.right+seq.ambiguous) / float64(seq.n); acc < 0.95 {
		t.Errorf("sequential: answer contains the culprit in %.3f, want ≥ 0.95", acc)
	}
	if seq.wrong > seq.n/100 {
		t.Errorf("sequential named a wrong culprit %d times in %d", seq.wrong, seq.n)
	}
}

// TestSkipOnlyRange: when every commit between the last good and the first bad is
// skipped, no culprit is named, only candidates.
func TestSkipOnlyRange(t *testing.T) {
	for _, fix := range []bool{false, true} {
		h := history{n: 8, culprit: 4, fix: fix, rate: make([]float64, 8), other: make([]float64, 8), infra: make([]float64, 8), skip: map[int]bool{}}
		for i := range 8 {
			if (i >= 4) != fix {
				h.rate[i] = 100
			}
		}
		for i := 1; i < 7; i++ {
			h.skip[i] = true
		}
		r := simulate(t, rand.New(rand.NewPCG(3, 4)), h, Problem{Confidence: 0.99})
		if r.ambiguous != 1 {
			t.Errorf("fix=%v: %+v, want an ambiguous answer", fix, r)
		}
	}
}

// BenchmarkBisect measures one sequential bisection of 1024 commits at λ = 50/h with
// skips and infra errors: the cost of replaying observations per decision, and the
// figures per bisection as metrics.
func BenchmarkBisect(b *testing.B) {
	c := simCase{n: 1024, rate: 50, skipFrac: 0.05, infra: 0.05, reps: 1}
	rng := rand.New(rand.NewPCG(5, 6))
	var tot simResult
	for i := 0; b.Loop(); i++ {
		tot.add(simulate(b, rng, c.history(rng, i+2), Problem{Confidence: 0.99}))
	}
	b.ReportMetric(float64(tot.right)/float64(tot.n), "right/op")
	b.ReportMetric(tot.steps/float64(tot.n), "steps/op")
	b.ReportMetric(tot.loopHours/float64(tot.n), "loop-h/op")
}

// TestResumeIsReplay: folding the same observations from scratch gives the same next
// decision as the state that saw them one by one.
func TestResumeIsReplay(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := simCase{n: 64, rate: 50, skipFrac: 0.1, infra: 0.1, other: 1, reps: 1}
	h := c.history(rng, 3)
	p := Problem{Confidence: 0.99, RunSeconds: runSeconds}
	for i := range h.n {
		p.Commits = append(p.Commits, Commit{Hash: fmt.Sprintf("c%05d", i)})
	}
	s, _ := New(p, nil)
	var obs []Obs
	for k := 0; k < 2000; k++ {
		d := s.Next()
		if d.Action == Done || d.Action == Stop {
			break
		}
		o := Obs{Commit: d.Commit.Hash, IsBuild: d.Action == Build}
		if d.Action == Run {
			out := trialsim.Process{RatePerHour: h.rate[d.Index], InfraProb: h.infra[d.Index]}.Trial(rng, d.Seconds)
			o.LoopSeconds = out.LoopSeconds
			o.Result = map[bool]Result{true: Crash, false: Clean}[out.Crashed]
			if out.Infra {
				o.Result = Infra
			}
		}
		obs = append(obs, o)
		s.Add(o)
		if k%37 == 0 {
			r, _ := New(p, obs)
			if a, b := s.Next(), r.Next(); a.Action != b.Action || a.Index != b.Index || math.Abs(a.Seconds-b.Seconds) > 1e-9 {
				t.Fatalf("after %d observations: live %+v, replayed %+v", len(obs), a, b)
			}
		}
	}
}
