package bisectrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/vcs"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

// fakeLab stands in for kbuild and QEMU so the driver's bookkeeping (store, resume, logs)
// is tested over many steps in milliseconds: a "kernel" built from a tree holding BUG
// crashes as a Poisson process at 120/h, others never. The real end-to-end bisection on
// the CI kernel is TestBisectCI in cmd/reprolab.
type fakeLab struct {
	mu        sync.Mutex
	dir       string
	rng       *rand.Rand
	runs      int
	builds    int
	cancelAt  int // cancel the context at this run (0: never)
	cancel    context.CancelFunc
	failBuild map[string]bool // commits whose build fails
}

func (f *fakeLab) build(ctx context.Context, s kbuild.Spec) (*kbuild.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds++
	head, err := exec.Command("git", "-C", s.Source.Dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return nil, err
	}
	h := strings.TrimSpace(string(head))
	if f.failBuild[h] {
		return nil, fmt.Errorf("make: *** [Makefile:1234: vmlinux] Error 2")
	}
	state := "clean"
	if _, err := os.Stat(filepath.Join(s.Source.Dir, "BUG")); err == nil {
		state = "bug"
	}
	for _, p := range s.Patches {
		if strings.Contains(filepath.Base(p), "revert-") {
			state = map[string]string{"bug": "clean", "clean": "bug"}[state] // the culprit undone
		}
	}
	img := filepath.Join(f.dir, fmt.Sprintf("bzImage-%s-%d", h[:12], len(s.Patches)))
	if err := os.WriteFile(img, []byte(state), 0o644); err != nil {
		return nil, err
	}
	return &kbuild.Result{Kernel: img, Key: fmt.Sprintf("%s-%d", h[:12], len(s.Patches)), Version: "6.1.0", Compiled: 3}, nil
}

func (f *fakeLab) run(ctx context.Context, c repro.Config) (*repro.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	now := time.Now()
	if f.cancelAt > 0 && f.runs == f.cancelAt {
		f.cancel()
		return &repro.Result{Outcome: repro.Interrupted, Started: now}, nil
	}
	data, err := os.ReadFile(c.Kernel)
	if err != nil {
		return nil, err
	}
	budget := c.Duration.Seconds()
	res := &repro.Result{Outcome: repro.Survived, LoopSeconds: budget, Started: now, Finished: now.Add(time.Second)}
	if string(data) == "bug" {
		if t := f.rng.ExpFloat64() / 120 * 3600; t < budget {
			res.Outcome, res.Reproduced, res.LoopSeconds, res.TimeToCrash = repro.Crashed, true, t, t
			res.Crashes = []repro.Crash{{Title: "sysrq: Trigger a crash", Type: "panic"}}
		}
	}
	return res, nil
}

type fixture struct {
	repo    *vcstest.Repo
	hashes  []string
	results string
	cache   string
	dsn     string
	repro   *spec.Reproducer
}

