// Package render writes a matrix's results in the forms people and machines read:
// Markdown for a mailing list or PR, one self-contained HTML page (heat-map, inline SVG
// time-to-crash plots, every console and crash report linked), JSON, JUnit XML for CI
// servers and KCIDB v5 JSON for kernelci.
//
// All formats render the same Report, built once from the results database, so they can
// never disagree about a number.
package render

import (
	"math"
	"time"

	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/store"
)

// Verdicts of a cell against its expectation.
const (
	Pass       = "pass"       // crashed as expected, or clean as expected
	Fail       = "fail"       // a crash or hang where none was expected, or no crash where one was
	Error      = "error"      // no run said anything about the kernel (build failed, infra errors)
	Incomplete = "incomplete" // fewer finished runs than planned
)

// Report is a matrix's results.
type Report struct {
	Matrix    string
	SpecPath  string
	Generated time.Time
	// RunsBase is the path from where the report is written to the results directory,
	// so links to run artifacts work when the folder is served or copied as a whole.
	RunsBase string
	// ResultsDir is the absolute results directory (file:// URLs in KCIDB).
	ResultsDir string
	Axes       []Axis
	Cells      []*Cell
	Builds     []store.Build
	Totals     Totals
}

// Axis is one dimension and its values, in spec order.
type Axis struct {
	Name   string
	Values []string
}

// Totals summarise the matrix.
type Totals struct {
	Cells, Planned, Runs, Crashes, Hangs, InfraErrors int
	Pass, Fail, Error, Incomplete                     int
}

// Cell is one cell with its runs and statistics.
type Cell struct {
	store.Cell
	Build   *store.Build
	Runs    []store.Run // finished runs, by attempt
	Stats   stats.Cell
	Verdict string
	Reason  string
	// Console holds the last lines of each run's console.log (by run ID), shown as text.
	Console map[string]string
	// Reports holds each run's first crash report text (by run ID).
	Reports map[string]string
}

// Judge sets a cell's verdict from its statistics and expectation.
func (c *Cell) Judge() {
	s := c.Stats
	kernelFailed := s.Crashes + s.Hangs
	switch {
	case c.Build != nil && c.Build.Status != "ok":
		c.Verdict, c.Reason = Error, "build failed: "+firstLine(c.Build.Error)
	case s.Runs < c.PlannedRuns && s.Valid() == 0:
		c.Verdict, c.Reason = Incomplete, "not run yet"
	case s.Valid() == 0:
		c.Verdict, c.Reason = Error, "no run reached the kernel: infrastructure errors only"
	case c.ExpectCrash && s.Crashes > 0:
		c.Verdict, c.Reason = Pass, "reproduced as expected"
	case c.ExpectCrash:
		c.Verdict, c.Reason = Fail, "expected a crash, none in "+itoa(s.Valid())+" runs"
	case kernelFailed > 0:
		c.Verdict, c.Reason = Fail, "unexpected crash or hang ("+itoa(kernelFailed)+" of "+itoa(s.Valid())+" runs)"
	default:
		c.Verdict, c.Reason = Pass, "clean as expected"
	}
	if c.Verdict == Pass && s.Runs < c.PlannedRuns {
		c.Verdict, c.Reason = Incomplete, c.Reason+", "+itoa(s.Runs)+" of "+itoa(c.PlannedRuns)+" runs so far"
	}
}

// Tally fills Totals from the cells.
func (r *Report) Tally() {
	t := Totals{}
	for _, c := range r.Cells {
		t.Cells++
		t.Planned += c.PlannedRuns
		t.Runs += c.Stats.Runs
		t.Crashes += c.Stats.Crashes
		t.Hangs += c.Stats.Hangs
		t.InfraErrors += c.Stats.InfraErrors
		switch c.Verdict {
		case Pass:
			t.Pass++
		case Fail:
			t.Fail++
		case Error:
			t.Error++
		default:
			t.Incomplete++
		}
	}
	r.Totals = t
}

// CrashRuns is the number of runs that crashed.
func (c *Cell) CrashRuns() int { return c.Stats.Crashes }

// Fraction is crashed / valid runs, or NaN with no valid run.
func (c *Cell) Fraction() float64 {
	if c.Stats.Valid() == 0 {
		return math.NaN()
	}
	return float64(c.Stats.Crashes+c.Stats.Hangs) / float64(c.Stats.Valid())
}

func firstLine(s string) string {
	for i, ch := range s {
		if ch == '\n' {
			return s[:i]
		}
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}
