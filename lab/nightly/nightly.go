// Package nightly is the unattended use: for each tracked tree and branch, fetch, run the
// configured cells on the new head, compare with the last night's head in the store, and
// when a cell went clean→crash bisect the cause between the two heads (crash→clean: the fix,
// when asked), then write one summary.
//
// Every trial is recorded under the campaign "nightly-<name>" with the group
// "<tree>/<cell>@<commit>", so last night's head and its verdict are read back from the
// store, and a nightly killed half-way continues on the next start (trials already run on
// this head are kept). The campaign lock keeps two nightlies from overlapping.
package nightly

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reprolab/reprolab/lab/bisectrun"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/vcs"
)

// Config is nightly.yaml.
type Config struct {
	Name   string `yaml:"name"`
	Trees  []Tree `yaml:"trees"`
	Cells  []Cell `yaml:"cells"`
	Bisect Bisect `yaml:"bisect"`
	dir    string
}

// Tree is a tracked repository and branch.
type Tree struct {
	Name string `yaml:"name"`
	Git  string `yaml:"git"` // local repository (relative paths: to nightly.yaml)
	// Remote, when set, is fetched first (a remote's name, a URL or a path); Branch is
	// then its branch. Without Remote, Branch is a local ref.
	Remote  string   `yaml:"remote"`
	Branch  string   `yaml:"branch"`
	Exclude []string `yaml:"exclude"`
}

// Cell is one configuration run on every head.
type Cell struct {
	Name  string `yaml:"name"`
	Arch  string `yaml:"arch"`
	Repro string `yaml:"repro"` // path to a repro.yaml (relative: to nightly.yaml)
	// KernelSpec, when set, gives base, fragments, patches and probes (its source is
	// ignored: the tracked tree's head is built); the keys below add to it.
	KernelSpec string        `yaml:"kernel_spec"`
	Base       string        `yaml:"base"`
	Fragments  []string      `yaml:"fragments"`
	Patches    []string      `yaml:"patches"`
	Probes     []string      `yaml:"probes"`
	Cmdline    []string      `yaml:"cmdline"`
	Duration   spec.Duration `yaml:"duration"` // one trial's loop (default the reproducer's)
	Runs       int           `yaml:"runs"`     // trials per head (default 3); the first crash ends them
}

// Bisect configures the bisections a nightly starts.
type Bisect struct {
	Confidence float64       `yaml:"confidence"`
	Fix        bool          `yaml:"fix"` // also bisect crash→clean
	EndCrashes int           `yaml:"end_crashes"`
	Duration   spec.Duration `yaml:"duration"`
	MaxEnd     spec.Duration `yaml:"max_end"`
}

// Load reads nightly.yaml strictly: unknown keys are errors naming the line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.Inputf("nightly spec: %v", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // an unknown key, at any depth, is an error naming its line
	if err := dec.Decode(&c); err != nil {
		return nil, fault.Inputf("nightly spec %s: %v", path, strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n"))
	}
	c.dir = filepath.Dir(path)
	return &c, c.check(path)
}

