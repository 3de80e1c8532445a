// Package patch loads kernel patches in the forms people pass them around —
// git format-patch files, plain unified diffs, diffs inside email messages or
// mbox files — and applies them in order with `git apply`.
//
// Mail archives mangle diffs: a web page of a thread can lose the leading
// space of context lines and the indentation of every line, and quote the
// same message twice. Load repairs what is unambiguous (a hunk's line counts
// say how many lines belong to it, so a line in a hunk that starts with
// neither ' ', '+' nor '-' is a context line that lost its space) and applies
// such a patch with whitespace-insensitive context matching. A patch that
// still does not apply fails with the file, the hunk and the first line where
// the tree differs from what the patch expects.
package patch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"

	"github.com/reprolab/reprolab/lab/kbuild/treepath"
)

// Patch is one message's diff.
type Patch struct {
	Source  string // file it came from (and message number in an mbox)
	Subject string
	// Text is the clean diff handed to git apply.
	Text []byte
	// Files are the parsed file diffs.
	Files []*gitdiff.File
	// Mangled is true when context lines had lost their leading space.
	Mangled bool
}

// Paths returns every path the patch reads or writes.
func (p *Patch) Paths() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range p.Files {
		for _, n := range []string{f.OldName, f.NewName} {
			if n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// Error is a patch that cannot be read or applied: bad input.
type Error struct {
	Patch string
	File  string // file in the tree, when known
	Hunk  string // the @@ header, when known
	// Func is the function the hunk header names (git diff's "@@ … @@ func(" context),
	// when known: often the fastest clue that a patch was written for another version.
	Func string
	Msg  string
}

func (e *Error) Error() string {
	s := "patch " + e.Patch
	if e.File != "" {
		s += ": " + e.File
	}
	if e.Hunk != "" {
		s += ": hunk " + e.Hunk
	}
	if e.Func != "" {
		s += " in " + e.Func + "()"
	}
	return s + ": " + e.Msg
}

var funcRe = regexp.MustCompile(`([A-Za-z_]\w*)\s*\(`)

// hunkFunc names the function of a hunk's header context, "" when there is none.
func hunkFunc(h *gitdiff.TextFragment) string {
	if m := funcRe.FindStringSubmatch(h.Comment); m != nil {
		return m[1]
	}
	return ""
}

// absentFunc is "; this tree has no f()" when the file lacks the hunk's function.
func absentFunc(file []byte, f string) string {
	if f == "" || regexp.MustCompile(`\b`+regexp.QuoteMeta(f)+`\s*\(`).Match(file) {
		return ""
	}
	return "; this tree has no " + f + "() (was the patch written for another kernel version?)"
}

// FaultKind: a patch that does not parse or apply is bad input.
func (e *Error) FaultKind() fault.Kind { return fault.Input }

var (
	mboxFromRe = regexp.MustCompile(`^From \S+ +\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}`)
	hunkRe     = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@`)
)

// Load reads a patch file: a diff, a format-patch email, or an mbox of
// several messages (each becomes one Patch, in order).
func Load(path string) ([]*Patch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Patch: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

// Parse is Load on bytes; name is used in messages.
func Parse(name string, data []byte) ([]*Patch, error) {
	msgs := splitMbox(data)
	var out []*Patch
	for i, m := range msgs {
		src := name
		if len(msgs) > 1 {
			src = fmt.Sprintf("%s (message %d)", name, i+1)
		}
		p, err := parseMessage(src, m)
		if err != nil {
			return nil, err
		}
		if p != nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, &Error{Patch: name, Msg: "no diff found (want a unified diff, a git format-patch file or an mbox with diffs)"}
	}
	return out, nil
}

func splitMbox(data []byte) [][]byte {
	var msgs [][]byte
	var cur bytes.Buffer
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if mboxFromRe.Match(l) && cur.Len() > 0 {
			msgs = append(msgs, append([]byte(nil), cur.Bytes()...))
			cur.Reset()
		}
		cur.Write(l)
	}
	return append(msgs, cur.Bytes())
}

// parseMessage extracts the file diffs of one message, repairing mangled
// context lines and dropping a file diff that repeats an earlier one.
func parseMessage(src string, msg []byte) (*Patch, error) {
	p := &Patch{Source: src}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(msg))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimSuffix(sc.Text(), "\r"))
	}
	var sections []string
	seen := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if p.Subject == "" && strings.HasPrefix(l, "Subject: ") {
			p.Subject = strings.TrimPrefix(l, "Subject: ")
		}
		start := -1
		if strings.HasPrefix(l, "diff --git ") {
			start = i
		} else if strings.HasPrefix(l, "--- ") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "+++ ") {
			start = i
		}
		if start < 0 {
			continue
		}
		var sec []string
		// Header: up to and including "+++ ", or a git header without hunks
		// (rename, mode change) that ends at the next non-header line.
		j := i
		for ; j < len(lines); j++ {
			if j > i && strings.HasPrefix(lines[j], "diff --git ") {
				break
			}
			if hunkRe.MatchString(lines[j]) {
				break
			}
			sec = append(sec, lines[j])
			if strings.HasPrefix(lines[j], "+++ ") {
				j++
				break
			}
		}
		if !strings.HasPrefix(sec[0], "diff --git ") && (j >= len(lines) || !hunkRe.MatchString(lines[j])) {
			// "--- " then "+++ " without a hunk is prose (a quoted line, a signature
			// dash), not a diff: only a git header may stand without hunks.
			continue
		}
		for j < len(lines) {
			m := hunkRe.FindStringSubmatch(lines[j])
			if m == nil {
				break
			}
			hdr := len(sec)
			comment := strings.TrimPrefix(lines[j], m[0]) // the function context, kept when counts are fixed
			sec = append(sec, lines[j])
			oldN, newN := count(m[2]), count(m[4])
			oldSeen, newSeen := 0, 0
			j++
			for j < len(lines) && (oldN > 0 || newN > 0) {
				hl := lines[j]
				if hunkRe.MatchString(hl) || strings.HasPrefix(hl, "diff --git ") || hl == "--" || hl == "-- " {
					// The hunk ends before its counts are used up: the mailer
					// dropped lines (blank context lines vanish with the
					// whitespace). Fix the counts to what is there; Apply
					// places such a hunk by its non-blank lines.
					p.Mangled = true
					sec[hdr] = fmt.Sprintf("@@ -%s,%d +%s,%d @@%s", m[1], oldSeen, m[3], newSeen, comment)
					oldN, newN = 0, 0
					break
				}
				switch {
				case strings.HasPrefix(hl, "+"):
					newSeen++
				case strings.HasPrefix(hl, "-"):
					oldSeen++
				case strings.HasPrefix(hl, `\`):
				default:
					oldSeen++
					newSeen++
				}
				switch {
				case strings.HasPrefix(hl, "+"):
					newN--
				case strings.HasPrefix(hl, "-"):
					oldN--
				case strings.HasPrefix(hl, `\`):
				case strings.HasPrefix(hl, " "):
					oldN--
					newN--
				default:
					// A context line whose leading space the mailer ate.
					hl = " " + hl
					p.Mangled = true
					oldN--
					newN--
				}
				sec = append(sec, hl)
				j++
			}
			if j < len(lines) && strings.HasPrefix(lines[j], `\ No newline`) {
				sec = append(sec, lines[j])
				j++
			}
			if oldN > 0 || newN > 0 {
				return nil, &Error{Patch: src, Hunk: m[0], Msg: "hunk is truncated: the message ends before the hunk's line counts are used up"}
			}
		}
		i = j - 1
		if !strings.HasPrefix(sec[0], "diff --git ") {
			sec = gitHeader(sec)
		}
		text := strings.Join(sec, "\n") + "\n"
		// A thread page may hold the same message twice, the second copy
		// running into the page footer. A git diff's "index old..new" line
		// identifies the change; other diffs are compared whole.
		key := text
		if len(sec) > 1 && strings.HasPrefix(sec[0], "diff --git ") && strings.HasPrefix(sec[1], "index ") {
			key = sec[0] + "\n" + sec[1]
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		sections = append(sections, text)
	}
	if len(sections) == 0 {
		return nil, nil
	}
	p.Text = []byte(strings.Join(sections, ""))
	files, _, err := gitdiff.Parse(bytes.NewReader(p.Text))
	if err != nil {
		return nil, &Error{Patch: src, Msg: "cannot parse diff: " + err.Error()}
	}
	if len(files) == 0 {
		return nil, nil
	}
	p.Files = files
	for _, n := range p.Paths() {
		if _, err := treepath.Clean(n); err != nil {
			return nil, &Error{Patch: src, File: n, Msg: err.Error()}
		}
	}
	return p, nil
}

func count(s string) int {
	if s == "" {
		return 1
	}
	n, _ := strconv.Atoi(s)
	return n
}

// Apply applies the patches in order to the tree at dir with git apply.
// On failure it returns an *Error naming the file, the hunk and the first
// mismatching line, and the tree is as it was before: a series whose third
// patch fails leaves no trace of the first two. Every path a patch touches
// must resolve inside dir (after symlinks), or nothing is applied.
func Apply(ctx context.Context, dir string, patches []*Patch) (err error) {
	for _, p := range patches {
		for _, n := range p.Paths() {
			if _, err := treepath.Resolve(dir, n); err != nil {
				return &Error{Patch: p.Source, File: n, Msg: err.Error()}
			}
		}
	}
	snap, err := snapshot(dir, patches)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rerr := snap.restore(); rerr != nil {
				err = fmt.Errorf("%w; restoring the tree after it: %v", err, rerr)
			}
		}
	}()
	tmp, err := os.MkdirTemp("", "reprolab-patch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for i, p := range patches {
		pf := filepath.Join(tmp, fmt.Sprintf("%04d.patch", i))
		if err := os.WriteFile(pf, p.Text, 0o644); err != nil {
			return err
		}
		if p.Mangled {
			if err := applyLoose(dir, p); err != nil {
				return err
			}
			continue
		}
		args := []string{"apply", "--whitespace=nowarn", "-p1"}
		cmd := exec.CommandContext(ctx, "git", append(args, pf)...)
		cmd.Dir = dir
		// Outside a repository git apply works like patch(1); make sure a
		// repository above the cache never captures it.
		cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir), "GIT_DIR=/nonexistent")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return explain(dir, p, string(out))
		}
	}
	return nil
}

// saved is the tree's content, before Apply, of every file the patches name.
type saved struct {
	dir   string
	files map[string][]byte // nil: the file did not exist
	modes map[string]os.FileMode
}

func snapshot(dir string, patches []*Patch) (*saved, error) {
	s := &saved{dir: dir, files: map[string][]byte{}, modes: map[string]os.FileMode{}}
	for _, p := range patches {
		for _, n := range p.Paths() {
			if _, ok := s.files[n]; ok {
				continue
			}
			path := filepath.Join(dir, n)
			data, err := os.ReadFile(path)
			switch {
			case err == nil:
				fi, _ := os.Stat(path)
				s.files[n], s.modes[n] = data, fi.Mode().Perm()
			case os.IsNotExist(err):
				s.files[n] = nil
			default:
				return nil, err
			}
		}
	}
	return s, nil
}

// restore puts every saved file back and removes those the patches created.
func (s *saved) restore() error {
	var errs []error
	for n, data := range s.files {
		path := filepath.Join(s.dir, n)
		if data == nil {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
			continue
		}
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.WriteFile(path, data, s.modes[n]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var failedRe = regexp.MustCompile(`error: patch failed: (.+):(\d+)`)

func explain(dir string, p *Patch, out string) error {
	e := &Error{Patch: p.Source, Msg: "does not apply: " + strings.TrimSpace(out)}
	m := failedRe.FindStringSubmatch(out)
	if m == nil {
		if mm := regexp.MustCompile(`error: (\S+): No such file or directory`).FindStringSubmatch(out); mm != nil {
			e.File, e.Msg = mm[1], "does not apply: the file does not exist in this tree"
		}
		return e
	}
	e.File = m[1]
	line, _ := strconv.Atoi(m[2])
	for _, f := range p.Files {
		if f.OldName != e.File {
			continue
		}
		for _, h := range f.TextFragments {
			if int(h.OldPosition) != line {
				continue
			}
			e.Hunk = fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldPosition, h.OldLines, h.NewPosition, h.NewLines)
			e.Func = hunkFunc(h)
			e.Msg = firstMismatch(filepath.Join(dir, e.File), h, p.Mangled)
			if data, err := os.ReadFile(filepath.Join(dir, e.File)); err == nil {
				e.Msg += absentFunc(data, e.Func)
			}
		}
	}
	return e
}

// firstMismatch compares the lines the hunk expects with the file at the
// hunk's position.
func firstMismatch(path string, h *gitdiff.TextFragment, loose bool) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "does not apply: " + err.Error()
	}
	have := strings.Split(string(data), "\n")
	n := int(h.OldPosition) - 1
	norm := func(s string) string {
		s = strings.TrimRight(s, "\n")
		if loose {
			return strings.Join(strings.Fields(s), " ")
		}
		return s
	}
	for _, l := range h.Lines {
		if l.Op == gitdiff.OpAdd {
			continue
		}
		if n < 0 || n >= len(have) {
			return fmt.Sprintf("does not apply: the file has %d lines, the hunk expects line %d: %q", len(have), n+1, norm(l.Line))
		}
		if norm(have[n]) != norm(l.Line) {
			return fmt.Sprintf("does not apply: first mismatch at line %d: the patch expects %q, the file has %q", n+1, norm(l.Line), norm(have[n]))
		}
		n++
	}
	return "does not apply at this position (git apply could not place the hunk)"
}

func norm(s string) string { return strings.Join(strings.Fields(s), " ") }

// applyLoose applies a patch whose whitespace a mailer destroyed: each hunk
// is placed where its context and removed lines match the file's non-blank
// lines (whitespace-insensitive), nearest to the hunk's stated position;
// added lines take the indentation of the line that follows them.
func applyLoose(dir string, p *Patch) error {
	for _, f := range p.Files {
		if f.IsNew || f.IsDelete || f.IsRename {
			return &Error{Patch: p.Source, File: f.NewName, Msg: "a whitespace-mangled patch can only modify existing files"}
		}
		path := filepath.Join(dir, f.OldName)
		data, err := os.ReadFile(path)
		if err != nil {
			return &Error{Patch: p.Source, File: f.OldName, Msg: "does not apply: the file does not exist in this tree"}
		}
		lines := strings.Split(string(data), "\n")
		from, shift := 0, 0
		for _, h := range f.TextFragments {
			hunk := fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldPosition, h.OldLines, h.NewPosition, h.NewLines)
			want := int(h.OldPosition) - 1 + shift
			best := -1
			for i := from; i < len(lines); i++ {
				if _, ok := matchAt(lines, i, h); ok && (best < 0 || abs(i-want) < abs(best-want)) {
					best = i
				}
			}
			if best < 0 {
				fn := hunkFunc(h)
				return &Error{Patch: p.Source, File: f.OldName, Hunk: hunk, Func: fn, Msg: looseMismatch(lines, want, h) + absentFunc(data, fn)}
			}
			var out []string
			k := best
			for _, l := range h.Lines {
				if l.Op == gitdiff.OpAdd {
					out = append(out, indentOf(lines, k)+strings.TrimSpace(l.Line))
					continue
				}
				for norm(lines[k]) == "" {
					out = append(out, lines[k])
					k++
				}
				if l.Op == gitdiff.OpContext {
					out = append(out, lines[k])
				}
				k++
			}
			lines = append(lines[:best], append(out, lines[k:]...)...)
			from = best + len(out)
			shift += len(out) - (k - best)
		}
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// matchAt reports whether the hunk's old side matches the non-blank lines
// from i on.
func matchAt(lines []string, i int, h *gitdiff.TextFragment) (int, bool) {
	k := i
	for _, l := range h.Lines {
		if l.Op == gitdiff.OpAdd {
			continue
		}
		o := norm(l.Line)
		if o == "" {
			continue
		}
		for k < len(lines) && norm(lines[k]) == "" {
			k++
		}
		if k >= len(lines) || norm(lines[k]) != o {
			return k, false
		}
		k++
	}
	return k, true
}

func looseMismatch(lines []string, want int, h *gitdiff.TextFragment) string {
	if want < 0 {
		want = 0
	}
	k := want
	for _, l := range h.Lines {
		if l.Op == gitdiff.OpAdd || norm(l.Line) == "" {
			continue
		}
		for k < len(lines) && norm(lines[k]) == "" {
			k++
		}
		if k >= len(lines) {
			return fmt.Sprintf("does not apply: the file ends before the hunk's line %q", norm(l.Line))
		}
		if norm(lines[k]) != norm(l.Line) {
			return fmt.Sprintf("does not apply anywhere in the file (whitespace ignored); first mismatch at line %d: the patch expects %q, the file has %q", k+1, norm(l.Line), norm(lines[k]))
		}
		k++
	}
	return "does not apply anywhere in the file (whitespace ignored)"
}

func indentOf(lines []string, k int) string {
	for ; k < len(lines); k++ {
		if t := strings.TrimLeft(lines[k], " \t"); t != "" {
			return lines[k][:len(lines[k])-len(t)]
		}
	}
	return ""
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// gitHeader turns a traditional diff header (`--- linux.orig/mm/x.c DATE`,
// `+++ linux/mm/x.c DATE`, or names without a leading folder) into a git
// one, so that git apply and the parser agree on the path in the tree.
func gitHeader(sec []string) []string {
	name := func(l string) string {
		n := strings.TrimSpace(l[4:])
		if i := strings.IndexByte(n, '\t'); i >= 0 {
			n = n[:i]
		}
		if n == "/dev/null" {
			return n
		}
		if _, rest, ok := strings.Cut(n, "/"); ok {
			return rest // -p1, as kernel patches are made
		}
		return n
	}
	var oldN, newN string
	var rest []string
	for k, l := range sec {
		switch {
		case strings.HasPrefix(l, "--- ") && oldN == "":
			oldN = name(l)
		case strings.HasPrefix(l, "+++ ") && newN == "":
			newN = name(l)
			rest = sec[k+1:]
		}
		if newN != "" {
			break
		}
	}
	path := newN
	if path == "/dev/null" {
		path = oldN
	}
	out := []string{"diff --git a/" + path + " b/" + path}
	switch {
	case oldN == "/dev/null":
		out = append(out, "new file mode 100644", "--- /dev/null")
	case newN == "/dev/null":
		out = append(out, "deleted file mode 100644", "--- a/"+path)
	default:
		out = append(out, "--- a/"+path)
	}
	if newN == "/dev/null" {
		out = append(out, "+++ /dev/null")
	} else {
		out = append(out, "+++ b/"+path)
	}
	return append(out, rest...)
}
