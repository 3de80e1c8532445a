// Package kconfig reads kernel config fragments and .config files, merges
// fragments over a base, and verifies that every option a fragment asked for
// survived `make olddefconfig`.
//
// Kconfig silently drops an option whose dependencies are unmet; a kernel that
// quietly lacks CONFIG_DM_CRYPT makes a reproducer "survive" for the wrong
// reason. So every requested option is checked in the final .config, and a
// miss names the option, the fragment line that asked for it, and the
// `depends on` of that symbol from the tree's own Kconfig files.
//
// Fragments use the kernel's own format (what scripts/kconfig/merge_config.sh
// reads): `CONFIG_FOO=y`, `CONFIG_BAR="text"`, `# CONFIG_BAZ is not set`.
// Because options are renamed and moved across kernel versions, a fragment
// may guard the NEXT option line with directive comments, which the kernel's
// tools ignore as ordinary comments:
//
//	#@ version >=4.13 <5.0   only for kernels in this range
//	#@ arch arm64            only for this arch (x86_64 or arm64; several allowed)
//	#@ optional              use it if Kconfig accepts it, never fail on it
//
// Several directives may precede one option; they all apply.
package kconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
)

// Option is one requested setting from a fragment.
type Option struct {
	Name  string // without the CONFIG_ prefix
	Value string // "y", "m", "n" (for "is not set"), a number or a quoted string
	// Where the option was asked for: fragment file and line.
	File string
	Line int
	// Guards from directive comments.
	Versions kver.Range
	Arches   []string
	Optional bool
}

// Applies reports whether the option's guards select this kernel and arch.
func (o Option) Applies(v kver.Version, arch string) bool {
	if !o.Versions.Contains(v) {
		return false
	}
	if len(o.Arches) == 0 {
		return true
	}
	for _, a := range o.Arches {
		if a == arch {
			return true
		}
	}
	return false
}

// Line renders the option as a .config line.
func (o Option) ConfigLine() string {
	if o.Value == "n" {
		return "# CONFIG_" + o.Name + " is not set"
	}
	return "CONFIG_" + o.Name + "=" + o.Value
}

// Fragment is a parsed fragment file.
type Fragment struct {
	Name    string // file name without .config
	File    string
	Options []Option
	// Raw is the file content, part of the build's cache key.
	Raw []byte
}

// KnownArches are the values accepted by `#@ arch`.
var KnownArches = []string{"x86_64", "arm64"}

var (
	setRe   = regexp.MustCompile(`^CONFIG_([A-Za-z0-9_]+)=(.*)$`)
	unsetRe = regexp.MustCompile(`^# CONFIG_([A-Za-z0-9_]+) is not set$`)
)

// ParseFragment parses fragment text; file is used in messages.
func ParseFragment(file string, data []byte) (*Fragment, error) {
	fr := &Fragment{Name: strings.TrimSuffix(filepath.Base(file), ".config"), File: file, Raw: data}
	var pending Option
	havePending := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		where := fmt.Sprintf("%s:%d", file, n)
		switch {
		case strings.HasPrefix(line, "#@"):
			f := strings.Fields(strings.TrimPrefix(line, "#@"))
			if len(f) == 0 {
				return nil, fmt.Errorf("%s: empty directive; use `#@ version RANGE`, `#@ arch ARCH` or `#@ optional`", where)
			}
			havePending = true
			switch f[0] {
			case "optional":
				if len(f) != 1 {
					return nil, fmt.Errorf("%s: `#@ optional` takes no argument", where)
				}
				pending.Optional = true
			case "version":
				r, err := kver.ParseRange(strings.Join(f[1:], " "))
				if err != nil || len(f) < 2 {
					return nil, fmt.Errorf("%s: bad `#@ version` directive: want e.g. `#@ version >=4.13 <5.0` (%v)", where, err)
				}
				pending.Versions = r
			case "arch":
				if len(f) < 2 {
					return nil, fmt.Errorf("%s: `#@ arch` needs an arch (%s)", where, strings.Join(KnownArches, ", "))
				}
				for _, a := range f[1:] {
					if !contains(KnownArches, a) {
						return nil, fmt.Errorf("%s: unknown arch %q in `#@ arch` (known: %s)", where, a, strings.Join(KnownArches, ", "))
					}
				}
				pending.Arches = append(pending.Arches, f[1:]...)
			default:
				return nil, fmt.Errorf("%s: unknown directive %q (known: version, arch, optional)", where, f[0])
			}
		case setRe.MatchString(line) || unsetRe.MatchString(line):
			o := pending
			if m := setRe.FindStringSubmatch(line); m != nil {
				o.Name, o.Value = m[1], m[2]
				if o.Value == "" {
					return nil, fmt.Errorf("%s: CONFIG_%s has an empty value", where, o.Name)
				}
			} else {
				o.Name, o.Value = unsetRe.FindStringSubmatch(line)[1], "n"
			}
			o.File, o.Line = file, n
			fr.Options = append(fr.Options, o)
			pending, havePending = Option{}, false
		case line == "" || strings.HasPrefix(line, "#"):
			// Blank lines and ordinary comments; a directive still waits for its option.
		default:
			return nil, fmt.Errorf("%s: %q is not a fragment line (want CONFIG_FOO=y, `# CONFIG_FOO is not set` or a comment)", where, line)
		}
	}
	if havePending {
		return nil, fmt.Errorf("%s: directive at the end of the file guards no option", file)
	}
	return fr, sc.Err()
}

