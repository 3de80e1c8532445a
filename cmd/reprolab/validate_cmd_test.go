package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input to validate: a clear message naming the thing, exit 2, and no report
// written. The first cases are refused before anything is opened (not even the results
// folder); the last two need lab/kbuild to look at a (stand-in) tree: the patch is
// applied, and the tree configured, before any compiler runs.
func TestValidateBadInput(t *testing.T) {
	td, _ := filepath.Abs("testdata/validate")
	tree := filepath.Join(td, "tree")
	good := filepath.Join(td, "good.patch")
	for _, tc := range []struct {
		name    string
		args    []string
		want    string
		touches bool // gets as far as opening the results database
	}{
		{"no patch", nil, "no patch to validate", false},
		{"not a patch", []string{"--patch", filepath.Join(td, "prose.mail")}, "no diff found", false},
		{"missing patch file", []string{"--patch", filepath.Join(td, "nope.patch")}, "nope.patch", false},
		{"unknown arch", []string{"--patch", good, "--arch", "x86_64,riscv"}, `--arch "riscv": unknown arch`, false},
		{"confidence 1", []string{"--patch", good, "--confidence", "1"}, "strictly between 0 and 1", false},
		{"confidence negative", []string{"--patch", good, "--confidence", "-0.1"}, "strictly between 0 and 1", false},
		{"budget zero", []string{"--patch", good, "--budget", "0"}, "--budget 0s: must be a positive duration", false},
		{"budget below two trials", []string{"--patch", good, "--budget", "1m"}, "each arch needs at least two trials", false},
		{"budget too small for the rate", []string{"--patch", good, "--budget", "2h", "--baseline-rate", "0.5"}, "about 48.00 h of looping per arch is needed", false},
		{"expect what", []string{"--patch", good, "--expect", "works"}, "want fixed or triggers", false},
		{"patch for another tree", []string{"--patch", filepath.Join(td, "debug-newer-tree.mail")},
			`include/linux/memcontrol.h: hunk @@ -1,6 +1,7 @@: does not apply: first mismatch at line 2: the patch expects "static inline void __mod_lruvec_page_state(struct page *page, int idx, int val)"`, true},
		{"baseline does not build", []string{"--patch", good}, "x86_64: the baseline (source + probes) does not build", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.touches {
				for _, tool := range []string{"gcc", "ld", "make", "flex", "bison", "bc"} {
					if _, err := exec.LookPath(tool); err != nil {
						t.Skipf("%s not installed: lab/kbuild refuses before looking at the tree", tool)
					}
				}
			}
			dir := t.TempDir()
			results := filepath.Join(dir, "results")
			args := append([]string{"validate", "--repro", "memcg-writeback-null", "--reproducers", "../../reproducers",
				"--dir", tree, "--arch", "x86_64", "--results", results, "--cache", filepath.Join(dir, "cache"), "--name", "t"}, tc.args...)
			if tc.name != "unknown arch" {
				// --arch given twice: the last wins, as with any flag.
				args = append(args, "--arch", "x86_64")
			}
			code, out, errs := runIn(args...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 saying %q", code, errs, tc.want)
			}
			if strings.Contains(errs, "goroutine ") || out != "" {
				t.Errorf("a backtrace or a report on stdout:\n%s%s", out, errs)
			}
			if _, err := os.Stat(results); (err == nil) != tc.touches {
				t.Errorf("results folder exists: %v (want %v)", err == nil, tc.touches)
			}
			if _, err := os.Stat(filepath.Join(results, "validate-t")); err == nil {
				t.Error("a report folder was written")
			}
		})
	}
}