func newFixture(t *testing.T, n, bad int, fixAt int) *fixture {
	repo := vcstest.New(t, "")
	hs := repo.Linear(n, bad)
	if fixAt > 0 {
		for i := len(hs); i < fixAt; i++ {
			repo.Write(fmt.Sprintf("history/%03d.txt", i), "more\n")
			hs = append(hs, repo.Commit(fmt.Sprintf("history: commit %d", i)))
		}
		repo.Git("rm", "-q", "BUG")
		hs = append(hs, repo.Commit("history: fix BUG"))
		for i := 0; i < 3; i++ {
			repo.Write(fmt.Sprintf("after/%d.txt", i), "x\n")
			hs = append(hs, repo.Commit(fmt.Sprintf("history: after fix %d", i)))
		}
	}
	rs, err := spec.LoadReproducer("../../reproducers/ci-smoke/repro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	return &fixture{repo: repo, hashes: hs, results: filepath.Join(d, "results"), cache: filepath.Join(d, "cache"), dsn: filepath.Join(d, "results", "reprolab.db"), repro: rs}
}

func (fx *fixture) bisect(t *testing.T, ctx context.Context, lab *fakeLab, good, bad string, fix bool) (*Report, error) {
	t.Helper()
	g, err := vcs.Open(ctx, fx.repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, fx.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	x, err := Prepare(ctx, Options{Repo: g, Repro: fx.repro, Kernel: campaign.Kernel{Arch: "x86_64"}, Good: good, Bad: bad, Fix: fix,
		RunSeconds: 60, EndCrashes: 3, Name: "t", VerifyRevert: true})
	if err != nil {
		t.Fatal(err)
	}
	return x.Run(ctx, &campaign.Engine{Store: st, ResultsDir: fx.results, CacheDir: fx.cache, Build: lab.build, Run: lab.run})
}

// replayed is the first new commit `git bisect replay` reaches from the log.
func replayed(t *testing.T, repo *vcstest.Repo, log, term string) string {
	t.Helper()
	repo.Git("bisect", "reset")
	repo.Git("bisect", "replay", log)
	defer repo.Git("bisect", "reset")
	return repo.Git("rev-parse", "refs/bisect/"+term)
}

func TestBisectFake(t *testing.T) {
	for _, c := range []struct {
		name      string
		n, bad    int
		fixAt     int
		fail      []int
		fix       bool
		cancelAt  int
		wantRuns  bool
		wantIndex int
	}{
		{name: "cause", n: 16, bad: 9, wantIndex: 9},
		{name: "cause-first", n: 16, bad: 1, wantIndex: 1},
		{name: "cause-skips", n: 16, bad: 9, fail: []int{4, 10}, wantIndex: 9},
		{name: "cause-resume", n: 16, bad: 6, cancelAt: 9, wantIndex: 6},
		{name: "fix", n: 8, bad: 2, fixAt: 12, fix: true, wantIndex: 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, c.n, c.bad, c.fixAt)
			lab := &fakeLab{dir: t.TempDir(), rng: rand.New(rand.NewPCG(1, uint64(c.n))), failBuild: map[string]bool{}}
			for _, i := range c.fail {
				lab.failBuild[fx.hashes[i]] = true
			}
			good, bad := fx.hashes[0], fx.hashes[len(fx.hashes)-1]
			if c.fix {
				good, bad = bad, fx.hashes[c.bad]
			}
			ctx := context.Background()
			if c.cancelAt > 0 {
				cctx, cancel := context.WithCancel(ctx)
				lab.cancelAt, lab.cancel = c.cancelAt, cancel
				if _, err := fx.bisect(t, cctx, lab, good, bad, c.fix); err == nil {
					t.Fatalf("interrupted bisection returned no error")
				}
				lab.cancelAt = 0
			}
			rep, err := fx.bisect(t, ctx, lab, good, bad, c.fix)
			if err != nil {
				t.Fatalf("bisect: %v", err)
			}
			if rep.Culprit == nil || rep.Culprit.Hash != fx.hashes[c.wantIndex] {
				t.Fatalf("culprit %+v, want commit %d %s; steps %+v", rep.Culprit, c.wantIndex, fx.hashes[c.wantIndex], rep.Steps)
			}
			if rep.Answer.Confidence < 0.99 {
				t.Errorf("confidence %.4f < 0.99", rep.Answer.Confidence)
			}
			if rep.Revert == nil || rep.Revert.Verdict != map[bool]string{false: "clean", true: "crashes"}[c.fix] {
				t.Errorf("revert check %+v", rep.Revert)
			}
			dir := ResultsDir(fx.results, rep.Name)
			for _, f := range []string{"report.md", "report.json", "bisect.log", "culprit.txt"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("missing %s", f)
				}
			}
			term := map[bool]string{false: "bad", true: "fixed"}[c.fix]
			if got := replayed(t, fx.repo, filepath.Join(dir, "bisect.log"), term); got != rep.Culprit.Hash {
				t.Errorf("git bisect replay reaches %s, want %s", got, rep.Culprit.Hash)
			}
			// Run again: everything is in the store, nothing new runs, same answer.
			before := lab.runs
			again, err := fx.bisect(t, ctx, lab, good, bad, c.fix)
			if err != nil || again.Culprit == nil || again.Culprit.Hash != rep.Culprit.Hash {
				t.Fatalf("second invocation: %v, %+v", err, again)
			}
			// The revert check is not replayed from the store; the search is.
			if extra := lab.runs - before; extra > again.Revert.Runs {
				t.Errorf("second invocation ran %d trials beyond the revert check's %d", extra, again.Revert.Runs)
			}
		})
	}
}
