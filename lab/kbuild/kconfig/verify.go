package kconfig

import (
	"bufio"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Mismatch is a requested option that the final .config does not hold.
type Mismatch struct {
	Option Option
	Got    string // "n" when absent
	// Explanation from the tree's Kconfig: where the symbol is defined and
	// what it depends on, with the final values of those symbols.
	Defs []Definition
	// Unknown is true when no Kconfig file defines the symbol.
	Unknown bool
}

func (m Mismatch) String() string {
	o := m.Option
	s := fmt.Sprintf("CONFIG_%s: %s:%d asks for %s, final .config has %s", o.Name, o.File, o.Line, o.Value, m.Got)
	if m.Unknown {
		return s + "; no Kconfig file of this kernel defines it (renamed or removed in this version? guard it with `#@ version RANGE` or mark it `#@ optional`)"
	}
	for _, d := range m.Defs {
		s += fmt.Sprintf("; defined at %s:%d", d.File, d.Line)
		if d.InChoice {
			s += " as a member of a choice (unset the choice's other members explicitly, e.g. `# CONFIG_OTHER is not set`)"
		}
		if len(d.DependsOn) == 0 {
			s += " with no `depends on`"
		}
		for _, dep := range d.DependsOn {
			s += fmt.Sprintf("; depends on %s [%s]", dep.Expr, dep.Values)
		}
	}
	return s
}

// VerifyError lists every requested option that did not survive.
type VerifyError struct {
	Mismatches []Mismatch
}

// FaultKind: options the requested fragments cannot have are the spec's to fix.
func (e *VerifyError) FaultKind() fault.Kind { return fault.Input }

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requested config option(s) not in the final .config after olddefconfig (unmet dependencies: add the missing ones to a fragment):", len(e.Mismatches))
	for _, m := range e.Mismatches {
		b.WriteString("\n  " + m.String())
	}
	return b.String()
}

// Verify compares the applied options with the final .config. Optional
// options never fail; the second result lists them when they were dropped so
// the caller can warn. srcTree (may be empty) is searched for explanations;
// karch is the kernel's arch directory name (x86, arm64).
func Verify(opts []Option, final Config, srcTree, karch string) (dropped []Mismatch, err error) {
	var bad []Mismatch
	for _, o := range opts {
		got := final.Value(o.Name)
		if got == o.Value {
			continue
		}
		m := Mismatch{Option: o, Got: got}
		if o.Optional {
			dropped = append(dropped, m)
		} else {
			bad = append(bad, m)
		}
	}
	if len(bad) == 0 && len(dropped) == 0 {
		return nil, nil
	}
	if srcTree != "" {
		var syms []string
		for _, m := range append(append([]Mismatch{}, bad...), dropped...) {
			syms = append(syms, m.Option.Name)
		}
		defs, ferr := FindDefinitions(srcTree, karch, syms)
		if ferr != nil {
			return dropped, fmt.Errorf("explaining config mismatches: %w", ferr)
		}
		explain := func(ms []Mismatch) {
			for i := range ms {
				ds := defs[ms[i].Option.Name]
				ms[i].Unknown = len(ds) == 0
				for j := range ds {
					for k := range ds[j].DependsOn {
						ds[j].DependsOn[k].Values = valuesOf(ds[j].DependsOn[k].Expr, final)
					}
				}
				ms[i].Defs = ds
			}
		}
		explain(bad)
		explain(dropped)
	}
	if len(bad) > 0 {
		return dropped, &VerifyError{Mismatches: bad}
	}
	return dropped, nil
}

// Definition is one `config SYM` entry in a Kconfig file.
type Definition struct {
	File      string // relative to the tree
	Line      int
	DependsOn []Dependency
	// InChoice: a member of a choice; setting it needs the base's member unset.
	InChoice bool
	// ChoiceMembers are all the members of that choice.
	ChoiceMembers []string
}

// Dependency is one dependency expression: the entry's own `depends on`, or
// an enclosing `if`/`menu ... depends on` in the same file.
type Dependency struct {
	Expr   string
	Values string // e.g. "PCI=n X86_64=y", filled by Verify
}

var symRe = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

