package validate

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/trialsim"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

// These tests drive the whole validation (store, engine, scheduling, resume, reports)
// with lab/kbuild and lab/repro faked by Poisson kernels: they are about what the driver
// records and decides. The real kernels and guests run in TestCIValidate.

const seedTitle = "BUG: unable to handle kernel NULL pointer dereference in test_clear_page_writeback"

// fakeLab is a store-backed engine whose builds return at once and whose trials draw
// from a Poisson process per kernel (by the build's name: baseline or candidate).
type fakeLab struct {
	e      *campaign.Engine
	mu     sync.Mutex
	rng    *rand.Rand
	procs  map[string]trialsim.Process
	trials atomic.Int32
	// onTrial, when set, runs before each trial (the resume test cancels from it).
	onTrial func(n int) bool // false: report the trial as interrupted
	builds  []kbuild.Spec
}

func newFakeLab(t *testing.T, base, cand trialsim.Process) *fakeLab {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l := &fakeLab{rng: rand.New(rand.NewPCG(1, 2)), procs: map[string]trialsim.Process{"baseline": base, "candidate": cand}}
	l.e = &campaign.Engine{Store: st, ResultsDir: filepath.Join(dir, "results"), CacheDir: filepath.Join(dir, "cache"), Progress: &strings.Builder{}}
	l.e.Build = func(_ context.Context, s kbuild.Spec) (*kbuild.Result, error) {
		l.mu.Lock()
		l.builds = append(l.builds, s)
		l.mu.Unlock()
		for _, p := range s.Patches {
			if strings.HasSuffix(p, "other-tree.patch") {
				return nil, &patch.Error{Patch: p, File: "include/linux/memcontrol.h", Hunk: "@@ -599,6 +599,7 @@", Msg: "does not apply: first mismatch at line 599"}
			}
		}
		if s.Name == "baseline" && strings.Contains(s.Source.Dir, "broken") {
			return nil, os.ErrInvalid
		}
		return &kbuild.Result{Kernel: "/k/" + s.Name + "-" + s.Arch, Key: s.Name + s.Arch, Version: "4.11.0", Compiled: 3}, nil
	}
	l.e.Run = func(ctx context.Context, cfg repro.Config) (*repro.Result, error) {
		n := int(l.trials.Add(1))
		t0 := time.Now()
		res := &repro.Result{RunID: cfg.RunID, Started: t0, Finished: t0.Add(time.Second), Host: "h"}
		if l.onTrial != nil && !l.onTrial(n) {
			res.Outcome = repro.Interrupted
			return res, nil
		}
		name := strings.TrimPrefix(filepath.Base(cfg.Kernel), "")
		side, _, _ := strings.Cut(name, "-")
		l.mu.Lock()
		o := l.procs[side].Trial(l.rng, cfg.Duration.Seconds())
		l.mu.Unlock()
		res.LoopSeconds, res.Iterations = o.LoopSeconds, 3
		switch {
		case o.Infra:
			res.Outcome, res.Error = repro.InfraError, "qemu died"
		case o.Crashed:
			res.Outcome, res.CrashedIter, res.Reproduced, res.TimeToCrash = repro.Crashed, 2, true, o.LoopSeconds
			res.Crashes = []repro.Crash{{Title: seedTitle, Type: "bug", Signature: "sig-seed"}}
		case o.Other:
			res.Outcome, res.CrashedIter = repro.Crashed, 2
			res.Crashes = []repro.Crash{{Title: "kernel BUG at mm/memcontrol.c:600!", Type: "bug", Signature: "sig-other"}}
		default:
			res.Outcome = repro.Survived
		}
		os.MkdirAll(filepath.Join(cfg.ResultsDir, cfg.RunID), 0o755)
		return res, nil
	}
	return l
}

func (l *fakeLab) options(t *testing.T, p Params) Options {
	return Options{
		Name: "t", Engine: l.e, Arches: []string{"x86_64", "arm64"}, Jobs: 2,
		Repro:   &spec.Reproducer{Name: "memcg-writeback-null", Expect: spec.Expect{Titles: []string{"in test_clear_page_writeback"}}, Path: "repro.yaml"},
		Kernel:  campaign.Kernel{Source: &source.Source{Dir: "/src/linux"}, Fragments: []string{"base", "memcg"}, Probes: []string{"probes/seed.yaml"}},
		Patches: []string{"testdata/fix.patch"}, Cmdline: []string{"reprolab.delay_memcg=100"}, Params: p, TrialDuration: 10 * time.Minute,
	}
}

