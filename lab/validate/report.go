package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/vcs"
	"github.com/reprolab/reprolab/lab/verdict"
)

// Report is a validation's outcome: validation.json as written.
type Report struct {
	Name       string        `json:"name"`
	Repro      string        `json:"reproducer"`
	Expect     Expect        `json:"expect"`
	Confidence float64       `json:"target_confidence"`
	Budget     float64       `json:"budget_hours_per_arch"` // 0: unlimited
	Kernel     KernelInfo    `json:"kernel"`
	Patches    []PatchInfo   `json:"patches"`
	Arches     []*ArchReport `json:"arches"`
	Verdict    Verdict       `json:"verdict"` // over all arches (the worst)
	ExitCode   int           `json:"exit_code"`
	// Interrupted: Ctrl-C before every arch had a verdict; run again to resume.
	Interrupted bool `json:"interrupted"`
}

// KernelInfo says what the baseline was built from.
type KernelInfo struct {
	Source    string   `json:"source"`
	Commit    string   `json:"commit,omitempty"`
	Version   string   `json:"version,omitempty"`
	Base      string   `json:"base,omitempty"`
	Fragments []string `json:"fragments,omitempty"`
	Probes    []string `json:"probes,omitempty"`
	Cmdline   []string `json:"cmdline,omitempty"`
}

// PatchInfo is one validated patch.
type PatchInfo struct {
	File     string   `json:"file"`
	Subjects []string `json:"subjects,omitempty"`
}

// ArchReport is one arch's verdict and evidence.
type ArchReport struct {
	Arch       string           `json:"arch"`
	Verdict    Verdict          `json:"verdict"`
	Reason     string           `json:"reason"`
	Culprit    *stats.Signature `json:"culprit,omitempty"`
	Confidence float64          `json:"confidence"`
	// LambdaLow is the baseline rate's lower bound T is computed from; NeedHours is T.
	LambdaLow float64    `json:"lambda_low_per_hour"`
	NeedHours *float64   `json:"need_clean_hours,omitempty"`
	LoopHours float64    `json:"loop_hours"`
	Baseline  SideReport `json:"baseline"`
	Candidate SideReport `json:"candidate"`
}

// SideReport is one kernel's runs.
type SideReport struct {
	Build       string                 `json:"build"`
	Compiled    int                    `json:"compiled_files"`
	BuildCached bool                   `json:"build_cached"`
	Runs        int                    `json:"runs"`
	InfraErrors int                    `json:"infra_errors"`
	LoopHours   float64                `json:"loop_hours"`
	Crashes     int                    `json:"crashes"`
	Other       int                    `json:"other_reports"`
	Rate        *float64               `json:"rate_per_hour"` // null without loop time
	RateLow     *float64               `json:"rate_low"`
	RateHigh    *float64               `json:"rate_high"`
	Signatures  []stats.SignatureCount `json:"signatures"`
}

