package matrix

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/kbuild/probe"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/strictyaml"
	"github.com/reprolab/reprolab/lab/verdict"
	"gopkg.in/yaml.v3"
)

// Spec is a matrix spec file.
type Spec struct {
	Name string `yaml:"name"`
	// Reproducer is a repro.yaml path relative to the matrix file (or a reproducer name).
	Reproducer string `yaml:"reproducer"`
	Budget     Budget `yaml:"budget"`
	Axes       Axes   `yaml:"axes"`
	// Probes are compiled into every kernel built from source (paths relative to the
	// matrix file); the probe axis sets their delays on the command line.
	Probes []string `yaml:"probes"`
	// Exclude drops cells matching any of these (axis → value; all given keys must match).
	Exclude []Match `yaml:"exclude"`
	// ExpectCrash lists the cells expected to crash; every other cell is expected clean.
	ExpectCrash []Match `yaml:"expect_crash"`
	// Clean says how sure a clean cell must be, and against which rate when it has no
	// crashing counterpart (lab/verdict).
	Clean Clean `yaml:"clean"`

	Path   string            `yaml:"-"`
	Dir    string            `yaml:"-"`
	SHA256 string            `yaml:"-"`
	Repro  *spec.Reproducer  `yaml:"-"`
	probes map[string]string `yaml:"-"` // probe file → kernel parameter
}

// Budget is what each cell gets.
type Budget struct {
	Runs int `yaml:"runs"`
	// Iterations and Duration override the reproducer's loop budget when set.
	Iterations int           `yaml:"iterations"`
	Duration   spec.Duration `yaml:"duration"`
}

// UnmarshalYAML rejects fractional counts (yaml.v3 would truncate runs: 1.5 to 1) and an
// explicit non-positive duration (zero is "the reproducer's own" only when left out).
func (b *Budget) UnmarshalYAML(n *yaml.Node) error {
	type plain Budget
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	if err := spec.WholeNumbers(n, "budget", "runs", "iterations"); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value == "duration" && p.Duration <= 0 {
			return fmt.Errorf("line %d: budget.duration %s: must be a positive duration, e.g. 3m (leave it out for the reproducer's own)", k.Line, p.Duration.Std())
		}
	}
	*b = Budget(p)
	return nil
}

// Axes are the dimensions of the matrix. An absent axis has one implicit value.
type Axes struct {
	Arch    []string     `yaml:"arch"`
	Kernel  []Kernel     `yaml:"kernel"`
	Config  []Config     `yaml:"config"`
	Probe   []int        `yaml:"probe"` // µs; 0 = off
	Patches []PatchSet   `yaml:"patches"`
	Cmdline []CmdlineSet `yaml:"cmdline"`
}

// Clean is the spec's clean-cell rule: a clean cell passes once its clean loop time
// reaches Confidence against its crashing counterpart's rate, or RatePerHour when it has
// none.
type Clean struct {
	RatePerHour float64 `yaml:"rate_per_hour"`
	Confidence  float64 `yaml:"confidence"`
}

// Policy is the rule as lab/verdict takes it.
func (c Clean) Policy() verdict.Policy {
	return verdict.Policy{Confidence: c.Confidence, RatePerHour: c.RatePerHour}
}

// Kernel is a kernel source the builder accepts, or prebuilt images per arch.
type Kernel struct {
	Name     string              `yaml:"name"`
	Source   *source.Source      `yaml:"source"`
	Prebuilt map[string]Prebuilt `yaml:"prebuilt"`
	// ProbeParams are the kernel parameters the probe axis sets on a prebuilt kernel
	// (a kernel built here gets the parameters of its compiled-in probes).
	ProbeParams []string `yaml:"probe_params"`
}

// Prebuilt is a ready kernel for one arch. Paths may use ~, $REPROLAB_CACHE (default
// ~/.cache/reprolab) and globs that match exactly one file.
type Prebuilt struct {
	Image   string `yaml:"image"`
	Modules string `yaml:"modules"`
	Vmlinux string `yaml:"vmlinux"`
}

