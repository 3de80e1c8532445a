package render

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/reprolab/reprolab/lab/store"
)

// Timing is a cell's median split of where its runs' seconds went (from each run's
// recorded timings, lab/repro's Timings), and the host load they ran under.
type Timing struct {
	Runs         int     `json:"runs"` // runs with timings recorded
	Boot         float64 `json:"boot_seconds"`
	Firmware     float64 `json:"firmware_seconds"`
	KernelEarly  float64 `json:"kernel_before_clock_seconds"` // the kernel runs → its clock starts
	KernelToInit float64 `json:"kernel_to_init_seconds"`
	InitToReady  float64 `json:"init_to_ready_seconds"` // /init → agent → SSH
	Setup        float64 `json:"setup_seconds"`
	FirstIter    float64 `json:"first_iteration_at_seconds"`
	IterationMs  float64 `json:"iteration_ms"`
	Total        float64 `json:"total_seconds"`
	Load1        float64 `json:"load1"`     // median 1-minute load at the runs' start
	BusyRuns     int     `json:"busy_runs"` // runs started with load above the host's cores
}

// runTimings is the part of a run's recorded timings the report reads.
type runTimings struct {
	Boot         float64 `json:"boot_seconds"`
	Firmware     float64 `json:"firmware_seconds"`
	KernelEarly  float64 `json:"kernel_before_clock_seconds"`
	KernelToInit float64 `json:"kernel_to_init_seconds"`
	InitToAgent  float64 `json:"init_to_agent_seconds"`
	AgentToSSH   float64 `json:"agent_to_ssh_seconds"`
	Setup        float64 `json:"setup_seconds"`
	FirstIter    float64 `json:"first_iteration_at_seconds"`
	Total        float64 `json:"total_seconds"`
	Iterations   struct {
		MedianMs float64 `json:"median_ms"`
	} `json:"iterations"`
}

// CellTiming computes a cell's median split over its runs that recorded timings; nil when
// none did (runs recorded before timings existed).
func CellTiming(runs []store.Run) *Timing {
	var cols [10][]float64
	t := &Timing{}
	for _, r := range runs {
		if r.Timings == "" {
			continue
		}
		var rt runTimings
		if json.Unmarshal([]byte(r.Timings), &rt) != nil {
			continue
		}
		t.Runs++
		for i, v := range []float64{rt.Boot, rt.Firmware, rt.KernelEarly, rt.KernelToInit, rt.InitToAgent + rt.AgentToSSH, rt.Setup, rt.FirstIter, rt.Iterations.MedianMs, rt.Total, r.Load[0]} {
			cols[i] = append(cols[i], v)
		}
		if r.Cores > 0 && r.Load[0] > float64(r.Cores) {
			t.BusyRuns++
		}
	}
	if t.Runs == 0 {
		return nil
	}
	m := make([]float64, len(cols))
	for i := range cols {
		m[i] = median(cols[i])
	}
	t.Boot, t.Firmware, t.KernelEarly, t.KernelToInit, t.InitToReady, t.Setup, t.FirstIter, t.IterationMs, t.Total, t.Load1 = m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9]
	return t
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// timingSection is the Markdown table of each cell's median split, or "" when no run
// recorded timings.
func timingSection(r *Report) string {
	var rows []string
	busy := 0
	for _, c := range r.Cells {
		t := CellTiming(c.Runs)
		if t == nil {
			continue
		}
		busy += t.BusyRuns
		rows = append(rows, fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", mdEscape(c.ID), t.Runs,
			sig(t.Firmware), sig(t.KernelEarly), sig(t.KernelToInit), sig(t.InitToReady), sig(t.Boot), sig(t.Setup), sig(t.FirstIter), sig(t.IterationMs), sig(t.Total), sig(t.Load1)))
	}
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n### Where the time went (median per cell, seconds)\n\n")
	b.WriteString("| cell | runs | firmware | kernel before its clock | kernel→/init | /init→ready | boot | setup | first iteration at | iteration ms | total | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n")
	if busy > 0 {
		fmt.Fprintf(&b, "\n%d runs started on a busy host (1-minute load above its cores): their timings and crash rates are not an idle host's.\n", busy)
	}
	return b.String()
}
