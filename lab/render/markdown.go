package render

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// shownAxes are the axes with more than one value (the others are stated once).
func (r *Report) shownAxes() (shown, fixed []Axis) {
	for _, a := range r.Axes {
		if len(a.Values) > 1 {
			shown = append(shown, a)
		} else {
			fixed = append(fixed, a)
		}
	}
	return
}

// AxisValue is a cell's value on a named axis.
func (c *Cell) AxisValue(axis string) string {
	switch axis {
	case "arch":
		return c.Arch
	case "kernel":
		return c.Kernel
	case "config":
		return c.Config
	case "probe":
		return c.Probe
	case "patches":
		return c.Patches
	case "cmdline":
		return c.Cmdline
	}
	return ""
}

// RateText is "λ/h [lo–hi]" or "n/a".
func (c *Cell) RateText() string {
	s := c.Stats
	if !s.Known() {
		return "n/a"
	}
	return fmt.Sprintf("%s [%s–%s]", sig(s.Rate), sig(s.RateLow), sig(s.RateHigh))
}

// TTCText is "median [q1–q3] s" or "–".
func (c *Cell) TTCText() string {
	t := c.Stats.TimeToCrash
	if t.N == 0 {
		return "–"
	}
	if t.N == 1 {
		return fmt.Sprintf("%ss", sig(t.Median))
	}
	return fmt.Sprintf("%ss [%s–%s]", sig(t.Median), sig(t.Q1), sig(t.Q3))
}

// ExpectText says what the cell was expected to do.
func (c *Cell) ExpectText() string {
	if c.ExpectCrash {
		return "crash"
	}
	return "clean"
}

// sig formats with 3 significant digits, without exponent for everyday magnitudes.
func sig(f float64) string {
	switch {
	case math.IsNaN(f):
		return "n/a"
	case math.IsInf(f, 1):
		return "∞"
	case f == 0:
		return "0"
	case math.Abs(f) >= 100:
		return fmt.Sprintf("%.0f", f)
	case math.Abs(f) >= 10:
		return fmt.Sprintf("%.1f", f)
	case math.Abs(f) >= 0.01:
		return fmt.Sprintf("%.2f", f)
	}
	return fmt.Sprintf("%.2g", f)
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "`", "'")
}

// Markdown writes a report for a mailing list or a pull request: a headline, one table
// row per cell, distinct crash signatures, and fix confidences.
func Markdown(w io.Writer, r *Report) error {
	var b strings.Builder
	t := r.Totals
	fmt.Fprintf(&b, "## reprolab matrix `%s`: %d pass, %d fail, %d error, %d incomplete\n\n", r.Matrix, t.Pass, t.Fail, t.Error, t.Incomplete)
	fmt.Fprintf(&b, "%d cells, %d of %d runs finished: %d crashed, %d hung, %d infrastructure errors (not counted in rates). Rates are crashes per hour of looping with exact 95%% Poisson intervals.\n\n",
		t.Cells, t.Runs, t.Planned, t.Crashes, t.Hangs, t.InfraErrors)
	shown, fixed := r.shownAxes()
	if len(fixed) > 0 {
		var parts []string
		for _, a := range fixed {
			parts = append(parts, a.Name+" "+a.Values[0])
		}
		fmt.Fprintf(&b, "All cells: %s.\n\n", strings.Join(parts, ", "))
	}
	head := []string{}
	for _, a := range shown {
		head = append(head, a.Name)
	}
	head = append(head, "expect", "runs", "crashed", "rate/h [95% CI]", "time to crash", "verdict")
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|" + strings.Repeat("---|", len(head)) + "\n")
	for _, c := range r.Cells {
		var row []string
		for _, a := range shown {
			row = append(row, mdEscape(c.AxisValue(a.Name)))
		}
		runs := fmt.Sprintf("%d/%d", c.Stats.Runs, c.PlannedRuns)
		if c.Stats.InfraErrors > 0 {
			runs += fmt.Sprintf(" (%d infra)", c.Stats.InfraErrors)
		}
		crashed := fmt.Sprintf("%d", c.Stats.Crashes)
		if c.Stats.SetupCrashes > 0 {
			crashed += fmt.Sprintf(" (%d before the loop)", c.Stats.SetupCrashes)
		}
		if c.Stats.Hangs > 0 {
			crashed += fmt.Sprintf(" +%d hung", c.Stats.Hangs)
		}
		verdict := c.Verdict
		if c.Verdict != Pass {
			verdict = "**" + strings.ToUpper(c.Verdict) + "**: " + mdEscape(c.Reason)
		}
		row = append(row, c.ExpectText(), runs, crashed, c.RateText(), c.TTCText(), verdict)
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	var sigRows []string
	for _, c := range r.Cells {
		for _, s := range c.Stats.Signatures {
			sigRows = append(sigRows, fmt.Sprintf("| %s | %d | %s |", c.ID, s.Runs, mdEscape(s.Title)))
		}
	}
	if len(sigRows) > 0 {
		b.WriteString("\n### Crashes\n\n| cell | runs | title |\n|---|---|---|\n")
		b.WriteString(strings.Join(sigRows, "\n") + "\n")
	}
	if fv := r.Fixes; len(fv) > 0 {
		b.WriteString("\n### Fix confidence\n\n")
		for _, v := range fv {
			fmt.Fprintf(&b, "- `%s` ran %s h clean where `%s` crashes at %s/h: confidence %s that it removed the crash (%s at the rate's lower 95%% limit; %s clean hours reach 99%%).\n",
				v.Candidate.Patches, sig(v.CleanHours), v.Baseline.Patches, sig(v.Baseline.Stats.Rate),
				pct(v.Confidence), pct(v.Conservative), sig(v.HoursFor99))
		}
	}
	b.WriteString(timingSection(r))
	var bad []string
	for _, c := range r.Builds {
		if c.Status != "ok" {
			bad = append(bad, fmt.Sprintf("- build `%s` failed: %s", c.ID, mdEscape(firstLine(c.Error))))
		}
	}
	if len(bad) > 0 {
		b.WriteString("\n### Builds\n\n" + strings.Join(bad, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(f float64) string {
	if f > 0.999999 {
		return "> 99.9999%"
	}
	if f >= 0.9999 {
		return fmt.Sprintf("%.4f%%", 100*f)
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}
