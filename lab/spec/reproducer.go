// Package spec reads reproducer specs: YAML files with strict keys whose errors name the
// file and line, so a typo never silently turns into a default.
package spec

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/strictyaml"
)

// Reproducer is one reproducer: the guest it needs, how to set it up, what to loop and for
// how long, and which crashes count as reproducing the bug.
type Reproducer struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Guest       Guest  `yaml:"guest"`
	Disks       []Disk `yaml:"disks"`
	Setup       []Step `yaml:"setup"`
	// Run is the shell command of one iteration; a non-zero exit is a failed iteration
	// (reported, and the loop stops) but not a kernel crash.
	Run    string `yaml:"run"`
	Budget Budget `yaml:"budget"`
	Expect Expect `yaml:"expect"`
	// OnOOM: what the guest's OOM killer ending an iteration does (continue by default).
	OnOOM OnOOM `yaml:"on_oom"`
	// Snapshot: true boots and sets up once per (kernel, reproducer, command line) and
	// restores that state for every trial; false forbids it (a reproducer whose setup
	// must be fresh each trial). Unset: `reprolab run` boots fresh unless --snapshot, and
	// matrix, validate and bisect use snapshots.
	Snapshot *bool `yaml:"snapshot"`

	// Path is the file the spec was read from; Dir its folder (probes and patches live there).
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`
}

// Guest is the shape of the VM.
type Guest struct {
	CPUs   int  `yaml:"cpus"`
	Memory Size `yaml:"memory"`
	// Cmdline is appended to the lab's kernel command line.
	Cmdline []string `yaml:"cmdline"`

	keys keys
}

// UnmarshalYAML records which keys were given (an explicit "cpus: 0" is an error, an
// absent one the default) and where, for validate's messages.
func (g *Guest) UnmarshalYAML(n *yaml.Node) error {
	type plain Guest
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*g = Guest(p)
	g.keys = keysOf(n)
	return nil
}

// Disk is a virtio disk the guest addresses as serial:<name>.
type Disk struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"` // raw | ext4
	Size Size   `yaml:"size"`
}

// Step is one setup step: exactly one field is set.
type Step struct {
	DmcryptSwap *DmcryptSwap `yaml:"dmcrypt_swap"`
	Ext4Mount   *Ext4Mount   `yaml:"ext4_mount"`
	TmpfsFill   *TmpfsFill   `yaml:"tmpfs_fill"`
	Shell       string       `yaml:"shell"`
	// Background starts a command detached; it runs until the guest stops.
	Background string `yaml:"background"`

	line int
}

// DmcryptSwap puts swap on a plain dm-crypt (aes-xts-plain64, random key) mapping of a disk.
type DmcryptSwap struct {
	Disk string `yaml:"disk"`
}

// Ext4Mount mounts an ext4 disk.
type Ext4Mount struct {
	Disk string `yaml:"disk"`
	Path string `yaml:"path"`
}

// TmpfsFill creates memory pressure: a tmpfs filled with Size of data, re-read by Readers
// background loops so that its pages keep moving between RAM and swap.
type TmpfsFill struct {
	Path    string `yaml:"path"`
	Size    Size   `yaml:"size"`
	Readers int    `yaml:"readers"`
}

// Budget bounds the loop: it ends when either limit is reached (at least one is required).
type Budget struct {
	Iterations int      `yaml:"iterations"`
	Duration   Duration `yaml:"duration"`
	// IterationTimeout is how long one iteration may go without finishing and without any
	// console output before the guest is declared hung.
	IterationTimeout Duration `yaml:"iteration_timeout"`

	keys keys
}

// UnmarshalYAML records which keys were given and where, for validate's messages.
func (b *Budget) UnmarshalYAML(n *yaml.Node) error {
	type plain Budget
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*b = Budget(p)
	b.keys = keysOf(n)
	return nil
}

// keys are the value nodes of a mapping by key: yaml.v3 decodes 1.5 into an int as 1 and
// cannot tell "cpus: 0" from no cpus at all, so validation looks at the nodes themselves.
type keys map[string]*yaml.Node

func keysOf(n *yaml.Node) keys {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	k := keys{}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			v := n.Content[i+1]
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias // *x: the anchored value decides
			}
			k[n.Content[i].Value] = v
		}
	}
	return k
}