func TestRun(t *testing.T) {
	seed := trialsim.Process{RatePerHour: 240}
	for _, tc := range []struct {
		name       string
		base, cand trialsim.Process
		p          Params
		want       Verdict
		exit       int
		reply      string
	}{
		{"fix", seed, trialsim.Process{}, Params{Confidence: 0.99}, Fixed, 0, "Tested-by: "},
		{"no-op", seed, seed, Params{Confidence: 0.99}, NotFixed, 1, "not fixed"},
		{"fix with a flaky lab", trialsim.Process{RatePerHour: 240, InfraProb: 0.5}, trialsim.Process{InfraProb: 0.5}, Params{Confidence: 0.99, MaxInfraInARow: 10}, Fixed, 0, "without a crash: fixed with "},
		{"probe does not discriminate", trialsim.Process{}, trialsim.Process{}, Params{Confidence: 0.99, Budget: time.Hour}, Inconclusive, 7, "baseline does not reproduce"},
		{"changed", seed, trialsim.Process{OtherRatePerHour: 240}, Params{Confidence: 0.99}, Changed, 6, "crashed differently: kernel BUG at mm/memcontrol.c:600!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newFakeLab(t, tc.base, tc.cand)
			rep, err := Run(context.Background(), l.options(t, tc.p))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != tc.want || rep.ExitCode != tc.exit {
				t.Fatalf("verdict %q exit %d, want %q %d; arches %+v", rep.Verdict, rep.ExitCode, tc.want, tc.exit, rep.Arches[0])
			}
			dir := ReportDir(l.e.ResultsDir, "t")
			if err := rep.Write(dir); err != nil {
				t.Fatal(err)
			}
			reply, _ := os.ReadFile(filepath.Join(dir, "reply.txt"))
			if !strings.Contains(string(reply), tc.reply) || !strings.Contains(string(reply), "x86_64 and arm64") || !strings.Contains(string(reply), "reprolab.delay_memcg=100") {
				t.Errorf("reply.txt:\n%s", reply)
			}
			runs, _ := l.e.Runs(context.Background(), "validate-t")
			groups := map[string]int{}
			infra, retried := 0, 0
			for _, r := range runs {
				groups[r.Group]++
				if !r.Evidence() {
					infra++
				}
				if r.Attempt > 1 {
					retried++
				}
			}
			var reported int
			for _, a := range rep.Arches {
				reported += a.Baseline.InfraErrors + a.Candidate.InfraErrors
				if a.Baseline.Runs == 0 || groups["baseline/"+a.Arch] < a.Baseline.Runs {
					t.Errorf("%s: %d baseline runs reported, %d recorded", a.Arch, a.Baseline.Runs, groups["baseline/"+a.Arch])
				}
			}
			if infra > 0 && (retried == 0 || reported == 0) {
				t.Errorf("%d infra errors recorded, %d retried, %d reported", infra, retried, reported)
			}
			if tc.base.InfraProb > 0 && infra == 0 {
				t.Error("no infra error was simulated")
			}
			t.Logf("%s: %s; %d runs recorded (%d infra errors, %d retries)", tc.name, rep.Arches[0].Reason, len(runs), infra, retried)
		})
	}
}

