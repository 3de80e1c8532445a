// Package probe turns delay-probe specs (YAML data: where to widen a race
// window, and by how much) into source edits of a kernel tree.
//
// A probe is compiled in once and driven at run time: the inserted code
// reads its delay from a kernel parameter, reprolab.delay_<name>=<µs>
// (0 = off, default from the spec; also writable in
// /sys/module/reprolab/parameters/), so a probe-off control and a delay
// sweep reuse one build. Only moving a probe rebuilds, and then only what
// includes the edited file: a udelay() edited into include/linux/memcontrol.h
// recompiles ~640 files, a changed number on the command line recompiles none.
//
// The probe site calls an out-of-line helper in a generated file,
// kernel/reprolab_probes.c, which is the one place that includes
// <linux/delay.h>: adding that include to a widely used header such as
// memcontrol.h risks include-order breakage for no gain.
package probe

import (
	"bytes"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/reprolab/reprolab/lab/strictyaml"
	"gopkg.in/yaml.v3"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
	"github.com/reprolab/reprolab/lab/kbuild/treepath"
	"github.com/reprolab/reprolab/lab/spec"
)

// Location says where the delay goes. Exactly one of After and Before is
// set: a text that must occur on exactly one line of the function's body
// (whitespace-insensitive).
type Location struct {
	File     string `yaml:"file"`
	Function string `yaml:"function"`
	After    string `yaml:"after,omitempty"`
	Before   string `yaml:"before,omitempty"`
}

// Variant is a location for a range of kernel versions.
type Variant struct {
	Versions string `yaml:"versions"`
	Location `yaml:",inline"`
}

// Spec is one probe file.
type Spec struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	DelayUS     uint   `yaml:"delay_us"`
	Location    `yaml:",inline"`
	Variants    []Variant `yaml:"variants,omitempty"`

	Path string `yaml:"-"`
	Raw  []byte `yaml:"-"`
}

// Error is a probe spec that is wrong or does not fit the tree: bad input.
type Error struct {
	Probe string // spec file or name
	Msg   string
}

func (e *Error) Error() string         { return "probe " + e.Probe + ": " + e.Msg }
func (e *Error) FaultKind() fault.Kind { return fault.Input }

// GeneratorVersion changes whenever the code this package generates changes, so that
// kernels built with the old generated code are not taken from the build cache.
// 2: the helper includes linux/bug.h (v4.x module_param needs BUILD_BUG_ON_ZERO).
const GeneratorVersion = "2"

var nameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

// Load reads and checks a probe spec (unknown keys are errors).
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Probe: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