func valuesOf(expr string, c Config) string {
	var out []string
	seen := map[string]bool{}
	for _, s := range symRe.FindAllString(expr, -1) {
		if s == "y" || s == "n" || s == "m" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s+"="+c.Value(s))
	}
	return strings.Join(out, " ")
}

// FindDefinitions scans the tree's Kconfig files (skipping other arches)
// for the given symbols.
func FindDefinitions(srcTree, karch string, syms []string) (map[string][]Definition, error) {
	want := map[string]bool{}
	for _, s := range syms {
		want[s] = true
	}
	out := map[string][]Definition{}
	err := filepath.WalkDir(srcTree, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(srcTree, p)
		if d.IsDir() {
			if dir, sub, _ := strings.Cut(rel, string(filepath.Separator)); dir == "arch" && sub != "" && !strings.Contains(sub, "/") && sub != karch {
				return filepath.SkipDir
			}
			if rel == "Documentation" || rel == "tools" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(d.Name(), "Kconfig") {
			return nil
		}
		return scanKconfig(p, rel, want, out)
	})
	return out, err
}

func scanKconfig(path, rel string, want map[string]bool, out map[string][]Definition) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type scope struct {
		kind string // "if" or "menu"
		deps []string
	}
	var stack []scope
	var cur *Definition // the entry being read, nil when not a wanted one
	choice := 0         // depth of choice blocks
	type ref struct {
		sym string
		i   int
	}
	var members []string // of the innermost open choice
	var wanted []ref     // wanted definitions inside it
	inMenuHeader := false
	helpIndent := -1 // inside help text: its keyword's indentation
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		t := strings.TrimSpace(raw)
		if helpIndent >= 0 {
			// Help text runs while lines are blank or indented deeper than
			// the help keyword; it is prose that may start with "if".
			if t == "" || indent(raw) > helpIndent {
				continue
			}
			helpIndent = -1
		}
		kw, rest, _ := strings.Cut(t, " ")
		rest = strings.TrimSpace(rest)
		switch kw {
		case "config", "menuconfig", "choice", "comment", "source", "endchoice", "endmenu", "if", "endif", "menu", "mainmenu":
			if cur != nil {
				cur = nil
			}
			inMenuHeader = false
		}
		switch kw {
		case "choice":
			choice++
			members, wanted = nil, nil
		case "endchoice":
			if choice > 0 {
				choice--
			}
			for _, r := range wanted {
				out[r.sym][r.i].ChoiceMembers = members
			}
			members, wanted = nil, nil
		case "config", "menuconfig":
			if choice > 0 {
				members = append(members, rest)
				if want[rest] {
					wanted = append(wanted, ref{rest, len(out[rest])})
				}
			}
		}
		switch kw {
		case "config", "menuconfig":
			if want[rest] {
				d := Definition{File: rel, Line: n, InChoice: choice > 0}
				for _, s := range stack {
					for _, e := range s.deps {
						d.DependsOn = append(d.DependsOn, Dependency{Expr: e + " (enclosing " + s.kind + ")"})
					}
				}
				out[rest] = append(out[rest], d)
				cur = &out[rest][len(out[rest])-1]
			}
		case "if":
			stack = append(stack, scope{"if", []string{rest}})
		case "endif", "endmenu":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case "menu":
			stack = append(stack, scope{kind: "menu"})
			inMenuHeader = true
		case "help", "---help---":
			helpIndent = indent(raw)
			inMenuHeader = false
		case "depends":
			expr := strings.TrimSpace(strings.TrimPrefix(rest, "on"))
			if cur != nil {
				cur.DependsOn = append(cur.DependsOn, Dependency{Expr: expr})
			} else if inMenuHeader && len(stack) > 0 {
				stack[len(stack)-1].deps = append(stack[len(stack)-1].deps, expr)
			}
		}
	}
	return sc.Err()
}

// indent is a line's indentation in columns (tabs to multiples of 8).
func indent(s string) int {
	n := 0
	for _, c := range s {
		switch c {
		case ' ':
			n++
		case '\t':
			n = n/8*8 + 8
		default:
			return n
		}
	}
	return n
}