func (c *Config) check(path string) error {
	var errs []string
	if c.Name == "" || strings.ContainsAny(c.Name, "/ ") {
		errs = append(errs, "name: required, one word (it names the campaign and the results folder)")
	}
	if len(c.Trees) == 0 || len(c.Cells) == 0 {
		errs = append(errs, "trees and cells: at least one of each")
	}
	seen := map[string]bool{}
	for i, t := range c.Trees {
		if t.Name == "" || t.Git == "" || t.Branch == "" || seen["t"+t.Name] {
			errs = append(errs, fmt.Sprintf("trees[%d]: needs a unique name, git and branch", i))
		}
		seen["t"+t.Name] = true
		c.Trees[i].Git = c.rel(t.Git)
	}
	for i, cl := range c.Cells {
		if cl.Name == "" || cl.Repro == "" || seen["c"+cl.Name] {
			errs = append(errs, fmt.Sprintf("cells[%d]: needs a unique name and a repro", i))
		}
		seen["c"+cl.Name] = true
		if cl.Arch == "" {
			c.Cells[i].Arch = "x86_64"
		}
		if cl.Runs < 0 {
			errs = append(errs, fmt.Sprintf("cells[%d].runs: %d: must be positive (leave it out for 3)", i, cl.Runs))
		}
		if cl.Runs == 0 {
			c.Cells[i].Runs = 3
		}
		if cl.Duration < 0 {
			// A negative loop time would end every trial at once: a clean verdict from
			// nothing.
			errs = append(errs, fmt.Sprintf("cells[%d].duration: %s: must be positive (leave it out for the reproducer's)", i, cl.Duration.Std()))
		}
		c.Cells[i].Repro = c.rel(cl.Repro)
		if cl.KernelSpec != "" {
			ks, err := kbuild.LoadSpec(c.rel(cl.KernelSpec))
			if err != nil {
				errs = append(errs, fmt.Sprintf("cells[%d].kernel_spec: %v", i, err))
				continue
			}
			if cl.Base == "" {
				c.Cells[i].Base = ks.Base
			}
			if cl.Arch == "" && ks.Arch != "" {
				c.Cells[i].Arch = ks.Arch
			}
			c.Cells[i].Fragments = append(ks.Fragments, cl.Fragments...)
			c.Cells[i].Patches = append(ks.Patches, cl.Patches...)
			c.Cells[i].Probes = append(ks.Probes, cl.Probes...)
		}
		for j := range cl.Patches {
			c.Cells[i].Patches[j] = c.rel(cl.Patches[j])
		}
		for j := range cl.Probes {
			c.Cells[i].Probes[j] = c.rel(cl.Probes[j])
		}
	}
	if c.Bisect.Confidence == 0 {
		c.Bisect.Confidence = 0.99
	}
	if c.Bisect.Duration < 0 || c.Bisect.MaxEnd < 0 || c.Bisect.EndCrashes < 0 {
		errs = append(errs, "bisect.duration, bisect.max_end and bisect.end_crashes cannot be negative")
	}
	if c.Bisect.Confidence < 0 || c.Bisect.Confidence >= 1 {
		errs = append(errs, "bisect.confidence: between 0 and 1, e.g. 0.99")
	}
	if len(errs) > 0 {
		return fault.Inputf("nightly spec %s:\n  %s", path, strings.Join(errs, "\n  "))
	}
	return nil
}