func num(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func (o *Options) report(runs map[string]*archRun, interrupted bool) *Report {
	rep := &Report{Name: o.Name, Repro: o.Repro.Name, Expect: o.Params.Expect, Confidence: o.Params.Confidence,
		Budget: o.Params.Budget.Hours(), Interrupted: interrupted, Kernel: o.kernelInfo(runs)}
	for _, p := range o.Patches {
		pi := PatchInfo{File: p}
		if ps, err := patch.Load(p); err == nil {
			for _, x := range ps {
				if x.Subject != "" {
					pi.Subjects = append(pi.Subjects, x.Subject)
				}
			}
		}
		rep.Patches = append(rep.Patches, pi)
	}
	for _, a := range o.Arches {
		r := runs[a]
		res := r.d.Result()
		ar := &ArchReport{Arch: a, Verdict: res.Verdict, Reason: res.Reason, Confidence: res.Confidence,
			LambdaLow: r.d.LambdaLow(), NeedHours: num(r.d.NeedHours()), LoopHours: r.d.Base.LoopHours + r.d.Cand.LoopHours,
			Baseline: sideReport(r.d.Base, r.base, o.Params.Confidence), Candidate: sideReport(r.d.Cand, r.cand, o.Params.Confidence)}
		if res.Culprit.Signature != "" {
			c := res.Culprit
			ar.Culprit = &c
		}
		if ar.Verdict == Undecided {
			ar.Verdict, ar.Reason = Inconclusive, "interrupted before a verdict: run the same command again to resume"
			ar.Confidence = r.d.Confidence()
		}
		rep.Arches = append(rep.Arches, ar)
	}
	rep.Verdict, rep.ExitCode = overall(rep.Arches)
	return rep
}

func sideReport(s SideStats, b *campaign.Build, c float64) SideReport {
	r := SideReport{Runs: s.Runs, InfraErrors: s.InfraErrors, LoopHours: s.LoopHours, Crashes: s.Crashes, Other: s.Other, Signatures: s.Signatures}
	rate, lo, hi := s.Rate(c)
	r.Rate, r.RateLow, r.RateHigh = num(rate), num(lo), num(hi)
	if b != nil {
		r.Build, r.Compiled, r.BuildCached = b.ID, b.Compiled, b.Cached
	}
	return r
}

// overall is the worst arch's verdict and the exit code it maps to: a patch that fails
// on one arch fails.
func overall(arches []*ArchReport) (Verdict, int) {
	rank := []struct {
		v    Verdict
		code int
	}{
		{NotFixed, ExitNotFixed}, {NotTriggered, ExitNotFixed}, {Changed, fault.ExitChanged},
		{InfraFailed, fault.ExitInfra}, {Inconclusive, fault.ExitInconclusive}, {Fixed, fault.ExitOK}, {Triggers, fault.ExitOK},
	}
	for _, x := range rank {
		for _, a := range arches {
			if a.Verdict == x.v {
				return x.v, x.code
			}
		}
	}
	return Inconclusive, fault.ExitInconclusive
}

// ExitNotFixed is the exit code of a patch that does not do what it claims.
const ExitNotFixed = fault.ExitCrashed

func (o *Options) kernelInfo(runs map[string]*archRun) KernelInfo {
	k := KernelInfo{Base: o.Kernel.Base, Fragments: o.Kernel.Fragments, Cmdline: o.Cmdline}
	if k.Base == "" && o.Kernel.Source != nil {
		k.Base = "tinyconfig"
	}
	for _, p := range o.Kernel.Probes {
		k.Probes = append(k.Probes, filepath.Base(p))
	}
	if s := o.Kernel.Source; s != nil {
		k.Source = describe(s)
		if s.Git != "" {
			k.Commit = s.Ref
			// Kernel style, 12 digits and the subject: 93c10f52d0b4 ("Linux 4.11").
			if g, err := vcs.Open(context.Background(), s.Git); err == nil {
				if c, err := g.Info(context.Background(), s.Ref); err == nil {
					k.Commit = fmt.Sprintf("%s (%q)", c.Short(), c.Subject)
				}
			}
		}
	} else if o.Kernel.Prebuilt != nil {
		k.Source = "prebuilt " + o.Kernel.Prebuilt.Image
	}
	for _, a := range o.Arches {
		if b := runs[a].base; b != nil && b.Version != "" {
			k.Version = b.Version
			break
		}
	}
	return k
}

func describe(s *source.Source) string {
	switch {
	case s.Git != "":
		return "git " + s.Git + "@" + s.Ref
	case s.Dir != "":
		return "dir " + s.Dir
	case s.Tarball != "":
		return "tarball " + filepath.Base(s.Tarball)
	case s.URL != "":
		return s.URL
	case s.KernelOrg != "":
		return "kernel.org " + s.KernelOrg
	case s.Debian != "":
		return "debian " + s.Debian
	}
	return "?"
}

// Write writes validation.json, validation.md and reply.txt into dir (each replaced
// atomically).
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fault.Infraf("report folder: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"validation.json": append(js, '\n'),
		"validation.md":   []byte(r.Markdown()),
		"reply.txt":       []byte(r.Reply()),
	} {
		if err := atomicfile.Write(filepath.Join(dir, name), data, 0o644); err != nil {
			return fault.Infraf("writing %s: %w", name, err)
		}
	}
	return nil
}

func rateText(s SideReport) string {
	if s.Rate == nil {
		return "unknown (no loop time)"
	}
	return fmt.Sprintf("%.3g/h [%.3g–%.3g]", *s.Rate, *s.RateLow, *s.RateHigh)
}