// WholeNumbers checks that the given keys of mapping n, when present, hold whole numbers
// (yaml.v3 silently truncates 1.5 into an int field); section prefixes the key in messages.
func WholeNumbers(n *yaml.Node, section string, names ...string) error {
	return errors.Join(keysOf(n).notWhole(section, names...)...)
}

// has reports whether key was given.
func (k keys) has(key string) bool { return k[key] != nil }

// at is " (line N)" for a given key, "" otherwise.
func (k keys) at(key string) string {
	if n := k[key]; n != nil {
		return fmt.Sprintf(" (line %d)", n.Line)
	}
	return ""
}

// notWhole names the given keys whose value is not a whole number (1.5, 1e3).
func (k keys) notWhole(section string, names ...string) []error {
	var errs []error
	for _, name := range names {
		if n := k[name]; n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!int" {
			errs = append(errs, fmt.Errorf("%s.%s%s: %q is not a whole number", section, name, k.at(name), n.Value))
		}
	}
	return errs
}

// Expect lists the crash titles (regular expressions) that count as reproducing the bug.
type Expect struct {
	Titles []string `yaml:"titles"`
}

// Size is a byte count written as 256M, 1G, 512K or a plain number of bytes.
type Size int64

// UnmarshalYAML parses sizes with binary suffixes.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = Size(v)
	return nil
}

// MB is the size in MiB.
func (s Size) MB() int { return int(int64(s) >> 20) }

