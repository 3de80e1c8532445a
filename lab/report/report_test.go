package report

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Test data: testdata/linux/*.txt, one real console log each (see testdata/README.md),
// preceded by a header of expectations and an empty line:
//
//	# free-form comments: where the log came from
//	TITLE: BUG: unable to handle kernel NULL pointer dereference in rl_read_field
//	TYPE: NULL-deref
//	CORRUPTED: N
//	FRAMES: rl_read_field rl_null_deref rl_write
//
// One TITLE line per report, in log order; TYPE, CORRUPTED and FRAMES (the guilty frame
// and the next reliable ones, at most 3) refer to the TITLE above them. A header without
// TITLE lines means the log holds no report.
//
// -update rewrites the headers from what Parse returns now, keeping comments; review the
// diff before committing it.
var update = flag.Bool("update", false, "rewrite testdata headers from current results")

type want struct {
	title, typ, frames string
	corrupted          bool
}

type testCase struct {
	path     string
	comments []string
	wants    []want
	log      []byte
}

func readCase(t testing.TB, path string) *testCase {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCase{path: path}
	sep := bytes.Index(data, []byte("\n\n"))
	if sep < 0 {
		t.Fatalf("%s: no empty line after the header", path)
	}
	tc.log = data[sep+2:]
	s := bufio.NewScanner(bytes.NewReader(data[:sep]))
	for s.Scan() {
		l := s.Text()
		key, val, _ := strings.Cut(l, ": ")
		switch {
		case strings.HasPrefix(l, "#"):
			tc.comments = append(tc.comments, l)
		case key == "TITLE":
			tc.wants = append(tc.wants, want{title: val})
		case len(tc.wants) == 0:
			t.Fatalf("%s: %q before any TITLE", path, l)
		case key == "TYPE":
			tc.wants[len(tc.wants)-1].typ = val
		case key == "CORRUPTED":
			tc.wants[len(tc.wants)-1].corrupted = val == "Y"
		case key == "FRAMES":
			tc.wants[len(tc.wants)-1].frames = val
		default:
			t.Fatalf("%s: unknown header line %q", path, l)
		}
	}
	return tc
}

func topFrames(r *Report) string {
	var out []string
	if r.Guilty < 0 {
		return ""
	}
	for _, f := range r.Frames[r.Guilty:] {
		if f.Unreliable || f.Inlined {
			continue
		}
		out = append(out, cleanFunc(f.Func))
		if len(out) == 3 {
			break
		}
	}
	return strings.Join(out, " ")
}

func writeCase(t *testing.T, tc *testCase, rs []*Report) {
	var b bytes.Buffer
	for _, c := range tc.comments {
		fmt.Fprintln(&b, c)
	}
	for _, r := range rs {
		yn := "N"
		if r.Corrupted {
			yn = "Y"
		}
		fmt.Fprintf(&b, "TITLE: %s\nTYPE: %s\nCORRUPTED: %s\n", r.Title, r.Type, yn)
		if f := topFrames(r); f != "" {
			fmt.Fprintf(&b, "FRAMES: %s\n", f)
		}
	}
	b.WriteString("\n")
	b.Write(tc.log)
	if err := os.WriteFile(tc.path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func cases(t testing.TB) []string {
	paths, err := filepath.Glob("testdata/linux/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test data: %v", err)
	}
	return paths
}

func TestParse(t *testing.T) {
	for _, path := range cases(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			tc := readCase(t, path)
			rs := Parse(tc.log)
			if *update {
				writeCase(t, tc, rs)
				return
			}
			if len(rs) != len(tc.wants) {
				for _, r := range rs {
					t.Logf("got %q", r.Title)
				}
				t.Fatalf("got %d reports, want %d", len(rs), len(tc.wants))
			}
			for i, w := range tc.wants {
				r := rs[i]
				if r.Title != w.title {
					t.Errorf("report %d: title %q, want %q", i, r.Title, w.title)
				}
				if string(r.Type) != w.typ {
					t.Errorf("report %d: type %q, want %q", i, r.Type, w.typ)
				}
				if r.Corrupted != w.corrupted {
					t.Errorf("report %d: corrupted %v (%s), want %v", i, r.Corrupted, r.CorruptedReason, w.corrupted)
				}
				if f := topFrames(r); f != w.frames {
					t.Errorf("report %d: frames %q, want %q", i, f, w.frames)
				}
				checkExtent(t, tc.log, r)
				// A one-line report names no arch; nor does KCSAN, with no registers and
				// stacks that may hold only kthread and ret_from_fork.
				if want := archFromName(path); r.Arch != want && r.Type != Reboot && r.Type != NetdevLeak && r.Type != KCSAN {
					t.Errorf("report %d: arch %q, want %q", i, r.Arch, want)
				}
				if i > 0 && r.Start < rs[i-1].End && !r.Corrupted && !rs[i-1].Corrupted {
					t.Errorf("report %d starts at %d, inside report %d (ends %d)", i, r.Start, i-1, rs[i-1].End)
				}
			}
			if got := ContainsCrash(tc.log); got != (len(tc.wants) > 0) {
				t.Errorf("ContainsCrash = %v with %d reports", got, len(tc.wants))
			}
		})
	}
}

// checkExtent: Start/End point at the report's own bytes, the text starts with the
// report's first line, and it holds the lines the title was made from.
func checkExtent(t *testing.T, log []byte, r *Report) {
	t.Helper()
	if r.Start < 0 || r.End > len(log) || r.Start >= r.End {
		t.Fatalf("bad extent %d..%d of %d", r.Start, r.End, len(log))
	}
	if !bytes.Equal(r.Text, log[r.Start:r.End]) {
		t.Errorf("Text is not log[Start:End]")
	}
	if r.Start > 0 && log[r.Start-1] != '\n' {
		t.Errorf("report does not start at a line start")
	}
	if r.Guilty >= 0 && !bytes.Contains(r.Text, []byte(r.Frames[r.Guilty].Func)) {
		t.Errorf("guilty frame %q not in report text", r.Frames[r.Guilty].Func)
	}
}

// archFromName: test files are named after the guest's arch (x86-*, arm64-*,
// v4.11-x86_64-*, v4.11-arm64-*).
func archFromName(path string) string {
	if strings.Contains(filepath.Base(path), "arm64") {
		return "arm64"
	}
	return "x86_64"
}