// LoadFragment finds a fragment by name in dirs (name.config), or by path
// when name contains a slash or ends in .config.
func LoadFragment(name string, dirs []string) (*Fragment, error) {
	var tried []string
	if strings.ContainsRune(name, '/') || strings.HasSuffix(name, ".config") {
		tried = append(tried, name)
	} else {
		for _, d := range dirs {
			tried = append(tried, filepath.Join(d, name+".config"))
		}
	}
	for _, p := range tried {
		data, err := os.ReadFile(p)
		if err == nil {
			return ParseFragment(p, data)
		}
	}
	return nil, &UnknownFragmentError{Name: name, Tried: tried, Known: available(dirs)}
}

// UnknownFragmentError names a fragment that is in none of the directories.
type UnknownFragmentError struct {
	Name  string
	Tried []string
	Known []string
}

// FaultKind: a fragment name the user got wrong is bad input.
func (e *UnknownFragmentError) FaultKind() fault.Kind { return fault.Input }

func (e *UnknownFragmentError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown config fragment %q (looked for %s): no fragments there at all; run from the reprolab repository or pass the kconfigs/ folder (--fragment-dir)",
			e.Name, strings.Join(e.Tried, ", "))
	}
	return fmt.Sprintf("unknown config fragment %q (looked for %s); available fragments: %s",
		e.Name, strings.Join(e.Tried, ", "), strings.Join(e.Known, ", "))
}

func available(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, "*.config"))
		for _, p := range m {
			out = append(out, strings.TrimSuffix(filepath.Base(p), ".config"))
		}
	}
	sort.Strings(out)
	return out
}

// Select returns the options of all fragments that apply to this kernel and
// arch, in order; a later fragment overrides an earlier one for the same
// symbol, as with merge_config.sh.
func Select(frags []*Fragment, v kver.Version, arch string) []Option {
	idx := map[string]int{}
	var out []Option
	for _, f := range frags {
		for _, o := range f.Options {
			if !o.Applies(v, arch) {
				continue
			}
			if i, ok := idx[o.Name]; ok {
				out[i] = o
				continue
			}
			idx[o.Name] = len(out)
			out = append(out, o)
		}
	}
	return out
}

// Config is a parsed .config: symbol (without CONFIG_) → value; a symbol
// written as "is not set" has value "n"; an absent symbol is not in the map.
type Config map[string]string

// ParseConfig reads .config text.
func ParseConfig(data []byte) Config {
	c := Config{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := setRe.FindStringSubmatch(line); m != nil {
			c[m[1]] = m[2]
		} else if m := unsetRe.FindStringSubmatch(line); m != nil {
			c[m[1]] = "n"
		}
	}
	return c
}

// Value returns the symbol's value, "n" when absent.
func (c Config) Value(sym string) string {
	if v, ok := c[sym]; ok {
		return v
	}
	return "n"
}

// Merge overlays opts on a base .config text, replacing lines of the same
// symbol and appending new ones, ready for `make olddefconfig`.
func Merge(base []byte, opts []Option) []byte {
	set := map[string]Option{}
	for _, o := range opts {
		set[o.Name] = o
	}
	var out bytes.Buffer
	done := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(base))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		sym := ""
		if m := setRe.FindStringSubmatch(line); m != nil {
			sym = m[1]
		} else if m := unsetRe.FindStringSubmatch(line); m != nil {
			sym = m[1]
		}
		if o, ok := set[sym]; ok && sym != "" {
			if !done[sym] {
				out.WriteString(o.ConfigLine() + "\n")
				done[sym] = true
			}
			continue
		}
		out.WriteString(line + "\n")
	}
	out.WriteString("# reprolab fragments\n")
	for _, o := range opts {
		if !done[o.Name] {
			out.WriteString(o.ConfigLine() + "\n")
			done[o.Name] = true
		}
	}
	return out.Bytes()
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// ChoiceSiblings returns "is not set" options for the other members of every
// choice in which opts set a member to y, unless opts set them too: a base
// config (tinyconfig picks the guess unwinder, SLOB, -Os) holds its own
// member at y, and Kconfig resolves two set members its own way.
func ChoiceSiblings(opts []Option, srcTree, karch string) ([]Option, error) {
	asked := map[string]bool{}
	var ys []string
	for _, o := range opts {
		asked[o.Name] = true
		if o.Value == "y" {
			ys = append(ys, o.Name)
		}
	}
	defs, err := FindDefinitions(srcTree, karch, ys)
	if err != nil {
		return nil, err
	}
	var out []Option
	seen := map[string]bool{}
	for _, o := range opts {
		for _, d := range defs[o.Name] {
			if o.Value != "y" || !d.InChoice {
				continue
			}
			for _, m := range d.ChoiceMembers {
				if !asked[m] && !seen[m] {
					seen[m] = true
					out = append(out, Option{Name: m, Value: "n", File: "(choice sibling of CONFIG_" + o.Name + ")", Optional: true})
				}
			}
		}
	}
	return out, nil
}
