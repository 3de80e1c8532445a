package vcs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/vcs"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

// hasBug is the predicate of these tests: a commit is bad when it has the file BUG.
func hasBug(t *testing.T, g *vcs.Git, skip map[string]bool, calls map[string]int) vcs.Predicate {
	return func(c vcs.Commit) (vcs.Verdict, error) {
		calls[c.Hash]++
		if skip[c.Hash] {
			return vcs.Skip, nil
		}
		_, err := g.Show(context.Background(), c.Hash, "BUG")
		switch {
		case err == nil:
			return vcs.Bad, nil
		case errors.Is(err, os.ErrNotExist):
			return vcs.Good, nil
		}
		return 0, err
	}
}

func TestBisectLinear(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		n, bad  int   // commits after the import; index of the first bad one
		skip    []int // indices the predicate skips
		culprit int   // -1: ambiguous
		cands   []int // the ambiguous range
	}{
		{"middle", 16, 8, nil, 8, nil},
		{"first", 16, 0, nil, 0, nil},
		{"last", 16, 15, nil, 15, nil},
		{"two commits", 2, 1, nil, 1, nil},
		{"one commit", 1, 0, nil, 0, nil},
		{"skip away from culprit", 16, 8, []int{3, 12}, 8, nil},
		{"skip next to culprit", 16, 8, []int{7}, -1, []int{7, 8}},
		{"skipped culprit", 16, 8, []int{8}, -1, []int{8, 9}},
		{"skip run", 16, 8, []int{6, 7, 8, 9}, -1, []int{6, 7, 8, 9, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := vcstest.New(t, "")
			r.Write("README", "x\n")
			base := r.Commit("import")
			hs := r.Linear(tc.n, tc.bad)
			g, _ := vcs.Open(ctx, r.Dir)
			skip := map[string]bool{}
			for _, i := range tc.skip {
				skip[hs[i]] = true
			}
			calls := map[string]int{}
			res, err := vcs.Bisect(ctx, g, base, hs[len(hs)-1], hasBug(t, g, skip, calls))
			if err != nil {
				t.Fatal(err)
			}
			for h, n := range calls {
				if n > 1 || h == base || h == hs[len(hs)-1] {
					t.Errorf("%s judged %d times (endpoints are not judged)", h[:8], n)
				}
			}
			if tc.culprit >= 0 {
				if res.Culprit == nil || res.Culprit.Hash != hs[tc.culprit] {
					t.Fatalf("culprit %v, want %s (candidates %v)", res.Culprit, hs[tc.culprit][:12], res.Candidates)
				}
				if len(res.Steps) > log2ceil(tc.n)+len(tc.skip) {
					t.Errorf("%d steps for %d commits", len(res.Steps), tc.n)
				}
			} else {
				var want []string
				for _, i := range tc.cands {
					want = append(want, hs[i])
				}
				if res.Culprit != nil || strings.Join(hashes(res.Candidates), " ") != strings.Join(want, " ") {
					t.Fatalf("culprit %v candidates %v, want candidates %v", res.Culprit, hashes(res.Candidates), want)
				}
			}
			replay(t, r, res, vcs.Terms{}, "bad")
		})
	}
}