// A validation stopped midway (Ctrl-C) keeps its finished trials; run again it resumes
// from them and reaches the same kind of verdict without redoing them.
func TestResume(t *testing.T) {
	l := newFakeLab(t, trialsim.Process{RatePerHour: 240}, trialsim.Process{})
	ctx, cancel := context.WithCancel(context.Background())
	l.onTrial = func(n int) bool {
		if n >= 12 {
			cancel()
			return false
		}
		return true
	}
	rep, err := Run(ctx, l.options(t, Params{Confidence: 0.99}))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted {
		t.Fatalf("not interrupted: %+v", rep)
	}
	before, _ := l.e.Runs(context.Background(), "validate-t")
	if len(before) == 0 || len(before) >= 12 {
		t.Fatalf("%d runs kept after the interruption", len(before))
	}
	l.onTrial = nil
	rep, err = Run(context.Background(), l.options(t, Params{Confidence: 0.99}))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := l.e.Runs(context.Background(), "validate-t")
	if rep.Verdict != Fixed || len(after) <= len(before) {
		t.Fatalf("resumed: %q with %d runs (had %d)", rep.Verdict, len(after), len(before))
	}
	// Resuming with another patch under the same name is refused: the runs kept are
	// evidence about the other candidate.
	o := l.options(t, Params{Confidence: 0.99})
	o.Patches = []string{"testdata/ci-noop.patch"}
	if _, err := Run(context.Background(), o); !fault.IsInput(err) || !strings.Contains(err.Error(), "made with other inputs") {
		t.Errorf("resume with another patch: %v", err)
	}
	runs := 0
	for _, a := range rep.Arches {
		runs += a.Baseline.Runs + a.Baseline.InfraErrors + a.Candidate.Runs + a.Candidate.InfraErrors
	}
	if runs < len(after)-2*len(rep.Arches) { // trials cancelled at a verdict are discarded
		t.Errorf("report counts %d runs, the store has %d: kept runs were not replayed", runs, len(after))
	}
}

// Bad input is refused before anything runs, and nothing is written.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no patch", func(o *Options) { o.Patches = nil }, "no patch to validate"},
		{"not a patch", func(o *Options) { o.Patches = []string{"testdata/prose.txt"} }, "no diff found"},
		{"missing patch", func(o *Options) { o.Patches = []string{"testdata/nope.patch"} }, "nope.patch"},
		{"patch for another tree", func(o *Options) { o.Patches = []string{"testdata/other-tree.patch"} }, "include/linux/memcontrol.h: hunk @@ -599,6 +599,7 @@: does not apply"},
		{"baseline does not build", func(o *Options) { o.Kernel.Source = &source.Source{Dir: "/src/broken"} }, "the baseline (source + probes) does not build"},
		{"unknown arch", func(o *Options) { o.Arches = []string{"x86_64", "riscv"} }, `--arch "riscv": unknown arch`},
		{"confidence 1", func(o *Options) { o.Params.Confidence = 1 }, "strictly between 0 and 1"},
		{"confidence 0", func(o *Options) { o.Params.Confidence = 0 }, "strictly between 0 and 1"},
		{"budget below two trials", func(o *Options) { o.Params.Budget = time.Minute }, "each arch needs at least two trials"},
		{"budget too small for the rate", func(o *Options) { o.Params.Budget, o.RateHint = 2*time.Hour, 0.5 }, "about 48.00 h of looping per arch is needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newFakeLab(t, trialsim.Process{RatePerHour: 240}, trialsim.Process{})
			if tc.name == "patch for another tree" {
				os.WriteFile("testdata/other-tree.patch", mustRead(t, "testdata/fix.patch"), 0o644)
				defer os.Remove("testdata/other-tree.patch")
			}
			o := l.options(t, Params{Confidence: 0.99})
			tc.change(&o)
			rep, err := Run(context.Background(), o)
			if !fault.IsInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (report %v), want bad input saying %q", err, rep, tc.want)
			}
			if n := l.trials.Load(); n != 0 {
				t.Errorf("%d trials ran", n)
			}
			if _, err := os.Stat(ReportDir(l.e.ResultsDir, "t")); err == nil {
				t.Error("a report folder was written")
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The reply names a git source's commit the kernel way: 12 digits and the subject.
func TestReplyNamesCommit(t *testing.T) {
	r := vcstest.New(t, "")
	r.Write("Makefile", "VERSION = 4\nPATCHLEVEL = 11\nSUBLEVEL = 0\n")
	hash := r.Commit("Linux 4.11")
	l := newFakeLab(t, trialsim.Process{RatePerHour: 240}, trialsim.Process{})
	o := l.options(t, Params{Confidence: 0.99})
	o.Kernel.Source = &source.Source{Git: r.Dir, Ref: "main"}
	rep := o.report(map[string]*archRun{"x86_64": {arch: "x86_64", d: NewDecision(o.Params)}, "arm64": {arch: "arm64", d: NewDecision(o.Params)}}, false)
	want := hash[:12] + ` ("Linux 4.11")`
	if rep.Kernel.Commit != want || !strings.Contains(rep.Reply(), "commit "+want) {
		t.Errorf("commit %q, want %q; reply:\n%s", rep.Kernel.Commit, want, rep.Reply())
	}
}