// ParseSize parses 256M, 1G, 4096K, 1T, 1048576.
func ParseSize(str string) (int64, error) {
	str = strings.TrimSpace(str)
	orig := str
	mult := int64(1)
	if str != "" {
		switch strings.ToUpper(str[len(str)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult != 1 {
			str = str[:len(str)-1]
		}
	}
	v, err := strconv.ParseInt(str, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q: use a number with an optional K, M, G or T suffix", str)
	}
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q: too large (the limit is 8 EiB)", orig)
	}
	return v * mult, nil
}

// Duration is a time.Duration written as 90s, 10m, 1h30m.
type Duration time.Duration

// UnmarshalYAML parses Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q: use e.g. 90s, 10m, 1h", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Std returns the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Limits on what a spec may ask for: beyond them a value is a typo (cpus: 4096, memory:
// 95P), which must fail here as bad input rather than later as a QEMU error.
const (
	MaxCPUs   = 64
	MaxMemory = 1 << 40 // 1 TiB
	MaxDisk   = 1 << 40
)

// String writes a size the way specs do (256M, 1G), exact.
func (s Size) String() string {
	v := int64(s)
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if v != 0 && v%(1<<u.shift) == 0 {
			return strconv.FormatInt(v>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$`)

// ValidName checks a reproducer name: it names results/<run-id> folders, so it is one
// path element of safe characters (no '/', no leading '.', so never "..").
func ValidName(name string) error {
	if name == "" {
		return errors.New("name is required")
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("name %q: use letters, digits, '.', '_', '+', '-' (up to 100, not starting with '.'): it names result folders", name)
	}
	return nil
}

// Error is a spec that decodes but does not validate, with the file it came from: bad
// input for lab/fault.
type Error struct {
	File string
	Err  error
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Err.Error()
	}
	return e.File + ": " + e.Err.Error()
}
func (e *Error) Unwrap() error         { return e.Err }
func (e *Error) FaultKind() fault.Kind { return fault.Input }

// Resolve finds a reproducer by name (a folder under reproducersDir holding repro.yaml) or
// by path (a file, or a folder holding repro.yaml).
func Resolve(nameOrPath, reproducersDir string) (string, error) {
	candidates := []string{nameOrPath, filepath.Join(nameOrPath, "repro.yaml")}
	if !strings.ContainsRune(nameOrPath, os.PathSeparator) {
		candidates = append(candidates, filepath.Join(reproducersDir, nameOrPath, "repro.yaml"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	var names []string
	if ents, err := os.ReadDir(reproducersDir); err == nil {
		for _, e := range ents {
			if _, err := os.Stat(filepath.Join(reproducersDir, e.Name(), "repro.yaml")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	return "", fmt.Errorf("reproducer %q not found: give a path to a repro.yaml or one of: %s",
		nameOrPath, strings.Join(names, ", "))
}

// LoadReproducer reads and validates a reproducer spec. Errors name the file (and the
// line where there is one) and are bad input for lab/fault.
func LoadReproducer(path string) (*Reproducer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.AsInput(err)
	}
	r, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	r.Path = path
	r.Dir = filepath.Dir(path)
	return r, nil
}

// ParseReproducer decodes a spec strictly (lab/strictyaml: unknown keys are errors) and
// validates it.
func ParseReproducer(data []byte) (*Reproducer, error) { return parse("", data) }

func parse(file string, data []byte) (*Reproducer, error) {
	var r Reproducer
	if err := strictyaml.Decode(file, data, &r); err != nil {
		var se *strictyaml.Error
		if errors.Is(err, strictyaml.ErrEmpty) && errors.As(err, &se) {
			se.Msg += ": a reproducer spec needs at least name, run and budget"
		}
		return nil, err
	}
	if err := r.validate(); err != nil {
		if file == "" {
			return nil, &Error{Err: err}
		}
		return nil, &Error{File: file, Err: err}
	}
	return &r, nil
}

// UnmarshalYAML records the step's line for error messages.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	type plain Step
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = Step(p)
	s.line = n.Line
	return nil
}

func (r *Reproducer) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := ValidName(r.Name); err != nil {
		bad("%v", err)
	}
	if strings.TrimSpace(r.Run) == "" {
		bad("run is required: the shell command of one iteration")
	}
	g := &r.Guest
	errs = append(errs, g.keys.notWhole("guest", "cpus")...)
	switch {
	case !g.keys.has("cpus"):
		g.CPUs = 2
	case g.CPUs < 1 || g.CPUs > MaxCPUs:
		bad("guest.cpus%s: %d: give 1 to %d vCPUs", g.keys.at("cpus"), g.CPUs, MaxCPUs)
	}
	switch {
	case !g.keys.has("memory"):
		g.Memory = 512 << 20
	case g.Memory.MB() < 64:
		bad("guest.memory%s: %s is too small: give at least 64M", g.keys.at("memory"), g.Memory)
	case int64(g.Memory) > MaxMemory:
		bad("guest.memory%s: %s is absurd: give at most %s", g.keys.at("memory"), g.Memory, Size(MaxMemory))
	}
	disks := map[string]bool{}
	for _, d := range r.Disks {
		switch {
		case d.Name == "" || strings.ContainsAny(d.Name, " ,=/:"):
			bad("disk name %q: use a short word (it becomes the virtio serial)", d.Name)
		case disks[d.Name]:
			bad("disk %q defined twice", d.Name)
		case d.Kind != "raw" && d.Kind != "ext4":
			bad("disk %q: kind %q: use raw or ext4", d.Name, d.Kind)
		case d.Size.MB() < 1:
			bad("disk %q: size is required (e.g. 512M)", d.Name)
		case int64(d.Size) > MaxDisk:
			bad("disk %q: size %s is absurd: give at most %s", d.Name, d.Size, Size(MaxDisk))
		}
		disks[d.Name] = true
	}
	for i, s := range r.Setup {
		n := 0
		if s.DmcryptSwap != nil {
			n++
			if !disks[s.DmcryptSwap.Disk] {
				bad("setup step %d (line %d): dmcrypt_swap: unknown disk %q", i+1, s.line, s.DmcryptSwap.Disk)
			}
		}
		if s.Ext4Mount != nil {
			n++
			if !disks[s.Ext4Mount.Disk] {
				bad("setup step %d (line %d): ext4_mount: unknown disk %q", i+1, s.line, s.Ext4Mount.Disk)
			}
			if !strings.HasPrefix(s.Ext4Mount.Path, "/") {
				bad("setup step %d (line %d): ext4_mount: path must be absolute", i+1, s.line)
			}
		}
		if s.TmpfsFill != nil {
			n++
			if s.TmpfsFill.Readers < 0 {
				bad("setup step %d (line %d): tmpfs_fill: readers %d cannot be negative", i+1, s.line, s.TmpfsFill.Readers)
			}
			if !strings.HasPrefix(s.TmpfsFill.Path, "/") || s.TmpfsFill.Size.MB() < 1 {
				bad("setup step %d (line %d): tmpfs_fill needs an absolute path and a size", i+1, s.line)
			}
		}
		if s.Shell != "" {
			n++
		}
		if s.Background != "" {
			n++
		}
		if n != 1 {
			bad("setup step %d (line %d): give exactly one of dmcrypt_swap, ext4_mount, tmpfs_fill, shell, background", i+1, s.line)
		}
	}
	b := &r.Budget
	errs = append(errs, b.keys.notWhole("budget", "iterations")...)
	if b.keys.has("iterations") && b.Iterations <= 0 {
		bad("budget.iterations%s: %d: must be a positive number (leave it out for no iteration limit)", b.keys.at("iterations"), b.Iterations)
	}
	// A non-positive time would end every loop at once or, for the timeout, turn every
	// iteration into a false "hung" verdict.
	if b.keys.has("duration") && b.Duration <= 0 {
		bad("budget.duration%s: %s: must be a positive duration, e.g. 10m (leave it out for no time limit)", b.keys.at("duration"), b.Duration.Std())
	}
	if b.keys.has("iteration_timeout") && b.IterationTimeout <= 0 {
		bad("budget.iteration_timeout%s: %s: must be a positive duration, e.g. 3m", b.keys.at("iteration_timeout"), b.IterationTimeout.Std())
	}
	if b.Iterations <= 0 && b.Duration <= 0 && !b.keys.has("iterations") && !b.keys.has("duration") {
		bad("budget: give iterations, duration or both")
	}
	if !b.keys.has("iteration_timeout") {
		b.IterationTimeout = Duration(5 * time.Minute)
	}
	for _, t := range r.Expect.Titles {
		if _, err := regexp.Compile(t); err != nil {
			bad("expect.titles: %q is not a regular expression: %v", t, err)
		}
	}
	return errors.Join(errs...)
}

// Reproduces reports whether a crash title is one the spec expects. With no expected
// titles every crash counts.
func (r *Reproducer) Reproduces(title string) bool {
	if len(r.Expect.Titles) == 0 {
		return true
	}
	for _, t := range r.Expect.Titles {
		if regexp.MustCompile(t).MatchString(title) {
			return true
		}
	}
	return false
}

// Command is the guest shell command for a step.
func (s Step) Command() string {
	switch {
	case s.DmcryptSwap != nil:
		return "reprolab-agent dmcrypt-swap serial:" + s.DmcryptSwap.Disk
	case s.Ext4Mount != nil:
		return "reprolab-agent mount-ext4 serial:" + s.Ext4Mount.Disk + " " + s.Ext4Mount.Path
	case s.TmpfsFill != nil:
		f := s.TmpfsFill
		// The tmpfs is a little larger than the fill so the fill itself never fails
		// with ENOSPC; the readers loop over the files forever, pulling pages back
		// from swap while the reproducer pushes others out.
		size := f.Size.MB()
		// One agent process writes every file (a dd per MiB cost 200 process starts).
		cmd := fmt.Sprintf("reprolab-agent fill-tmpfs %s %d %d", f.Path, size, size+size/8+1)
		for i := 0; i < f.Readers; i++ {
			cmd += fmt.Sprintf(" && (setsid sh -c 'while :; do cat %s/fill.* >/dev/null; done' </dev/null >/dev/null 2>&1 &)", f.Path)
		}
		return cmd
	case s.Background != "":
		return "(setsid sh -c " + shellQuote(s.Background) + " </dev/null >/dev/null 2>&1 &)"
	}
	return s.Shell
}

// String names the step for progress lines.
func (s Step) String() string {
	switch {
	case s.DmcryptSwap != nil:
		return "dm-crypt swap on " + s.DmcryptSwap.Disk
	case s.Ext4Mount != nil:
		return "ext4 " + s.Ext4Mount.Disk + " on " + s.Ext4Mount.Path
	case s.TmpfsFill != nil:
		return fmt.Sprintf("fill tmpfs %s with %dM, %d readers", s.TmpfsFill.Path, s.TmpfsFill.Size.MB(), s.TmpfsFill.Readers)
	case s.Background != "":
		return "background: " + s.Background
	}
	return "shell: " + s.Shell
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SnapshotDefault says whether a driver that prefers snapshots may use them: unless the
// spec says snapshot: false.
func (r *Reproducer) SnapshotDefault() bool { return r != nil && (r.Snapshot == nil || *r.Snapshot) }

// SnapshotAsked says whether the spec asks for snapshots (snapshot: true).
func (r *Reproducer) SnapshotAsked() bool { return r.Snapshot != nil && *r.Snapshot }
