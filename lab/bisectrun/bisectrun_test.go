package bisectrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/reprolab/reprolab/lab/bisectrun/fakelab"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/vcs"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

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

func (fx *fixture) bisect(t *testing.T, ctx context.Context, lab *fakelab.Lab, good, bad string, fix bool) (*Report, error) {
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
	return x.Run(ctx, &campaign.Engine{Store: st, ResultsDir: fx.results, CacheDir: fx.cache, Build: lab.Build, Run: lab.Run})
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
			lab := fakelab.New(t.TempDir(), uint64(c.n))
			for _, i := range c.fail {
				lab.FailBuild[fx.hashes[i]] = true
			}
			good, bad := fx.hashes[0], fx.hashes[len(fx.hashes)-1]
			if c.fix {
				good, bad = bad, fx.hashes[c.bad]
			}
			ctx := context.Background()
			if c.cancelAt > 0 {
				cctx, cancel := context.WithCancel(ctx)
				lab.CancelAt, lab.Cancel = c.cancelAt, cancel
				if _, err := fx.bisect(t, cctx, lab, good, bad, c.fix); err == nil {
					t.Fatalf("interrupted bisection returned no error")
				}
				lab.CancelAt = 0
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
			before := lab.Runs
			again, err := fx.bisect(t, ctx, lab, good, bad, c.fix)
			if err != nil || again.Culprit == nil || again.Culprit.Hash != rep.Culprit.Hash {
				t.Fatalf("second invocation: %v, %+v", err, again)
			}
			if extra := lab.Runs - before; extra != 0 || again.Revert.Verdict != rep.Revert.Verdict {
				t.Errorf("second invocation ran %d trials (revert check %+v, first %+v)", extra, again.Revert, rep.Revert)
			}
		})
	}
}
