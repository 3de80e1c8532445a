package vcs

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/reprolab/reprolab/lab/fault"
)

// Verdict is what a predicate says about one commit.
type Verdict int

const (
	// Good: the commit does not have the property sought (for a cause bisection: no crash).
	Good Verdict = iota + 1
	// Bad: the commit has it. Bisect finds the first Bad commit after good.
	Bad
	// Skip: the commit cannot be judged (build failed, probe anchor missing, verdict
	// not reached). It is never taken as good or bad.
	Skip
)

func (v Verdict) String() string {
	switch v {
	case Good:
		return "good"
	case Bad:
		return "bad"
	case Skip:
		return "skip"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Predicate judges one commit. An error stops the bisection (an infrastructure failure
// is never a verdict: retry inside the predicate, or return Skip).
type Predicate func(Commit) (Verdict, error)

// Step is one judged commit, in the order judged.
type Step struct {
	Commit  Commit  `json:"commit"`
	Verdict Verdict `json:"verdict"`
}

// Result is the outcome of a bisection.
type Result struct {
	Good Commit `json:"good"`
	Bad  Commit `json:"bad"`
	// Culprit is the first bad commit, when the steps pin one down.
	Culprit *Commit `json:"culprit,omitempty"`
	// Candidates, when Culprit is nil, are the commits that skips left undecided, oldest
	// first: the first bad commit is one of them (the last is the first known bad).
	Candidates []Commit `json:"candidates,omitempty"`
	Steps      []Step   `json:"steps"`
	// Descended is true when the first-parent search found a merge and went on into the
	// merged branch; the bisect log then marks commits off the first-parent line.
	Descended bool `json:"descended,omitempty"`
}

// Bisect finds the first bad commit between good and bad by binary search along the
// first-parent line from good to bad (so a merged series is first judged as its merge).
// When that commit is a merge, it goes on into the merged branch, between the branch's
// fork point and its tip; if every commit there is good the merge itself is the culprit.
// A skipped commit is never judged good or bad: the search picks the nearest untested
// commit to the middle instead, and when only skipped commits remain between the last
// good and the first bad, the result lists them as Candidates.
//
// The endpoints are taken as given (good is good, bad is bad) and not judged: a caller
// that must verify them (a flaky crash) does so first. good and bad must be different
// commits and good an ancestor of bad; anything else is bad input.
func Bisect(ctx context.Context, h History, good, bad string, pred Predicate) (*Result, error) {
	gh, err := h.Resolve(ctx, good)
	if err != nil {
		return nil, err
	}
	bh, err := h.Resolve(ctx, bad)
	if err != nil {
		return nil, err
	}
	if gh == bh {
		return nil, fault.Inputf("bisect: good %s and bad %s are the same commit %s: give a good commit older than the bad one", good, bad, Short(gh))
	}
	anc, err := h.IsAncestor(ctx, gh, bh)
	if err != nil {
		return nil, err
	}
	if !anc {
		hint := ""
		if back, err := h.IsAncestor(ctx, bh, gh); err == nil && back {
			hint = " (it is the other way round: swap --good and --bad, or use a fix bisection)"
		}
		return nil, fault.Inputf("bisect: good %s (%s) is not an ancestor of bad %s (%s)%s", good, Short(gh), bad, Short(bh), hint)
	}
	b := &bisector{ctx: ctx, h: h, pred: pred, res: &Result{}}
	if b.res.Good, err = h.Info(ctx, gh); err != nil {
		return nil, err
	}
	if b.res.Bad, err = h.Info(ctx, bh); err != nil {
		return nil, err
	}
	line, err := h.Commits(ctx, gh, bh, true)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 || line[len(line)-1].Hash != bh {
		return nil, fault.Infraf("bisect: listing %s..%s did not end at %s", Short(gh), Short(bh), Short(bh))
	}
	c, amb, err := b.search(line[:len(line)-1], b.res.Bad)
	if err != nil {
		return b.res, err
	}
	// A merge: go on into each merged branch (its first-parent line from its tip back to
	// what the first parent already had), with the merge as the known-bad end.
	for len(amb) == 0 && len(c.Parents) > 1 {
		next := c
		for _, p := range c.Parents[1:] {
			side, serr := h.Commits(ctx, c.Parents[0], p, true)
			if serr != nil {
				return b.res, serr
			}
			if len(side) == 0 {
				continue
			}
			b.res.Descended = true
			if next, amb, err = b.search(side, c); err != nil || len(amb) > 0 {
				break
			}
			if next.Hash != c.Hash {
				break
			}
		}
		if err != nil {
			return b.res, err
		}
		if len(amb) > 0 || next.Hash == c.Hash {
			break // every merged commit is good: the merge itself broke it
		}
		c = next
	}
	if len(amb) > 0 {
		b.res.Candidates = amb
	} else {
		b.res.Culprit = &c
	}
	return b.res, nil
}

type bisector struct {
	ctx  context.Context
	h    History
	pred Predicate
	res  *Result
}

// search finds the first bad commit of cands followed by end, where everything before
// cands[0] is good and end is bad. With skips in the way it returns the undecided ones
// (and the first known bad) instead.
func (b *bisector) search(cands []Commit, end Commit) (Commit, []Commit, error) {
	lo, hi := -1, len(cands)
	skipped := map[int]bool{}
	at := func(i int) Commit {
		if i == len(cands) {
			return end
		}
		return cands[i]
	}
	for {
		m := -1
		mid := float64(lo+hi) / 2
		for i := lo + 1; i < hi; i++ {
			if skipped[i] {
				continue
			}
			if d, md := math.Abs(float64(i)-mid), math.Abs(float64(m)-mid); m < 0 || d < md {
				m = i
			}
		}
		if m < 0 {
			break
		}
		if err := b.ctx.Err(); err != nil {
			return Commit{}, nil, err
		}
		c := cands[m]
		if full, err := b.h.Info(b.ctx, c.Hash); err == nil {
			c = full // with its kernel version, for the predicate's compat choices
		}
		v, err := b.pred(c)
		if err != nil {
			return Commit{}, nil, fmt.Errorf("bisect step at %s: %w", c, err)
		}
		switch v {
		case Good:
			lo = m
		case Bad:
			hi = m
		case Skip:
			skipped[m] = true
		default:
			return Commit{}, nil, fault.Infraf("bisect step at %s: predicate returned %v", c, v)
		}
		b.res.Steps = append(b.res.Steps, Step{Commit: c, Verdict: v})
	}
	var amb []Commit
	for i := lo + 1; i < hi; i++ {
		if skipped[i] {
			amb = append(amb, cands[i])
		}
	}
	if len(amb) > 0 {
		return Commit{}, append(amb, at(hi)), nil
	}
	return at(hi), nil, nil
}

// Short is a commit hash as people write it: its first 12 digits.
func Short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Terms name the two states in a bisect log. The zero value is good/bad (a cause
// bisection); a fix bisection uses e.g. {Old: "broken", New: "fixed"}, and its predicate
// returns Good for the old state and Bad for the new one.
type Terms struct{ Old, New string }

func (t Terms) norm() Terms {
	if t.Old == "" || t.New == "" {
		return Terms{Old: "good", New: "bad"}
	}
	return t
}

// WriteLog writes r as a `git bisect log`, which `git bisect replay` accepts: the start
// (with --first-parent when the search stayed on that line), the endpoints, every step
// and the result as a comment.
func WriteLog(w io.Writer, r *Result, terms Terms) error {
	t := terms.norm()
	var sb strings.Builder
	args := []string{}
	if !r.Descended {
		args = append(args, "'--first-parent'")
	}
	if t.Old != "good" || t.New != "bad" {
		args = append(args, "'--term-old="+t.Old+"'", "'--term-new="+t.New+"'")
	}
	fmt.Fprintf(&sb, "git bisect start %s\n", strings.Join(args, " "))
	mark := func(term string, c Commit) {
		fmt.Fprintf(&sb, "# %s: [%s] %s\ngit bisect %s %s\n", term, c.Hash, oneLine(c.Subject), term, c.Hash)
	}
	mark(t.New, r.Bad)
	mark(t.Old, r.Good)
	for _, s := range r.Steps {
		term := map[Verdict]string{Good: t.Old, Bad: t.New, Skip: "skip"}[s.Verdict]
		mark(term, s.Commit)
	}
	switch {
	case r.Culprit != nil:
		fmt.Fprintf(&sb, "# first %s commit: [%s] %s\n", t.New, r.Culprit.Hash, oneLine(r.Culprit.Subject))
	case len(r.Candidates) > 0:
		fmt.Fprintf(&sb, "# only skipped commits left to test; the first %s commit is one of:\n", t.New)
		for _, c := range r.Candidates {
			fmt.Fprintf(&sb, "# possible first %s commit: [%s] %s\n", t.New, c.Hash, oneLine(c.Subject))
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
