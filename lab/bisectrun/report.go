package bisectrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/bisect"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/vcs"
)

// Write puts report.md, report.json, bisect.log (for `git bisect replay`) and, with a
// culprit, culprit.txt (`git show --stat`) into dir, each replaced atomically.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md bytes.Buffer
	r.Markdown(&md)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{"report.md": md.Bytes(), "report.json": append(js, '\n')}
	if r.log != nil {
		var lb bytes.Buffer
		if err := vcs.WriteLog(&lb, r.log, r.terms); err != nil {
			return err
		}
		files["bisect.log"] = lb.Bytes()
	}
	if r.Culprit != nil {
		out, err := exec.Command("git", "-C", r.Repo, "show", "--stat", "--format=fuller", "--no-color", r.Culprit.Hash).Output()
		if err != nil {
			return fmt.Errorf("git show %s: %v", r.Culprit.Short(), err)
		}
		files["culprit.txt"] = out
	}
	for name, data := range files {
		if err := atomicfile.Write(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Markdown is the human report: the answer with its confidence, then the per-step table.
func (r *Report) Markdown(w io.Writer) {
	kind := "cause"
	if r.Fix {
		kind = "fix"
	}
	fmt.Fprintf(w, "# Bisection %s (%s)\n\n", r.Name, kind)
	fmt.Fprintf(w, "Reproducer `%s` on %s, %s: good `%s` %s, bad `%s` %s, %d commits.\n\n", r.Repro, r.Arch, r.Repo,
		r.Good.Short(), r.Good.Subject, r.Bad.Short(), r.Bad.Subject, r.Commits)
	switch {
	case r.Stopped != "":
		fmt.Fprintf(w, "**Stopped:** %s\n\n", r.Stopped)
	case r.Culprit != nil:
		what := "first bad commit"
		if r.Fix {
			what = "first fixed commit"
		}
		fmt.Fprintf(w, "**%s: `%s` %s** (%s, %s)\n\n", what, r.Culprit.Short(), r.Culprit.Subject, r.Culprit.Author, r.Culprit.Date.Format("2006-01-02"))
	case r.Answer != nil:
		fmt.Fprintf(w, "**No single culprit:** skipped commits leave %d candidates:\n\n", len(r.Candidates))
		for _, c := range r.Candidates {
			fmt.Fprintf(w, "- `%s` %s\n", c.Short(), c.Subject)
		}
		fmt.Fprintln(w)
	}
	if a := r.Answer; a != nil {
		if !math.IsNaN(a.Confidence) {
			fmt.Fprintf(w, "Confidence %.4f (target %.2f): the product over clean verdicts of 1 − exp(−λ_low·t).\n", a.Confidence, r.Target)
		}
		fmt.Fprintf(w, "λ = %.2f/h at the crashing commits (95%% interval %.2f–%.2f/h); a clean verdict took %.1f min of clean looping. %d runs, %.2f h of looping.\n\n",
			a.Rate, a.RateLow, a.RateHigh, a.StepHours*60, a.Runs, a.LoopHours)
	}
	if rc := r.Revert; rc != nil {
		fmt.Fprintf(w, "Revert check: the crashing end with `%s` reverted: **%s** (%d runs, %.1f min)%s\n\n", r.Culprit.Short(), rc.Verdict, rc.Runs, rc.LoopMinutes, errNote(rc.Error))
	}
	fmt.Fprintln(w, "| # | commit | subject | verdict | runs | loop min | crashes | other | build min | confidence |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for i, s := range r.Steps {
		v := s.Verdict
		if v == "" {
			v = "pending"
		}
		if s.Reason != "" {
			v += " (" + strings.ReplaceAll(firstLine(s.Reason), "|", "/") + ")"
		}
		conf := ""
		if s.Confidence > 0 {
			conf = fmt.Sprintf("%.4f", s.Confidence)
		}
		runs := fmt.Sprint(s.Runs)
		if s.InfraErrors > 0 {
			runs += fmt.Sprintf(" (%d infra)", s.InfraErrors)
		}
		fmt.Fprintf(w, "| %d | `%.12s` | %s | %s | %s | %.1f | %d | %d | %.1f | %s |\n", i+1, s.Commit, strings.ReplaceAll(s.Subject, "|", "/"), v, runs, s.LoopMinutes, s.Crashes, s.Other, s.BuildMinutes, conf)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return " — " + firstLine(e)
}

// verifyRevert builds the crashing end with the culprit reverted and loops it: a cause
// must stay clean for T (as its parent did); a fix reverted must crash again.
func (b *bisection) verifyRevert(ctx context.Context, st *bisect.State, rep *Report) *RevertCheck {
	end := b.commits[len(b.commits)-1] // cause: the bad end; fix: the fixed end
	rc := &RevertCheck{Commit: end.Hash}
	patch, err := b.o.Repo.ReversePatch(ctx, rep.Culprit.Hash)
	if err != nil {
		rc.Verdict, rc.Error = "not checked", err.Error()
		return rc
	}
	pdir := filepath.Join(b.o.Engine.ResultsDir, b.id)
	pfile := filepath.Join(pdir, "revert-"+rep.Culprit.Short()+".patch")
	if err := os.MkdirAll(pdir, 0o755); err == nil {
		err = atomicfile.Write(pfile, patch, 0o644)
	}
	unlock, err := LockTree(ctx, b.o.TreeDir, b.out)
	if err != nil {
		rc.Verdict, rc.Error = "not checked", err.Error()
		return rc
	}
	if _, err := b.o.Repo.Checkout(ctx, b.o.TreeDir, end.Hash, b.o.Exclude); err != nil {
		unlock()
		rc.Verdict, rc.Error = "not checked", err.Error()
		return rc
	}
	k := b.kernel(end.Hash)
	k.Patches = append(append([]string{}, k.Patches...), pfile)
	k.Key += "_revert"
	k.Name = "revert-" + rep.Culprit.Hash
	bl, err := b.o.Engine.Kernel(ctx, b.id, k)
	unlock()
	if err == nil && bl.Failed != nil {
		err = bl.Failed
	}
	if err != nil {
		rc.Verdict, rc.Error = "not checked", err.Error()
		return rc
	}
	group := "revert-" + rep.Culprit.Hash
	need := st.StepHours() * 3600
	maxEnd := b.prob.MaxEndSeconds
	if maxEnd <= 0 {
		maxEnd = 50 * b.prob.RunSeconds // lab/bisect's default for the crashing end
	}
	clean := 0.0
	// Runs of an earlier invocation count (the check resumes like the search).
	for _, r := range b.stored {
		if r.Group != group {
			continue
		}
		rc.Runs++
		rc.LoopMinutes += r.LoopSeconds / 60
		switch result(r) {
		case bisect.Crash:
			rc.Verdict = "crashes"
			return rc
		case bisect.Clean, bisect.Other:
			clean += r.LoopSeconds
		}
	}
	for ctx.Err() == nil {
		if (!b.o.Fix && clean >= need) || (b.o.Fix && rc.LoopMinutes*60 >= maxEnd) {
			rc.Verdict = "clean"
			return rc
		}
		b.runs[group]++
		secs := b.prob.RunSeconds
		if !b.o.Fix {
			secs = max(min(secs, need-clean), 10)
		}
		r, err := b.o.Engine.Trial(ctx, b.id, campaign.Trial{ID: fmt.Sprintf("revert-%s-r%d", rep.Culprit.Short(), b.runs[group]), Group: group, Attempt: 1,
			Build: bl, Repro: b.o.Repro, Cmdline: b.o.Cmdline, Duration: durationOf(secs)})
		if err != nil || r == nil {
			rc.Verdict = "not checked"
			if err != nil {
				rc.Error = err.Error()
			}
			return rc
		}
		rc.Runs++
		rc.LoopMinutes += r.LoopSeconds / 60
		switch result(*r) {
		case bisect.Crash:
			rc.Verdict = "crashes"
			return rc
		case bisect.Clean, bisect.Other:
			clean += r.LoopSeconds
		}
	}
	rc.Verdict = "not checked"
	return rc
}