// A bug that came in on a merged branch: first-parent search names the merge, then the
// search goes on into the branch and names the commit. A merge whose branch is all good
// (an interaction) is the culprit itself.
func TestBisectMerge(t *testing.T) {
	ctx := context.Background()
	for _, interaction := range []bool{false, true} {
		r := vcstest.New(t, "")
		r.Write("README", "x\n")
		base := r.Commit("import")
		r.Linear(3, -1)
		fork := r.Git("rev-parse", "HEAD")
		r.Checkout(fork, "side")
		var side []string
		for i := 0; i < 6; i++ {
			r.Write("side/"+string(rune('a'+i)), "s\n")
			if i == 4 && !interaction {
				r.Write("BUG", "from side\n")
			}
			side = append(side, r.Commit("side "+string(rune('a'+i))))
		}
		r.Checkout("main", "")
		r.Write("main-after-fork", "m\n")
		r.Commit("main after fork")
		if interaction {
			r.Write("BUG", "only together\n")
		}
		r.Git("merge", "-q", "--no-ff", "--no-commit", "side")
		merge := r.Commit("Merge branch side")
		r.Linear(4, -1)
		g, _ := vcs.Open(ctx, r.Dir)
		res, err := vcs.Bisect(ctx, g, base, "HEAD", hasBug(t, g, nil, map[string]int{}))
		if err != nil {
			t.Fatal(err)
		}
		want := side[4]
		if interaction {
			want = merge
		}
		if res.Culprit == nil || res.Culprit.Hash != want || !res.Descended {
			t.Fatalf("interaction=%v: culprit %v descended %v, want %s", interaction, res.Culprit, res.Descended, want[:12])
		}
		replay(t, r, res, vcs.Terms{}, "bad")
	}
}

// A fix bisection: old = broken (has BUG), new = fixed; the log uses those terms.
func TestBisectFixTerms(t *testing.T) {
	ctx := context.Background()
	r := vcstest.New(t, "")
	r.Write("BUG", "x\n")
	base := r.Commit("import with bug")
	r.Linear(6, -1)
	r.Git("rm", "-q", "BUG")
	fix := r.Commit("fix the bug")
	r.Linear(5, -1)
	g, _ := vcs.Open(ctx, r.Dir)
	bug := hasBug(t, g, nil, map[string]int{})
	res, err := vcs.Bisect(ctx, g, base, "HEAD", func(c vcs.Commit) (vcs.Verdict, error) {
		v, err := bug(c)
		if v == vcs.Bad { // still broken: the old state
			return vcs.Good, err
		}
		return vcs.Bad, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Culprit == nil || res.Culprit.Hash != fix {
		t.Fatalf("fix %v, want %s", res.Culprit, fix[:12])
	}
	replay(t, r, res, vcs.Terms{Old: "broken", New: "fixed"}, "fixed")
}

// replay feeds WriteLog's output to `git bisect replay` in a clone and checks that git
// reaches the same answer.
func replay(t *testing.T, r *vcstest.Repo, res *vcs.Result, terms vcs.Terms, newTerm string) {
	t.Helper()
	var log bytes.Buffer
	if err := vcs.WriteLog(&log, res, terms); err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", r.Dir, clone).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v %s", err, out)
	}
	lf := filepath.Join(t.TempDir(), "bisect.log")
	os.WriteFile(lf, log.Bytes(), 0o644)
	cmd := exec.Command("git", "bisect", "replay", lf)
	cmd.Dir = clone
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	// With only skipped commits left git says so and exits 2 ("We cannot bisect more!").
	if err != nil && (res.Culprit != nil || !strings.Contains(string(out), "cannot bisect more")) {
		t.Fatalf("git bisect replay: %v\n%s\nlog:\n%s", err, out, log.String())
	}
	switch {
	case res.Culprit != nil:
		if want := res.Culprit.Hash + " is the first " + newTerm + " commit"; !strings.Contains(string(out), want) {
			t.Errorf("git bisect replay does not agree (want %q):\n%s\nlog:\n%s", want, out, log.String())
		}
	default:
		if !strings.Contains(string(out), "only 'skip'ped commits left") {
			t.Errorf("git bisect replay does not see the skipped range:\n%s\nlog:\n%s", out, log.String())
		}
		for _, c := range res.Candidates {
			if !strings.Contains(string(out), c.Hash) {
				t.Errorf("git's candidates lack %s:\n%s", c.Short(), out)
			}
		}
	}
}

func log2ceil(n int) int {
	k := 0
	for 1<<k < n {
		k++
	}
	return k
}
