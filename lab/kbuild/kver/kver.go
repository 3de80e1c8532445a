// Package kver parses Linux kernel versions and version ranges.
//
// Fragments, probes and old-kernel compat fixes all depend on "which kernel is
// this tree": the answer comes from the tree's own top-level Makefile (never
// from a tag name, which a local directory or tarball does not have), and a
// range is written the way people say it: ">=4.11 <4.13".
package kver

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Version is a kernel release number: VERSION.PATCHLEVEL.SUBLEVEL.
type Version struct {
	Major, Minor, Patch int
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Compare returns -1, 0 or 1.
func (v Version) Compare(o Version) int {
	for _, d := range [3]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	return 0
}

// Parse reads "4.11", "v4.13.9" or "6.1.0".
func Parse(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.Split(t, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("kernel version %q: want MAJOR.MINOR[.PATCH], e.g. 4.11 or 6.1.0", s)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return Version{}, fmt.Errorf("kernel version %q: %q is not a number", s, p)
		}
		n[i] = x
	}
	return Version{n[0], n[1], n[2]}, nil
}

// FromTree reads VERSION, PATCHLEVEL and SUBLEVEL from dir/Makefile.
func FromTree(dir string) (Version, error) {
	data, err := os.ReadFile(filepath.Join(dir, "Makefile"))
	if err != nil {
		return Version{}, fmt.Errorf("kernel tree %s: %w (is this a Linux source tree?)", dir, err)
	}
	v, err := FromMakefile(data)
	if err != nil {
		return Version{}, fmt.Errorf("kernel tree %s: %w", dir, err)
	}
	return v, nil
}

// FromMakefile reads VERSION, PATCHLEVEL and SUBLEVEL from the text of a
// top-level kernel Makefile (a file on disk, or `git show REV:Makefile`).
func FromMakefile(data []byte) (Version, error) {
	vals := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for i := 0; sc.Scan() && i < 20; i++ {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if k == "VERSION" || k == "PATCHLEVEL" || k == "SUBLEVEL" {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				vals[k] = n
			}
		}
	}
	if _, ok := vals["VERSION"]; !ok {
		return Version{}, fmt.Errorf("Makefile has no VERSION line in its first 20 lines (is this a Linux source tree?)")
	}
	return Version{vals["VERSION"], vals["PATCHLEVEL"], vals["SUBLEVEL"]}, nil
}

// Range is a conjunction of comparisons, e.g. ">=4.11 <4.13". The empty
// range matches every version.
type Range struct {
	src   string
	terms []term
}

type term struct {
	op string
	v  Version
}

// ParseRange accepts space- or comma-separated terms, each one of
// >=, >, <=, <, = (or ==) followed by a version.
func ParseRange(s string) (Range, error) {
	r := Range{src: strings.TrimSpace(s)}
	for _, f := range strings.FieldsFunc(s, func(c rune) bool { return c == ' ' || c == ',' || c == '\t' }) {
		op := ""
		for _, cand := range []string{">=", "<=", "==", ">", "<", "="} {
			if strings.HasPrefix(f, cand) {
				op = cand
				break
			}
		}
		if op == "" {
			return Range{}, fmt.Errorf("version range %q: term %q must start with >=, >, <=, < or =", s, f)
		}
		v, err := Parse(f[len(op):])
		if err != nil {
			return Range{}, fmt.Errorf("version range %q: %w", s, err)
		}
		if op == "==" {
			op = "="
		}
		r.terms = append(r.terms, term{op, v})
	}
	return r, nil
}

// Contains reports whether v satisfies every term.
func (r Range) Contains(v Version) bool {
	for _, t := range r.terms {
		c := v.Compare(t.v)
		ok := map[string]bool{">=": c >= 0, ">": c > 0, "<=": c <= 0, "<": c < 0, "=": c == 0}[t.op]
		if !ok {
			return false
		}
	}
	return true
}

func (r Range) String() string {
	if r.src == "" {
		return "any"
	}
	return r.src
}