// Markdown is validation.md.
func (r *Report) Markdown() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Validation %s: %s\n\n", r.Name, r.Verdict)
	fmt.Fprintf(&b, "- reproducer: %s; expect: %s; target confidence %.3g%%", r.Repro, r.Expect, 100*r.Confidence)
	if r.Budget > 0 {
		fmt.Fprintf(&b, "; budget %.2f h of looping per arch", r.Budget)
	}
	fmt.Fprintf(&b, "\n- kernel: %s", r.Kernel.Source)
	if r.Kernel.Version != "" {
		fmt.Fprintf(&b, " (%s)", r.Kernel.Version)
	}
	fmt.Fprintf(&b, "; base %s; fragments %s; probes %s; cmdline %s\n", r.Kernel.Base, strings.Join(r.Kernel.Fragments, ", "),
		orNone(r.Kernel.Probes), orNone(r.Kernel.Cmdline))
	for _, p := range r.Patches {
		fmt.Fprintf(&b, "- patch %s: %s\n", p.File, orNone(p.Subjects))
	}
	if r.Interrupted {
		b.WriteString("\n**Interrupted**: run the same command again to resume.\n")
	}
	b.WriteString("\n| arch | verdict | confidence | baseline: crashes / loop h, rate | candidate: crashes / loop h, rate | T needed | runs (infra errors) |\n|---|---|---|---|---|---|---|\n")
	for _, a := range r.Arches {
		need := "—"
		if a.NeedHours != nil {
			need = fmt.Sprintf("%.2f h", *a.NeedHours)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d / %.2f h, %s | %d / %.2f h, %s | %s | %d (%d) + %d (%d) |\n", a.Arch, a.Verdict, verdict.Percent(a.Confidence),
			a.Baseline.Crashes, a.Baseline.LoopHours, rateText(a.Baseline), a.Candidate.Crashes+a.Candidate.Other, a.Candidate.LoopHours, rateText(a.Candidate),
			need, a.Baseline.Runs, a.Baseline.InfraErrors, a.Candidate.Runs, a.Candidate.InfraErrors)
	}
	for _, a := range r.Arches {
		fmt.Fprintf(&b, "\n## %s: %s\n\n%s.\n", a.Arch, a.Verdict, a.Reason)
		for _, side := range []struct {
			name string
			s    SideReport
		}{{"baseline", a.Baseline}, {"candidate", a.Candidate}} {
			fmt.Fprintf(&b, "\n%s (build %s, %d files compiled, cached %v):\n", side.name, side.s.Build, side.s.Compiled, side.s.BuildCached)
			if len(side.s.Signatures) == 0 {
				b.WriteString("- no crash\n")
			}
			for _, sg := range side.s.Signatures {
				fmt.Fprintf(&b, "- %d× %s (`%s`)\n", sg.Runs, sg.Title, sg.Signature.Signature)
			}
		}
	}
	return b.String()
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// Reply is reply.txt: a Tested-by: line when the patch did what it claims on every arch,
// and a paragraph a maintainer can read without the lab.
func (r *Report) Reply() string {
	var b bytes.Buffer
	if r.Verdict == Fixed || r.Verdict == Triggers {
		fmt.Fprintf(&b, "Tested-by: %s\n\n", testedBy())
	}
	var arches []string
	for _, a := range r.Arches {
		arches = append(arches, a.Arch)
	}
	k := r.Kernel
	what := k.Source
	if k.Version != "" {
		what = k.Version + " (" + k.Source + ")"
	}
	if k.Commit != "" {
		what += ", commit " + k.Commit
	}
	fmt.Fprintf(&b, "Tested on %s for %s, config %s + %s, probes %s, kernel command line %s,\nwith the reproducer %s looped under QEMU.",
		what, strings.Join(arches, " and "), k.Base, orNone(k.Fragments), orNone(k.Probes), orNone(k.Cmdline), r.Repro)
	for _, a := range r.Arches {
		fmt.Fprintf(&b, "\n%s: without the patch it crashed %s in %s h of looping (%s); with it, ",
			a.Arch, times(a.Baseline.Crashes), verdict.Hours(a.Baseline.LoopHours), rateText(a.Baseline))
		switch a.Verdict {
		case Fixed:
			fmt.Fprintf(&b, "it looped %s h without a crash: fixed with %s confidence.", verdict.Hours(a.Candidate.LoopHours), verdict.Percent(a.Confidence))
		case NotFixed:
			fmt.Fprintf(&b, "it still crashed the same way after %s h (%s, at %s): not fixed.", verdict.Hours(a.Candidate.LoopHours), times(a.Candidate.Crashes), rateText(a.Candidate))
		case Changed:
			fmt.Fprintf(&b, "after %.2f h it crashed differently: %s.", a.Candidate.LoopHours, culprit(a))
		case Triggers:
			fmt.Fprintf(&b, "the new check fired %d times in %.2f h: %s.", a.Candidate.Other, a.Candidate.LoopHours, culprit(a))
		case NotTriggered:
			fmt.Fprintf(&b, "the new check did not fire in %.2f h (%d crashes with the original report).", a.Candidate.LoopHours, a.Candidate.Crashes)
		default:
			fmt.Fprintf(&b, "%.2f h of looping gave no verdict: %s.", a.Candidate.LoopHours, a.Reason)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func culprit(a *ArchReport) string {
	if a.Culprit == nil {
		return "another report"
	}
	return a.Culprit.Title
}

// testedBy is the tester's identity: $REPROLAB_TESTED_BY, else git's author identity.
func testedBy() string {
	if v := os.Getenv("REPROLAB_TESTED_BY"); v != "" {
		return v
	}
	name, email := os.Getenv("GIT_AUTHOR_NAME"), os.Getenv("GIT_AUTHOR_EMAIL")
	if name == "" {
		name = "Your Name"
	}
	if email == "" {
		email = "you@example.org"
	}
	return fmt.Sprintf("%s <%s>", name, email)
}