// Parse is Load on bytes.
func Parse(path string, data []byte) (*Spec, error) {
	s := &Spec{Path: path, Raw: data}
	if err := strictyaml.Decode(path, data, s); err != nil {
		return nil, err
	}
	// yaml.v3 truncates delay_us: 1.5 to 1; a delay is a whole number of µs.
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) == 1 {
		if err := spec.WholeNumbers(doc.Content[0], "probe", "delay_us"); err != nil {
			return nil, &Error{Probe: path, Msg: strings.TrimPrefix(err.Error(), "probe.")}
		}
	}
	if !nameRe.MatchString(s.Name) {
		return nil, &Error{Probe: path, Msg: fmt.Sprintf("name %q: want lower-case letters, digits and _ (it becomes the kernel parameter reprolab.delay_<name>)", s.Name)}
	}
	check := func(where string, l Location, partial bool) error {
		if l == (Location{}) && partial {
			return nil
		}
		if l.File == "" || l.Function == "" {
			return &Error{Probe: path, Msg: where + ": file and function are required"}
		}
		if (l.After == "") == (l.Before == "") {
			return &Error{Probe: path, Msg: where + ": set exactly one of after and before"}
		}
		if _, err := treepath.Clean(l.File); err != nil {
			return &Error{Probe: path, Msg: where + ": file: " + err.Error()}
		}
		return nil
	}
	if err := check("top level", s.Location, len(s.Variants) > 0); err != nil {
		return nil, err
	}
	for i, v := range s.Variants {
		if _, err := kver.ParseRange(v.Versions); err != nil || v.Versions == "" {
			return nil, &Error{Probe: path, Msg: fmt.Sprintf("variant %d: versions %q: want e.g. \">=4.11 <4.13\"", i+1, v.Versions)}
		}
		if err := check(fmt.Sprintf("variant %d (%s)", i+1, v.Versions), v.Location, false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Param is the kernel parameter holding this probe's delay.
func (s *Spec) Param() string { return "reprolab.delay_" + s.Name }

// Var is the C variable holding the delay.
func (s *Spec) Var() string { return "reprolab_delay_" + s.Name }

// For picks the location for kernel v: the first variant whose range holds
// v, else the top-level location.
func (s *Spec) For(v kver.Version) (Location, error) {
	for _, va := range s.Variants {
		r, _ := kver.ParseRange(va.Versions)
		if r.Contains(v) {
			return va.Location, nil
		}
	}
	if s.File != "" {
		return s.Location, nil
	}
	var rs []string
	for _, va := range s.Variants {
		rs = append(rs, va.Versions)
	}
	return Location{}, &Error{Probe: s.Name, Msg: fmt.Sprintf("no location for kernel %s (variants cover %s)", v, strings.Join(rs, "; "))}
}

// Generated files: the helper and the Makefile line that builds it.
const (
	HelperFile = "kernel/reprolab_probes.c"
	MakefileKB = "kernel/Makefile"
)

// Paths lists every file Apply may write for kernel v.
func Paths(specs []*Spec, v kver.Version) ([]string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	set := map[string]bool{HelperFile: true, MakefileKB: true}
	for _, s := range specs {
		l, err := s.For(v)
		if err != nil {
			return nil, err
		}
		set[l.File] = true
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Site is where a probe went.
type Site struct {
	Probe, File, Function string
	Line                  int // 1-based line of the inserted call
}

// Apply edits the tree at dir for kernel v and returns the sites and the
// kernel parameters that set each delay to its spec default.
func Apply(dir string, v kver.Version, specs []*Spec) ([]Site, []string, error) {
	if len(specs) == 0 {
		return nil, nil, nil
	}
	seen := map[string]bool{}
	var sites []Site
	var params []string
	for _, s := range specs {
		if seen[s.Name] {
			return nil, nil, &Error{Probe: s.Path, Msg: fmt.Sprintf("two probes are named %q", s.Name)}
		}
		seen[s.Name] = true
		l, err := s.For(v)
		if err != nil {
			return nil, nil, err
		}
		p, err := treepath.Resolve(dir, l.File)
		if err != nil {
			return nil, nil, &Error{Probe: s.Name, Msg: "file: " + err.Error()}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, &Error{Probe: s.Name, Msg: fmt.Sprintf("%s does not exist in this kernel (%s)", l.File, v)}
		}
		out, line, err := insert(string(data), s, l, v)
		if err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			return nil, nil, err
		}
		sites = append(sites, Site{Probe: s.Name, File: l.File, Function: l.Function, Line: line})
		params = append(params, fmt.Sprintf("%s=%d", s.Param(), s.DelayUS))
	}
	hf, err := treepath.Resolve(dir, HelperFile)
	if err != nil {
		return nil, nil, &Error{Probe: "helper", Msg: err.Error()}
	}
	mk, err := treepath.Resolve(dir, MakefileKB)
	if err != nil {
		return nil, nil, &Error{Probe: "helper", Msg: err.Error()}
	}
	if err := os.MkdirAll(filepath.Dir(hf), 0o755); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(hf, []byte(helper(specs)), 0o644); err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(mk)
	if err != nil {
		return nil, nil, fmt.Errorf("probes need %s: %w", MakefileKB, err)
	}
	if !bytes.Contains(data, []byte("reprolab_probes.o")) {
		data = append(data, []byte("\n# reprolab delay probes\nobj-y += reprolab_probes.o\n")...)
		if err := os.WriteFile(mk, data, 0o644); err != nil {
			return nil, nil, err
		}
	}
	return sites, params, nil
}

func helper(specs []*Spec) string {
	var b strings.Builder
	b.WriteString(`// SPDX-License-Identifier: GPL-2.0
/*
 * Generated by reprolab: delay probes. Each delay (microseconds, 0 = off)
 * is the kernel parameter reprolab.delay_<name>=N, also writable at
 * /sys/module/reprolab/parameters/delay_<name>.
 */
#include <linux/kernel.h>
#include <linux/bug.h>	/* v4.x: module_param's permission check needs BUILD_BUG_ON_ZERO */
#include <linux/moduleparam.h>
#include <linux/delay.h>
#include <linux/export.h>

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "reprolab."

void reprolab_delay(unsigned int us)
{
	/* udelay() is meant for short waits; long ones go through mdelay(). */
	if (us >= 1000)
		mdelay(us / 1000);
	udelay(us % 1000);
}
EXPORT_SYMBOL(reprolab_delay);
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "\n/* probe %s */\nunsigned int %s = %d;\nmodule_param_named(delay_%s, %s, uint, 0644);\nEXPORT_SYMBOL(%s);\n",
			s.Name, s.Var(), s.DelayUS, s.Name, s.Var(), s.Var())
	}
	return b.String()
}

func norm(s string) string { return strings.Join(strings.Fields(s), " ") }

// insert places the probe in content and returns the new content and the
// 1-based line of the inserted call.
func insert(content string, s *Spec, l Location, v kver.Version) (string, int, error) {
	lines := strings.Split(content, "\n")
	start, end, err := findFunction(lines, l.Function)
	if err != nil {
		return "", 0, &Error{Probe: s.Name, Msg: fmt.Sprintf("%s: %v (kernel %s)", l.File, err, v)}
	}
	anchor, kind := l.After, "after"
	if l.Before != "" {
		anchor, kind = l.Before, "before"
	}
	var hits []int
	for i := start; i <= end; i++ {
		if strings.Contains(norm(lines[i]), norm(anchor)) {
			hits = append(hits, i)
		}
	}
	where := fmt.Sprintf("%s() in %s:%d-%d (kernel %s)", l.Function, l.File, start+1, end+1, v)
	if len(hits) == 0 {
		return "", 0, &Error{Probe: s.Name, Msg: fmt.Sprintf("anchor %s %q not found in %s", kind, anchor, where)}
	}
	if len(hits) > 1 {
		var ls []string
		for _, h := range hits {
			ls = append(ls, fmt.Sprint(h+1))
		}
		return "", 0, &Error{Probe: s.Name, Msg: fmt.Sprintf("anchor %s %q is ambiguous in %s: lines %s; quote more of the line", kind, anchor, where, strings.Join(ls, ", "))}
	}
	at := hits[0] // insertion index: the probe goes before lines[at]
	if kind == "after" {
		at = statementEnd(lines, hits[0]) + 1
		if c := strings.TrimSpace(lines[hits[0]]); strings.HasSuffix(c, "{") {
			at = hits[0] + 1 // after a block opener: first line inside it
		}
	}
	for at <= end && strings.TrimSpace(lines[at]) == "" {
		at++
	}
	indent := leading(lines[at])
	call := []string{
		fmt.Sprintf("%s{ /* reprolab probe %q: delay from %s (us, 0 = off) */", indent, s.Name, s.Param()),
		fmt.Sprintf("%s\textern unsigned int %s;", indent, s.Var()),
		fmt.Sprintf("%s\textern void reprolab_delay(unsigned int us);", indent),
		fmt.Sprintf("%s\tunsigned int __reprolab_us = READ_ONCE(%s);", indent, s.Var()),
		"",
		fmt.Sprintf("%s\tif (unlikely(__reprolab_us))", indent),
		fmt.Sprintf("%s\t\treprolab_delay(__reprolab_us);", indent),
		fmt.Sprintf("%s}", indent),
	}
	// The probe goes in front of the statement at `at`. If that statement is
	// the unbraced body of an if/else/for/while, inserting a statement would
	// steal the body; brace the body instead.
	prev := at - 1
	for prev > start && strings.TrimSpace(lines[prev]) == "" {
		prev--
	}
	var out []string
	if unbracedControl(lines[prev]) {
		stEnd := statementEnd(lines, at)
		out = append(out, lines[:prev]...)
		out = append(out, strings.TrimRight(lines[prev], " \t")+" { /* braces added by reprolab */")
		out = append(out, lines[prev+1:at]...)
		out = append(out, call...)
		out = append(out, lines[at:stEnd+1]...)
		out = append(out, leading(lines[prev])+"}")
		out = append(out, lines[stEnd+1:]...)
	} else {
		out = append(out, lines[:at]...)
		out = append(out, call...)
		out = append(out, lines[at:]...)
	}
	return strings.Join(out, "\n"), at + 1, nil
}

var controlRe = regexp.MustCompile(`^(\}\s*)?(else\s+)?(if|for|while)\s*\(.*\)$|^(\}\s*)?else$|^do$`)

func unbracedControl(line string) bool {
	t := strings.TrimSpace(stripComment(line))
	return controlRe.MatchString(t) && depth(t) == 0
}

func stripComment(s string) string {
	if i := strings.Index(s, "/*"); i >= 0 && strings.Contains(s[i:], "*/") {
		return s[:i] + s[i+strings.Index(s[i:], "*/")+2:]
	}
	if i := strings.Index(s, "//"); i >= 0 {
		return s[:i]
	}
	return s
}

func depth(s string) int {
	d := 0
	for _, c := range s {
		switch c {
		case '(':
			d++
		case ')':
			d--
		}
	}
	return d
}

// statementEnd returns the index of the last line of the statement or
// condition starting at i: where parentheses balance and the line ends in
// ';', '{', '}' or ')'.
func statementEnd(lines []string, i int) int {
	d := 0
	for j := i; j < len(lines); j++ {
		t := strings.TrimSpace(stripComment(lines[j]))
		d += depth(t)
		if d <= 0 && (strings.HasSuffix(t, ";") || strings.HasSuffix(t, "{") || strings.HasSuffix(t, "}") || strings.HasSuffix(t, ")")) {
			return j
		}
	}
	return i
}

func leading(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

// findFunction returns the line range (0-based, inclusive) of the body of
// the function defined with name: from the line of its name to the line
// holding its closing brace.
func findFunction(lines []string, name string) (int, int, error) {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\s*\(`)
	for i, l := range lines {
		if !re.MatchString(l) || strings.HasPrefix(strings.TrimSpace(l), "*") || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		// Definition: the parameter list is followed by '{' before any ';'.
		open := -1
	scan:
		for j := i; j < len(lines) && j < i+20; j++ {
			seg := stripComment(lines[j])
			if j == i {
				seg = seg[re.FindStringIndex(seg)[0]:]
			}
			for _, c := range seg {
				if c == ';' {
					break scan
				}
				if c == '{' {
					open = j
					break scan
				}
			}
		}
		if open < 0 {
			continue
		}
		b := 0
		for j := open; j < len(lines); j++ {
			b += strings.Count(stripComment(lines[j]), "{") - strings.Count(stripComment(lines[j]), "}")
			if b == 0 {
				return i, j, nil
			}
		}
		return 0, 0, fmt.Errorf("function %s() at line %d has no closing brace", name, i+1)
	}
	return 0, 0, fmt.Errorf("function %s() is not defined in this file", name)
}
