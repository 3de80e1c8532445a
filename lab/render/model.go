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
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/store"
)

// Verdicts of a cell against its expectation, as lab/verdict names them: render only
// shows them (colour, JUnit element, KCIDB field) and never decides one.
const (
	Pass       = "pass"
	Fail       = "fail"
	Error      = "error"
	Incomplete = "incomplete"
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
	// Fixes are the fix confidences lab/verdict found (clean candidates against their
	// crashing twins with other patches).
	Fixes []FixVerdict
}

// FixVerdict is a clean candidate cell against a crashing baseline that differs only
// in its patch set.
type FixVerdict struct {
	Candidate, Baseline *Cell
	CleanHours          float64
	Confidence          float64 // at the baseline's point rate
	Conservative        float64 // at the lower confidence limit of the baseline rate
	HoursFor99          float64 // clean hours needed for 99% at the conservative rate
}

// CleanEvidence is what a clean cell's verdict rests on: the rate it was measured
// against (a counterpart cell, or "spec"), its clean loop hours, the confidence reached
// and the target, and how many more clean hours the target needs.
type CleanEvidence struct {
	Against    string
	RateLow    float64
	Hours      float64
	Confidence float64
	Target     float64
	HoursMore  float64
	Conclusive bool
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
	Verdict string // set by lab/verdict
	Reason  string
	Clean   *CleanEvidence // for cells that ran clean where clean was expected
	// Console holds the last lines of each run's console.log (by run ID), shown as text.
	Console map[string]string
	// Reports holds each run's first crash report text (by run ID).
	Reports map[string]string
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

// firstLine is s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// num is a float for JSON: NaN and ±Inf are not JSON numbers, so they become null.
func num(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}