// Config is a set of config fragments on a base.
type Config struct {
	Name      string   `yaml:"name"`
	Base      string   `yaml:"base"`
	Fragments []string `yaml:"fragments"`
}

// PatchSet is a named list of patches (an empty list is the unpatched control).
type PatchSet struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
	// Probes are compiled in only with this patch set (e.g. a probe whose anchor only
	// exists once the fix is applied).
	Probes []string `yaml:"probes"`
}

// CmdlineSet is a named set of extra kernel parameters.
type CmdlineSet struct {
	Name string   `yaml:"name"`
	Args []string `yaml:"args"`
}

// Match selects cells by axis value: keys arch, kernel, config, probe, patches, cmdline.
type Match map[string]string

var matchKeys = []string{"arch", "kernel", "config", "probe", "patches", "cmdline"}

// Matches reports whether every key of m equals the cell's value.
func (m Match) Matches(c *Cell) bool {
	for k, v := range m {
		if c.Value(k) != v {
			return false
		}
	}
	return true
}

// bad is a matrix spec or flag the user must fix (exit 2).
func bad(format string, a ...any) error { return fault.Inputf(format, a...) }

// Load reads and validates a matrix spec and the reproducer it names.
func Load(path string) (*Spec, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "matrix.yaml")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, bad("matrix spec: %v (give a matrix.yaml or a folder holding one)", err)
	}
	var s Spec
	if err := strictyaml.Decode(path, data, &s); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	s.Path, s.Dir, s.SHA256 = path, filepath.Dir(path), hex.EncodeToString(sum[:])
	if err := s.validate(); err != nil {
		return nil, bad("matrix spec %s: %v", path, err)
	}
	return &s, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

