package matrix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"gopkg.in/yaml.v3"

	"github.com/reprolab/reprolab/lab/render"
	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/verdict"
)

// ReportDir is where a matrix's reports go inside the results directory.
func ReportDir(resultsDir, matrix string) string {
	return filepath.Join(resultsDir, "matrix-"+matrix)
}

// BuildReport assembles a matrix's report from the database: finished runs only, so a
// report read while the matrix runs never shows a run without its evidence.
func BuildReport(ctx context.Context, st *store.Store, matrix, resultsDir string) (*render.Report, error) {
	cid := CampaignID(matrix)
	cells, err := st.Cells(ctx, cid)
	if err != nil {
		return nil, err
	}
	if len(cells) == 0 {
		ms, _ := st.Matrices(ctx)
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		switch {
		case contains(names, matrix):
			// Started, but no cell recorded yet (interrupted while building, say).
			return nil, bad("matrix %q in %s has no cells recorded yet: run the matrix again to go on", matrix, st.Location)
		case len(names) == 0:
			return nil, bad("no matrix %q in %s: it holds no matrices yet", matrix, st.Location)
		}
		return nil, bad("no matrix %q in %s%s (it has: %s)", matrix, st.Location, didYouMean(matrix, names), strings.Join(names, ", "))
	}
	runs, err := st.Runs(ctx, cid)
	if err != nil {
		return nil, err
	}
	builds, err := st.Builds(ctx, cid)
	if err != nil {
		return nil, err
	}
	absResults, _ := filepath.Abs(resultsDir)
	rep := &render.Report{Matrix: matrix, Generated: time.Now().UTC(), RunsBase: "..", ResultsDir: absResults, Builds: builds}
	if ms, err := st.Matrices(ctx); err == nil {
		for _, m := range ms {
			if m.Name == matrix {
				rep.SpecPath = m.SpecPath
			}
		}
	}
	policy := cleanPolicy(rep.SpecPath)
	byBuild := map[string]*store.Build{}
	for i := range builds {
		byBuild[builds[i].ID] = &builds[i]
	}
	byCell := map[string][]store.Run{}
	for _, r := range runs {
		if r.State == store.Finished {
			byCell[r.Group] = append(byCell[r.Group], r)
		}
	}
	axisNames := []string{"arch", "kernel", "config", "probe", "patches", "cmdline"}
	axisVals := make([][]string, len(axisNames))
	for _, c := range cells {
		vals := []string{c.Arch, c.Kernel, c.Config, c.Probe, c.Patches, c.Cmdline}
		for i, v := range vals {
			if !contains(axisVals[i], v) {
				axisVals[i] = append(axisVals[i], v)
			}
		}
		rc := &render.Cell{Cell: c, Build: byBuild[c.BuildID], Runs: byCell[c.ID], Console: map[string]string{}, Reports: map[string]string{}}
		var samples []stats.Sample
		for _, r := range rc.Runs {
			smp := stats.Sample{Outcome: r.Outcome, LoopSeconds: r.LoopSeconds, TimeToCrash: r.TimeToCrash, Reproduced: r.Reproduced,
				BeforeLoop: r.Outcome == stats.Crashed && r.CrashIteration == 0}
			for _, cr := range r.Crashes {
				smp.Crashes = append(smp.Crashes, stats.Signature{Signature: cr.Signature, Title: cr.Title})
			}
			samples = append(samples, smp)
			dir := filepath.Join(resultsDir, r.Dir)
			rc.Console[r.ID] = tailFile(filepath.Join(dir, "console.log"), 40)
			if len(r.Crashes) > 0 && r.Crashes[0].ReportPath != "" {
				rc.Reports[r.ID] = headFile(filepath.Join(dir, r.Crashes[0].ReportPath), 120)
			}
		}
		rc.Stats = stats.Summarize(samples, 0.95)
		rep.Cells = append(rep.Cells, rc)
	}
	for i, n := range axisNames {
		rep.Axes = append(rep.Axes, render.Axis{Name: n, Values: axisVals[i]})
	}
	Judge(rep, policy)
	return rep, nil
}

// Judge sets every cell's verdict and the report's fix confidences with lab/verdict,
// then the totals: the one place a matrix report is judged.
func Judge(rep *render.Report, p verdict.Policy) {
	in := make([]verdict.Cell, len(rep.Cells))
	for i, c := range rep.Cells {
		in[i] = verdict.Cell{Cell: c.Cell, Build: c.Build, Stats: c.Stats}
	}
	for i, j := range verdict.Judge(in, p) {
		c := rep.Cells[i]
		c.Verdict, c.Reason, c.Clean = j.Verdict, j.Reason, nil
		if j.Clean != nil {
			e := render.CleanEvidence(*j.Clean)
			c.Clean = &e
		}
	}
	rep.Fixes = nil
	for _, f := range verdict.Fixes(in) {
		rep.Fixes = append(rep.Fixes, render.FixVerdict{Candidate: rep.Cells[f.Candidate], Baseline: rep.Cells[f.Baseline],
			CleanHours: f.CleanHours, Confidence: f.Confidence, Conservative: f.Conservative, HoursFor99: f.HoursFor99})
	}
	rep.Tally()
}

// cleanPolicy reads the clean: rule of the spec a matrix was run from, so `matrix
// report` judges as the run did. A spec that has moved or no longer parses leaves the
// default rule (no named rate): its cells are then judged against counterparts only.
func cleanPolicy(specPath string) verdict.Policy {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return verdict.Policy{}
	}
	var s struct {
		Clean Clean `yaml:"clean"`
	}
	if yaml.Unmarshal(data, &s) != nil {
		return verdict.Policy{}
	}
	return s.Clean.Policy()
}

// Formats are the report files WriteReports writes, by format name.
var Formats = map[string]string{
	"html":  "index.html",
	"md":    "report.md",
	"json":  "report.json",
	"junit": "junit.xml",
	"kcidb": "kcidb.json",
}

// WriteReports writes the given formats (all when empty) into dir, each atomically.
func WriteReports(rep *render.Report, dir string, formats []string) ([]string, error) {
	if len(formats) == 0 {
		formats = []string{"html", "md", "json", "junit", "kcidb"}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var errs *multierror.Error
	var written []string
	for _, f := range formats {
		name, ok := Formats[f]
		if !ok {
			return nil, bad("report format %q: want html, md, json, junit or kcidb", f)
		}
		path := filepath.Join(dir, name)
		tmp, err := os.CreateTemp(dir, "."+name+".*")
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		switch f {
		case "html":
			err = render.HTML(tmp, rep)
		case "md":
			err = render.Markdown(tmp, rep)
		case "json":
			err = render.JSON(tmp, rep)
		case "junit":
			err = render.JUnit(tmp, rep)
		case "kcidb":
			err = render.KCIDB(tmp, rep)
		}
		if err == nil {
			err = tmp.Chmod(0o644)
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			errs = multierror.Append(errs, fmt.Errorf("%s report: %w", f, err))
			continue
		}
		written = append(written, path)
	}
	return written, errs.ErrorOrNil()
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func headFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
