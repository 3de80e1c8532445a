package vcs_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/vcs"
)

// line is a linear synthetic history in memory: what a simulation of thousands of
// bisections gives Bisect instead of a git repository (the History interface).
type line []vcs.Commit

func newLine(n int) line {
	l := make(line, n)
	for i := range l {
		l[i] = vcs.Commit{Hash: fmt.Sprintf("%040d", i), Subject: "commit " + strconv.Itoa(i)}
		if i > 0 {
			l[i].Parents = []string{l[i-1].Hash}
		}
	}
	return l
}

func (l line) index(rev string) (int, error) {
	i, err := strconv.Atoi(rev)
	if err != nil || i < 0 || i >= len(l) {
		return 0, fault.Inputf("unknown revision %q", rev)
	}
	return i, nil
}

func (l line) Resolve(_ context.Context, rev string) (string, error) {
	i, err := l.index(rev)
	if err != nil {
		return "", err
	}
	return l[i].Hash, nil
}

func (l line) Commits(_ context.Context, from, to string, _ bool) ([]vcs.Commit, error) {
	f, err := l.index(from)
	if err != nil {
		return nil, err
	}
	t, err := l.index(to)
	if err != nil {
		return nil, err
	}
	return l[f+1 : t+1], nil
}

func (l line) IsAncestor(_ context.Context, a, b string) (bool, error) {
	i, err := l.index(a)
	if err != nil {
		return false, err
	}
	j, err := l.index(b)
	return i <= j, err
}

func (l line) Info(_ context.Context, rev string) (vcs.Commit, error) {
	i, err := l.index(rev)
	if err != nil {
		return vcs.Commit{}, err
	}
	return l[i], nil
}

// Over a 4096-commit history every culprit position is found in at most 12 steps; every
// third commit skipped still finds it or names a range that holds it.
func TestBisectFakeHistory(t *testing.T) {
	ctx := context.Background()
	l := newLine(4096)
	for _, skipEvery := range []int{0, 3} {
		for culprit := 1; culprit < len(l); culprit += 37 {
			res, err := vcs.Bisect(ctx, l, l[0].Hash, l[len(l)-1].Hash, func(c vcs.Commit) (vcs.Verdict, error) {
				i, _ := l.index(c.Hash)
				switch {
				case skipEvery > 0 && i%skipEvery == 0:
					return vcs.Skip, nil
				case i >= culprit:
					return vcs.Bad, nil
				}
				return vcs.Good, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case res.Culprit != nil:
				if res.Culprit.Hash != l[culprit].Hash {
					t.Fatalf("skip %d culprit %d: named %s", skipEvery, culprit, res.Culprit.Subject)
				}
				if skipEvery == 0 && len(res.Steps) > 12 {
					t.Errorf("culprit %d: %d steps", culprit, len(res.Steps))
				}
			default:
				found := false
				for _, c := range res.Candidates {
					found = found || c.Hash == l[culprit].Hash
				}
				if !found || skipEvery == 0 {
					t.Fatalf("skip %d culprit %d: candidates %v", skipEvery, culprit, res.Candidates)
				}
			}
		}
	}
}

// BenchmarkBisectDriver is the driver's own cost per bisection of 4096 commits (the
// predicate is free): what a simulation of thousands of bisections pays besides its model.
func BenchmarkBisectDriver(b *testing.B) {
	ctx := context.Background()
	l := newLine(4096)
	for i := 0; i < b.N; i++ {
		culprit := 1 + i%(len(l)-1)
		if _, err := vcs.Bisect(ctx, l, l[0].Hash, l[len(l)-1].Hash, func(c vcs.Commit) (vcs.Verdict, error) {
			if j, _ := l.index(c.Hash); j >= culprit {
				return vcs.Bad, nil
			}
			return vcs.Good, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