func (c *Config) rel(p string) string {
	if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Change is how a cell moved between two nights.
type Change string

// Changes.
const (
	First        Change = "first"         // no earlier night: recorded
	StillClean   Change = "clean"         // clean then, clean now
	New          Change = "new"           // clean then, crashes now
	Fixed        Change = "fixed"         // crashed then, clean now
	StillFailing Change = "still-failing" // crashed then, crashes now
	Unknown      Change = "unknown"       // only infrastructure errors on this head
)

// Result is one tree × cell of tonight.
type Result struct {
	Tree      string          `json:"tree"`
	Cell      string          `json:"cell"`
	Head      vcs.Commit      `json:"head"`
	Prev      *vcs.Commit     `json:"previous,omitempty"`
	Crashed   bool            `json:"crashed"`
	Runs      int             `json:"runs"`
	Change    Change          `json:"change"`
	Bisection *BisectionState `json:"bisection,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// BisectionState is a bisection the nightly started.
type BisectionState struct {
	Name       string      `json:"name"`
	Fix        bool        `json:"fix"`
	Culprit    *vcs.Commit `json:"culprit,omitempty"`
	Confidence float64     `json:"confidence,omitempty"`
	Candidates int         `json:"candidates,omitempty"`
	Stopped    string      `json:"stopped,omitempty"`
	Dir        string      `json:"dir"`
}

// Summary is one night.
type Summary struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Results  []Result  `json:"results"`
	// Infra says an infrastructure failure kept some cell from a verdict.
	Infra bool `json:"infra"`
}

// Run is one night. Bad input (a spec, a tree that is not git) is returned at once; a
// failing tree or cell is recorded in its Result and the night goes on.
func Run(ctx context.Context, c *Config, e *campaign.Engine, progress io.Writer) (*Summary, error) {
	if progress == nil {
		progress = io.Discard
	}
	id := campaign.ID(campaign.Nightly, c.Name)
	if err := e.Open(ctx, campaign.Campaign{ID: id, Kind: campaign.Nightly, Name: c.Name}); err != nil {
		return nil, err
	}
	lock, err := e.Lock(id)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	runs, _, err := e.Resume(ctx, id)
	if err != nil {
		return nil, err
	}
	n := &night{c: c, e: e, id: id, out: progress, runs: runs}
	sum := &Summary{Name: c.Name, Started: time.Now().UTC()}
	for _, t := range c.Trees {
		res, err := n.tree(ctx, t)
		if err != nil && fault.IsInput(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, r := range res {
			sum.Infra = sum.Infra || r.Change == Unknown || r.Error != ""
		}
		sum.Results = append(sum.Results, res...)
	}
	sum.Finished = time.Now().UTC()
	return sum, sum.Write(ResultsDir(e.ResultsDir, c.Name))
}

// ResultsDir is where a nightly's summaries go.
func ResultsDir(results, name string) string { return filepath.Join(results, "nightly-"+name) }

type night struct {
	c    *Config
	e    *campaign.Engine
	id   string
	out  io.Writer
	runs []store.Run
}

// tree fetches one tree and runs every cell on its head.
func (n *night) tree(ctx context.Context, t Tree) ([]Result, error) {
	g, err := vcs.Open(ctx, t.Git)
	if err != nil {
		return nil, err
	}
	ref := t.Branch
	if t.Remote != "" {
		local := "refs/reprolab-nightly/" + t.Name + "/" + t.Branch
		fmt.Fprintf(n.out, "nightly: %s: fetching %s %s\n", t.Name, t.Remote, t.Branch)
		if err := g.Fetch(ctx, t.Remote, "+"+t.Branch+":"+local); err != nil {
			return []Result{{Tree: t.Name, Error: "fetch: " + err.Error()}}, nil
		}
		ref = local
	}
	head, err := g.Info(ctx, ref)
	if err != nil {
		return nil, fault.AsInput(fmt.Errorf("tree %s: branch %s: %w", t.Name, t.Branch, err))
	}
	var out []Result
	for _, cl := range n.c.Cells {
		r, err := n.cell(ctx, g, t, cl, head)
		if err != nil {
			if fault.IsInput(err) || ctx.Err() != nil {
				return out, err
			}
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	return out, nil
}

// heads are the verdicts recorded per head of one tree/cell, latest first.
type headVerdict struct {
	hash    string
	crashed bool
	runs    int // evidence runs
	last    time.Time
}

func (n *night) history(group string) []headVerdict {
	by := map[string]*headVerdict{}
	for _, r := range n.runs {
		g, h, ok := strings.Cut(r.Group, "@")
		if !ok || g != group || !r.Evidence() {
			continue
		}
		v := by[h]
		if v == nil {
			v = &headVerdict{hash: h}
			by[h] = v
		}
		v.runs++
		v.crashed = v.crashed || r.Reproduced
		if r.Started.After(v.last) {
			v.last = r.Started
		}
	}
	var out []headVerdict
	for _, v := range by {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].last.After(out[j].last) })
	return out
}

// kernel is a cell's template.
func (cl Cell) kernel() campaign.Kernel {
	return campaign.Kernel{Arch: cl.Arch, Base: cl.Base, Fragments: cl.Fragments, Patches: cl.Patches, Probes: cl.Probes}
}

// cell runs one cell on the head (what is missing of it), compares, and bisects.
func (n *night) cell(ctx context.Context, g *vcs.Git, t Tree, cl Cell, head vcs.Commit) (Result, error) {
	group := t.Name + "/" + cl.Name
	r := Result{Tree: t.Name, Cell: cl.Name, Head: head}
	rs, err := spec.LoadReproducer(cl.Repro)
	if err != nil {
		return r, fault.AsInput(fmt.Errorf("cell %s: %w", cl.Name, err))
	}
	hist := n.history(group)
	var prev *headVerdict
	var now headVerdict
	for i := range hist {
		if hist[i].hash == head.Hash {
			now = hist[i]
		} else if prev == nil {
			prev = &hist[i]
		}
	}
	if err := n.runHead(ctx, g, t, cl, rs, head, &now); err != nil {
		return r, err
	}
	r.Crashed, r.Runs = now.crashed, now.runs
	switch {
	case now.runs == 0:
		r.Change = Unknown
		return r, nil
	case prev == nil:
		r.Change = First
		return r, nil
	}
	pc, err := g.Info(ctx, prev.hash)
	if err != nil {
		return r, err
	}
	r.Prev = &pc
	switch {
	case !prev.crashed && now.crashed:
		r.Change = New
		r.Bisection = n.bisect(ctx, g, t, cl, rs, pc.Hash, head.Hash, false)
	case prev.crashed && !now.crashed:
		r.Change = Fixed
		if n.c.Bisect.Fix {
			r.Bisection = n.bisect(ctx, g, t, cl, rs, head.Hash, pc.Hash, true)
		}
	case now.crashed:
		r.Change = StillFailing
	default:
		r.Change = StillClean
	}
	return r, nil
}

// runHead runs the trials still missing on the head: up to cl.Runs with evidence, stopping
// at the first expected crash; infrastructure errors are retried a few times.
func (n *night) runHead(ctx context.Context, g *vcs.Git, t Tree, cl Cell, rs *spec.Reproducer, head vcs.Commit, v *headVerdict) error {
	if v.crashed || v.runs >= cl.Runs {
		return nil
	}
	k := cl.kernel()
	dir := bisectrun.TreeDir(n.e.CacheDir, g.Dir(), k)
	unlock, err := bisectrun.LockTree(ctx, dir, n.out)
	if err != nil {
		return err
	}
	if _, err := g.Checkout(ctx, dir, head.Hash, t.Exclude); err != nil {
		unlock()
		return err
	}
	fmt.Fprintf(n.out, "nightly: %s/%s: building head %s %s\n", t.Name, cl.Name, head.Short(), head.Subject)
	b, err := n.e.Kernel(ctx, n.id, bisectrun.KernelAt(k, dir, head.Hash))
	unlock()
	if err != nil {
		return err
	}
	if b.Failed != nil {
		return b.Failed
	}
	infra := 0
	attempt := 0
	for _, r := range n.runs {
		if r.Group == t.Name+"/"+cl.Name+"@"+head.Hash {
			attempt++
		}
	}
	for v.runs < cl.Runs && !v.crashed && infra < 3 {
		attempt++
		tr := campaign.Trial{ID: fmt.Sprintf("%s-%s-%s-r%d", t.Name, cl.Name, head.Short(), attempt), Group: t.Name + "/" + cl.Name + "@" + head.Hash,
			Attempt: 1, Build: b, Repro: rs, Cmdline: cl.Cmdline, Duration: cl.Duration.Std()}
		run, err := n.e.Trial(ctx, n.id, tr)
		if err != nil {
			return err
		}
		if run == nil {
			return ctx.Err()
		}
		n.runs = append(n.runs, *run)
		if !run.Evidence() {
			infra++
			continue
		}
		v.runs++
		v.crashed = run.Reproduced
		fmt.Fprintf(n.out, "nightly: %s/%s@%s: %s (%s)\n", t.Name, cl.Name, head.Short(), run.Outcome, tr.ID)
	}
	return nil
}

// bisect runs (or resumes) the bisection between two heads; its failure is reported, not fatal.
func (n *night) bisect(ctx context.Context, g *vcs.Git, t Tree, cl Cell, rs *spec.Reproducer, good, bad string, fix bool) *BisectionState {
	name := fmt.Sprintf("%s-%s-%s-%.8s..%.8s", n.c.Name, t.Name, cl.Name, good, bad)
	if fix {
		name += "-fix"
	}
	st := &BisectionState{Name: name, Fix: fix, Dir: bisectrun.ResultsDir(n.e.ResultsDir, name)}
	fmt.Fprintf(n.out, "nightly: %s/%s: bisecting %.12s..%.12s (fix=%v)\n", t.Name, cl.Name, good, bad, fix)
	b := n.c.Bisect
	x, err := bisectrun.Prepare(ctx, bisectrun.Options{Repo: g, Repro: rs, Kernel: cl.kernel(), Exclude: t.Exclude, Good: good, Bad: bad, Fix: fix,
		Confidence: b.Confidence, RunSeconds: b.Duration.Std().Seconds(), EndCrashes: b.EndCrashes, MaxEndSeconds: b.MaxEnd.Std().Seconds(),
		Cmdline: cl.Cmdline, Name: name, Progress: n.out})
	if err != nil {
		st.Stopped = err.Error()
		return st
	}
	rep, err := x.Run(ctx, n.e)
	if rep != nil {
		if rep.Culprit != nil {
			st.Culprit = rep.Culprit
		}
		if rep.Answer != nil {
			st.Confidence, st.Candidates = rep.Answer.Confidence, len(rep.Answer.Candidates)
		}
		st.Stopped = rep.Stopped
	}
	if err != nil && st.Stopped == "" {
		st.Stopped = err.Error()
	}
	return st
}

// ExitCode for CI: 1 when a cell newly crashes, 3 when infrastructure kept a cell from a
// verdict, else 0.
func (s *Summary) ExitCode() int {
	for _, r := range s.Results {
		if r.Change == New {
			return fault.ExitCrashed
		}
	}
	if s.Infra {
		return fault.ExitInfra
	}
	return fault.ExitOK
}

// counts is the headline: new, fixed, still failing.
func (s *Summary) counts() (nw, fixed, failing int) {
	for _, r := range s.Results {
		switch r.Change {
		case New:
			nw++
		case Fixed:
			fixed++
		case StillFailing:
			failing++
		}
	}
	return
}

func (s *Summary) markdown(w *bytes.Buffer) {
	nw, fixed, failing := s.counts()
	fmt.Fprintf(w, "# Nightly %s, %s\n\n%d new, %d fixed, %d still failing.\n\n", s.Name, s.Started.Format("2006-01-02 15:04 UTC"), nw, fixed, failing)
	fmt.Fprintln(w, "| tree | cell | head | previous | verdict | change | bisection |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range s.Results {
		fmt.Fprintf(w, "| %s | %s | `%s` %s | %s | %s | %s | %s |\n", r.Tree, r.Cell, r.Head.Short(), r.Head.Subject, prevCell(r), verdictCell(r), r.Change, bisectCell(r))
	}
}

func prevCell(r Result) string {
	if r.Prev == nil {
		return "—"
	}
	return "`" + r.Prev.Short() + "`"
}

func verdictCell(r Result) string {
	switch {
	case r.Error != "":
		return "error: " + firstLine(r.Error)
	case r.Runs == 0:
		return "no verdict (infrastructure)"
	case r.Crashed:
		return fmt.Sprintf("crashes (%d runs)", r.Runs)
	}
	return fmt.Sprintf("clean (%d runs)", r.Runs)
}

func bisectCell(r Result) string {
	b := r.Bisection
	switch {
	case b == nil:
		return ""
	case b.Culprit != nil:
		return fmt.Sprintf("`%s` %s (confidence %.3f)", b.Culprit.Short(), b.Culprit.Subject, b.Confidence)
	case b.Stopped != "":
		return "stopped: " + firstLine(b.Stopped)
	}
	return fmt.Sprintf("%d candidates (skipped commits)", b.Candidates)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "/")
}