func (s *Spec) rel(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

func (s *Spec) validate() error {
	var errs []error
	badf := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !nameRE.MatchString(s.Name) {
		badf("name %q: use letters, digits, '.', '_', '+', '-' (it names result folders)", s.Name)
	}
	if s.Budget.Runs <= 0 {
		badf("budget.runs is required: how many boots per cell (e.g. 3)")
	}
	if s.Budget.Iterations < 0 || s.Budget.Duration < 0 {
		badf("budget: iterations and duration cannot be negative")
	}
	if s.Clean.RatePerHour < 0 || s.Clean.Confidence < 0 || s.Clean.Confidence >= 1 {
		badf("clean: rate_per_hour must be positive and confidence between 0 and 1 (e.g. clean: {rate_per_hour: 300, confidence: 0.99})")
	}
	if s.Reproducer == "" {
		badf("reproducer is required: a repro.yaml path relative to this file")
	} else {
		p := s.rel(s.Reproducer)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			p = filepath.Join(p, "repro.yaml")
		}
		r, err := spec.LoadReproducer(p)
		if err != nil {
			badf("reproducer: %v", err)
		} else {
			s.Repro = r
		}
	}
	a := &s.Axes
	if len(a.Arch) == 0 {
		badf("axes.arch is required (x86_64, arm64)")
	}
	seen := func(axis, name string, m map[string]bool) {
		if !nameRE.MatchString(name) {
			badf("axes.%s: name %q: use letters, digits, '.', '_', '+', '-'", axis, name)
		}
		if m[name] {
			badf("axes.%s: %q appears twice", axis, name)
		}
		m[name] = true
	}
	archs := map[string]bool{}
	for _, x := range a.Arch {
		if x != "x86_64" && x != "arm64" {
			badf("axes.arch: %q: want x86_64 or arm64", x)
		}
		seen("arch", x, archs)
	}
	if len(a.Kernel) == 0 {
		badf("axes.kernel is required: kernels with a source (git, dir, tarball, url, kernel_org, debian) or prebuilt images")
	}
	kn := map[string]bool{}
	for i := range a.Kernel {
		k := &a.Kernel[i]
		seen("kernel", k.Name, kn)
		if (k.Source == nil) == (len(k.Prebuilt) == 0) {
			badf("axes.kernel %q: give exactly one of source or prebuilt", k.Name)
		}
		if k.Source != nil {
			s.fixSource(k.Source)
		}
		for arch, p := range k.Prebuilt {
			if arch != "x86_64" && arch != "arm64" {
				badf("axes.kernel %q: prebuilt arch %q: want x86_64 or arm64", k.Name, arch)
			}
			if p.Image == "" {
				badf("axes.kernel %q: prebuilt %s: image is required", k.Name, arch)
			}
		}
	}
	if len(a.Config) == 0 {
		a.Config = []Config{{Name: "default"}}
	}
	cn := map[string]bool{}
	for i := range a.Config {
		c := &a.Config[i]
		seen("config", c.Name, cn)
		if len(c.Fragments) == 0 {
			c.Fragments = kbuild.DefaultFragments
		}
		for j, f := range c.Fragments {
			if filepath.Ext(f) == ".config" {
				c.Fragments[j] = s.rel(f)
			}
		}
	}
	if len(a.Probe) == 0 {
		a.Probe = []int{0}
	}
	pv := map[int]bool{}
	for _, v := range a.Probe {
		if v < 0 {
			badf("axes.probe: %d: delays are µs ≥ 0 (0 = off)", v)
		}
		if pv[v] {
			badf("axes.probe: %d appears twice", v)
		}
		pv[v] = true
	}
	if len(a.Patches) == 0 {
		a.Patches = []PatchSet{{Name: "none"}}
	}
	pn := map[string]bool{}
	s.probes = map[string]string{}
	loadProbe := func(p string) string {
		p = s.rel(p)
		if _, ok := s.probes[p]; !ok {
			ps, err := probe.Load(p)
			if err != nil {
				badf("probe %s: %v", p, err)
				return p
			}
			s.probes[p] = ps.Param()
		}
		return p
	}
	for i := range s.Probes {
		s.Probes[i] = loadProbe(s.Probes[i])
	}
	for i := range a.Patches {
		ps := &a.Patches[i]
		seen("patches", ps.Name, pn)
		for j, f := range ps.Files {
			ps.Files[j] = s.rel(f)
			if _, err := os.Stat(ps.Files[j]); err != nil {
				badf("axes.patches %q: %v", ps.Name, err)
			}
		}
		for j := range ps.Probes {
			ps.Probes[j] = loadProbe(ps.Probes[j])
		}
	}
	if len(a.Cmdline) == 0 {
		a.Cmdline = []CmdlineSet{{Name: "plain"}}
	}
	cl := map[string]bool{}
	for _, c := range a.Cmdline {
		seen("cmdline", c.Name, cl)
	}
	// A value that names nothing on its axis silently matches no cell: a typo in
	// expect_crash would turn an expected crash into an expected pass.
	values := s.axisValues()
	for _, list := range []struct {
		key string
		ms  []Match
	}{{"exclude", s.Exclude}, {"expect_crash", s.ExpectCrash}} {
		for i, m := range list.ms {
			for _, k := range sortedKeys(m) {
				v := m[k]
				switch {
				case !contains(matchKeys, k):
					badf("%s[%d]: unknown axis %q%s (want one of %s)", list.key, i, k, didYouMean(k, matchKeys), strings.Join(matchKeys, ", "))
				case !contains(values[k], v):
					badf("%s[%d]: %s %q is not on the %s axis%s (it has: %s)", list.key, i, k, v, k, didYouMean(v, values[k]), strings.Join(values[k], ", "))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// axisValues are the values each axis has, as Match and Cell.Value spell them.
func (s *Spec) axisValues() map[string][]string {
	a := &s.Axes
	v := map[string][]string{"arch": a.Arch}
	for _, k := range a.Kernel {
		v["kernel"] = append(v["kernel"], k.Name)
	}
	for _, c := range a.Config {
		v["config"] = append(v["config"], c.Name)
	}
	for _, p := range a.Probe {
		v["probe"] = append(v["probe"], strconv.Itoa(p))
	}
	for _, p := range a.Patches {
		v["patches"] = append(v["patches"], p.Name)
	}
	for _, c := range a.Cmdline {
		v["cmdline"] = append(v["cmdline"], c.Name)
	}
	return v
}

func sortedKeys(m Match) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// didYouMean is ` (did you mean "x"?)` for the closest candidate within two edits (or a
// third of the word's length, for long words), "" when nothing is that close.
func didYouMean(word string, candidates []string) string {
	best, bestD := "", max(2, len(word)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// fixSource makes a source's local paths relative to the spec file.
func (s *Spec) fixSource(src *source.Source) {
	src.Git = s.rel(src.Git)
	src.Dir = s.rel(src.Dir)
	src.Tarball = s.rel(src.Tarball)
}

func contains(l []string, x string) bool {
	for _, v := range l {
		if v == x {
			return true
		}
	}
	return false
}

// OverrideKernel replaces a kernel's source from a command-line value NAME=SOURCE where
// SOURCE is git:/path@ref[,exclude=PATH…], dir:/path, tarball:/path[#sha256], url:https://…#sha256,
// debian:linux-source-6.1 or prebuilt:ARCH=/image[,modules=/dir][,vmlinux=/file] (several
// prebuilt: values for one kernel add arches).
func (s *Spec) OverrideKernel(arg string) error {
	name, val, ok := strings.Cut(arg, "=")
	if !ok || name == "" || val == "" {
		return bad("--kernel-source %q: want NAME=git:/path@ref, NAME=dir:/path, NAME=tarball:/file.tar.xz, NAME=url:URL#sha256, NAME=debian:PKG or NAME=prebuilt:ARCH=/image[,modules=DIR]", arg)
	}
	var k *Kernel
	for i := range s.Axes.Kernel {
		if s.Axes.Kernel[i].Name == name {
			k = &s.Axes.Kernel[i]
		}
	}
	if k == nil {
		var names []string
		for _, x := range s.Axes.Kernel {
			names = append(names, x.Name)
		}
		return bad("--kernel-source %s: the matrix has no kernel %q (it has: %s)", arg, name, strings.Join(names, ", "))
	}
	kind, rest, _ := strings.Cut(val, ":")
	src := &source.Source{}
	switch kind {
	case "git":
		repo, ref, ok := strings.Cut(rest, "@")
		if !ok || ref == "" {
			return bad("--kernel-source %s: git needs a ref: git:/path/to/linux@v4.11", arg)
		}
		// ,exclude=PATH (repeatable) leaves folders out of `git archive`, e.g. a
		// snapshot that lacks large files.
		parts := strings.Split(ref, ",")
		src.Git, src.Ref = abs(repo), parts[0]
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			if k != "exclude" || v == "" {
				return bad("--kernel-source %s: after the ref only exclude=PATH options may follow", arg)
			}
			src.Exclude = append(src.Exclude, v)
		}
	case "dir":
		src.Dir = abs(rest)
	case "tarball":
		f, sum, _ := strings.Cut(rest, "#")
		src.Tarball, src.SHA256 = abs(f), sum
	case "url":
		u, sum, _ := strings.Cut(rest, "#")
		if sum == "" {
			return bad("--kernel-source %s: a URL needs its sha256: url:https://…/linux.tar.xz#<sha256>", arg)
		}
		src.URL, src.SHA256 = u, sum
	case "debian":
		src.Debian = rest
	case "prebuilt":
		arch, spec, ok := strings.Cut(rest, "=")
		if !ok {
			return bad("--kernel-source %s: want prebuilt:ARCH=/image[,modules=DIR][,vmlinux=FILE]", arg)
		}
		parts := strings.Split(spec, ",")
		p := Prebuilt{Image: abs(parts[0])}
		for _, kv := range parts[1:] {
			key, v, _ := strings.Cut(kv, "=")
			switch key {
			case "modules":
				p.Modules = abs(v)
			case "vmlinux":
				p.Vmlinux = abs(v)
			default:
				return bad("--kernel-source %s: unknown prebuilt option %q (modules=, vmlinux=)", arg, key)
			}
		}
		if k.Source != nil {
			k.Source, k.Prebuilt = nil, nil
		}
		if k.Prebuilt == nil {
			k.Prebuilt = map[string]Prebuilt{}
		}
		k.Prebuilt[arch] = p
		return nil
	default:
		return bad("--kernel-source %s: unknown source kind %q (git, dir, tarball, url, debian, prebuilt)", arg, kind)
	}
	k.Source, k.Prebuilt = src, nil
	return nil
}

func abs(p string) string {
	if a, err := filepath.Abs(expandPath(p)); err == nil {
		return a
	}
	return p
}

// expandPath expands ~ and $REPROLAB_CACHE (defaulting to the lab's cache dir).
func expandPath(p string) string {
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(h, p[2:])
		}
	}
	return os.Expand(p, func(v string) string {
		if v == "REPROLAB_CACHE" {
			return kbuild.DefaultCacheDir()
		}
		return os.Getenv(v)
	})
}

// resolvePrebuilt expands a prebuilt path; a glob must match exactly one file.
func resolvePrebuilt(kernel, arch, what, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	p = expandPath(p)
	matches, err := filepath.Glob(p)
	if err != nil || len(matches) == 0 {
		hint := ""
		if strings.Contains(p, "/debian/") {
			hint = " (run images/debian-kernels.sh to fetch Debian's kernels)"
		}
		return "", bad("kernel %s (%s): %s %s: no such file%s", kernel, arch, what, p, hint)
	}
	if len(matches) > 1 {
		return "", bad("kernel %s (%s): %s %s matches %d files (%s): make the pattern exact", kernel, arch, what, p, len(matches), strings.Join(matches, ", "))
	}
	return matches[0], nil
}

// Cell is one point of the matrix.
type Cell struct {
	Arch     string
	Kernel   *Kernel
	Config   *Config
	Probe    int
	Patches  *PatchSet
	Cmdline  *CmdlineSet
	Expect   bool // expected to crash
	Position int
}

// Value is the cell's value on an axis, as Match and reports spell it.
func (c *Cell) Value(axis string) string {
	switch axis {
	case "arch":
		return c.Arch
	case "kernel":
		return c.Kernel.Name
	case "config":
		return c.Config.Name
	case "probe":
		return strconv.Itoa(c.Probe)
	case "patches":
		return c.Patches.Name
	case "cmdline":
		return c.Cmdline.Name
	}
	return ""
}

// ID names the cell: axis values joined by '_' in a fixed order (axis values are
// restricted to characters that are safe in file names).
func (c *Cell) ID() string {
	return strings.Join([]string{c.Arch, c.Kernel.Name, c.Config.Name, "p" + strconv.Itoa(c.Probe), c.Patches.Name, c.Cmdline.Name}, "_")
}

// BuildKey groups cells that share one kernel: the probe and cmdline axes are boot
// parameters, not rebuilds.
func (c *Cell) BuildKey() string {
	if c.Kernel.Source == nil {
		return "prebuilt_" + c.Kernel.Name + "_" + c.Arch
	}
	return strings.Join([]string{c.Arch, c.Kernel.Name, c.Config.Name, c.Patches.Name}, "_")
}

// RunID names the k-th run of a cell deterministically, so a resumed matrix finds it.
func (s *Spec) RunID(c *Cell, k int) string {
	return fmt.Sprintf("%s-%s-r%d", s.Name, c.ID(), k)
}

// Cells expands the axes in spec order, drops excluded cells and those not matching
// every only filter, and marks expected crashes.
func (s *Spec) Cells(only []Match) ([]*Cell, error) {
	var out []*Cell
	pos := 0
	a := &s.Axes
	for ki := range a.Kernel {
		for ci := range a.Config {
			for pi := range a.Patches {
				for li := range a.Cmdline {
					for _, arch := range a.Arch {
						for _, pr := range a.Probe {
							c := &Cell{Arch: arch, Kernel: &a.Kernel[ki], Config: &a.Config[ci], Probe: pr, Patches: &a.Patches[pi], Cmdline: &a.Cmdline[li]}
							if anyMatch(s.Exclude, c) {
								continue
							}
							// Positions count every cell of the matrix, so a --only run
							// keeps each cell's place in reports.
							c.Position = pos
							pos++
							if len(only) > 0 && !allMatch(only, c) {
								continue
							}
							c.Expect = anyMatch(s.ExpectCrash, c)
							out = append(out, c)
						}
					}
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, bad("matrix %s: no cells left after exclude and --only filters", s.Name)
	}
	for _, c := range out {
		if c.Kernel.Source == nil {
			if _, ok := c.Kernel.Prebuilt[c.Arch]; !ok {
				return nil, bad("cell %s: prebuilt kernel %q has no %s image: add prebuilt.%s or exclude {kernel: %s, arch: %s}", c.ID(), c.Kernel.Name, c.Arch, c.Arch, c.Kernel.Name, c.Arch)
			}
			if len(c.Patches.Files) > 0 {
				return nil, bad("cell %s: patch set %q cannot apply to prebuilt kernel %q: exclude {kernel: %s, patches: %s}", c.ID(), c.Patches.Name, c.Kernel.Name, c.Kernel.Name, c.Patches.Name)
			}
			if c.Probe != 0 && len(c.Kernel.ProbeParams) == 0 {
				return nil, bad("cell %s: probe %d µs on prebuilt kernel %q, which has no probe_params", c.ID(), c.Probe, c.Kernel.Name)
			}
		}
	}
	return out, nil
}

func anyMatch(ms []Match, c *Cell) bool {
	for _, m := range ms {
		if m.Matches(c) {
			return true
		}
	}
	return false
}

func allMatch(ms []Match, c *Cell) bool {
	for _, m := range ms {
		if !m.Matches(c) {
			return false
		}
	}
	return true
}

// ParseOnly parses --only axis=value[,axis=value] into a Match.
func ParseOnly(arg string) (Match, error) {
	m := Match{}
	for _, kv := range strings.Split(arg, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !contains(matchKeys, k) {
			return nil, bad("--only %q: want axis=value[,axis=value] with axes %s", arg, strings.Join(matchKeys, ", "))
		}
		m[k] = v
	}
	return m, nil
}

// probeParams are the kernel parameters the probe axis sets for a cell.
func (s *Spec) probeParams(c *Cell) []string {
	if c.Kernel.Source == nil {
		return c.Kernel.ProbeParams
	}
	set := map[string]bool{}
	for _, p := range append(append([]string(nil), s.Probes...), c.Patches.Probes...) {
		set[s.probes[p]] = true
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// CellCmdline is what a cell appends to the kernel command line.
func (s *Spec) CellCmdline(c *Cell) []string {
	var out []string
	for _, p := range s.probeParams(c) {
		out = append(out, fmt.Sprintf("%s=%d", p, c.Probe))
	}
	return append(out, c.Cmdline.Args...)
}

// loopBudget is the per-run loop budget (zero = the reproducer's own).
func (s *Spec) loopBudget() (int, time.Duration) {
	return s.Budget.Iterations, s.Budget.Duration.Std()
}
