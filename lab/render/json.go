package render

import (
	"encoding/json"
	"io"
	"time"

	"github.com/reprolab/reprolab/lab/stats"
)

// JSON document types: a stable shape for scripts, independent of the Go structs the
// database and statistics use internally.
type jsonReport struct {
	Schema    string     `json:"schema"`
	Matrix    string     `json:"matrix"`
	Spec      string     `json:"spec,omitempty"`
	Generated time.Time  `json:"generated"`
	Totals    Totals     `json:"totals"`
	Axes      []jsonAxis `json:"axes"`
	Cells     []jsonCell `json:"cells"`
	Builds    []jsonBld  `json:"builds"`
	Fixes     []jsonFix  `json:"fix_confidence,omitempty"`
}

type jsonAxis struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

type jsonCell struct {
	ID          string            `json:"id"`
	Axes        map[string]string `json:"axes"`
	ExpectCrash bool              `json:"expect_crash"`
	Verdict     string            `json:"verdict"`
	Reason      string            `json:"reason"`
	Build       string            `json:"build,omitempty"`
	Planned     int               `json:"planned_runs"`
	Stats       stats.Cell        `json:"stats"`
	Rate        *float64          `json:"crashes_per_hour"`
	RateLow     *float64          `json:"crashes_per_hour_low"`
	RateHigh    *float64          `json:"crashes_per_hour_high"`
	Clean       *jsonClean        `json:"clean,omitempty"`
	Timing      *Timing           `json:"timing,omitempty"`
	Runs        []jsonRun         `json:"runs"`
}

// jsonClean is a clean cell's evidence: hours_more is null when no rate was known.
type jsonClean struct {
	Against    string   `json:"against,omitempty"`
	RateLow    float64  `json:"rate_low_per_hour"`
	Hours      float64  `json:"clean_hours"`
	Confidence float64  `json:"confidence"`
	Target     float64  `json:"target_confidence"`
	HoursMore  *float64 `json:"hours_more"`
	Conclusive bool     `json:"conclusive"`
}

type jsonRun struct {
	ID          string      `json:"id"`
	Attempt     int         `json:"attempt"`
	Outcome     string      `json:"outcome"`
	Error       string      `json:"error,omitempty"`
	Accel       string      `json:"accel"`
	Host        string      `json:"host"`
	Iterations  int         `json:"iterations"`
	BootSeconds float64     `json:"boot_seconds"`
	LoopSeconds float64     `json:"loop_seconds"`
	TimeToCrash float64     `json:"time_to_crash_seconds,omitempty"`
	Reproduced  bool        `json:"reproduced"`
	Started     time.Time   `json:"started"`
	Finished    time.Time   `json:"finished"`
	Dir         string      `json:"dir"`
	Crashes     []jsonCrash `json:"crashes"`
	Load        *[3]float64 `json:"host_load,omitempty"`
	Cores       int         `json:"host_cores,omitempty"`
}

type jsonCrash struct {
	Title     string `json:"title"`
	Type      string `json:"type"`
	Signature string `json:"signature"`
	Report    string `json:"report"`
}

type jsonBld struct {
	ID      string  `json:"id"`
	Arch    string  `json:"arch"`
	Kernel  string  `json:"kernel"`
	Source  string  `json:"source"`
	Image   string  `json:"image"`
	Status  string  `json:"status"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
	Cached  bool    `json:"cached"`
}

type jsonFix struct {
	Candidate    string   `json:"candidate_cell"`
	Baseline     string   `json:"baseline_cell"`
	CleanHours   float64  `json:"clean_hours"`
	Confidence   float64  `json:"confidence"`
	Conservative float64  `json:"confidence_at_rate_low"`
	HoursFor99   *float64 `json:"clean_hours_for_99"`
}

// JSON writes the whole report as one JSON document.
func JSON(w io.Writer, r *Report) error {
	doc := jsonReport{Schema: "reprolab-matrix/1", Matrix: r.Matrix, Spec: r.SpecPath, Generated: r.Generated, Totals: r.Totals,
		Axes: []jsonAxis{}, Cells: []jsonCell{}, Builds: []jsonBld{}}
	for _, a := range r.Axes {
		doc.Axes = append(doc.Axes, jsonAxis{a.Name, a.Values})
	}
	for _, c := range r.Cells {
		jc := jsonCell{ID: c.ID, ExpectCrash: c.ExpectCrash, Verdict: c.Verdict, Reason: c.Reason, Build: c.BuildID,
			Planned: c.PlannedRuns, Stats: c.Stats, Rate: num(c.Stats.Rate), RateLow: num(c.Stats.RateLow), RateHigh: num(c.Stats.RateHigh),
			Axes: map[string]string{}, Runs: []jsonRun{}, Timing: CellTiming(c.Runs)}
		if cl := c.Clean; cl != nil {
			jc.Clean = &jsonClean{cl.Against, cl.RateLow, cl.Hours, cl.Confidence, cl.Target, num(cl.HoursMore), cl.Conclusive}
		}
		if jc.Stats.Signatures == nil {
			jc.Stats.Signatures = []stats.SignatureCount{}
		}
		for _, a := range r.Axes {
			jc.Axes[a.Name] = c.AxisValue(a.Name)
		}
		for _, run := range c.Runs {
			jr := jsonRun{ID: run.ID, Attempt: run.Attempt, Outcome: run.Outcome, Error: run.Error, Accel: run.Accel, Host: run.Host,
				Iterations: run.Iterations, BootSeconds: run.BootSeconds, LoopSeconds: run.LoopSeconds, TimeToCrash: run.TimeToCrash,
				Reproduced: run.Reproduced, Started: run.Started, Finished: run.Finished, Dir: run.Dir, Crashes: []jsonCrash{}, Cores: run.Cores}
			if run.Cores > 0 {
				l := run.Load
				jr.Load = &l
			}
			for _, cr := range run.Crashes {
				jr.Crashes = append(jr.Crashes, jsonCrash{cr.Title, cr.Type, cr.Signature, run.Dir + "/" + cr.ReportPath})
			}
			jc.Runs = append(jc.Runs, jr)
		}
		doc.Cells = append(doc.Cells, jc)
	}
	for _, b := range r.Builds {
		doc.Builds = append(doc.Builds, jsonBld{b.ID, b.Arch, b.Kernel, b.Source, b.Image, b.Status, b.Error, b.Seconds, b.Cached})
	}
	for _, f := range r.Fixes {
		doc.Fixes = append(doc.Fixes, jsonFix{f.Candidate.ID, f.Baseline.ID, f.CleanHours, f.Confidence, f.Conservative, num(f.HoursFor99)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
