package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

// Bad input to bisect exits 2 with a clear message before anything is written.
func TestBisectBadInput(t *testing.T) {
	repo := vcstest.New(t, "")
	hs := repo.Linear(5, -1)
	notGit := t.TempDir()
	results := filepath.Join(t.TempDir(), "results")
	repro, err := filepath.Abs("../../reproducers/memcg-writeback-null/repro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/bisect-bad-input.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 3 {
			t.Fatalf("bad testdata line %q", line)
		}
		t.Run(cols[0], func(t *testing.T) {
			args := []string{"bisect", "--repro", repro, "--git", repo.Dir, "--results", results}
			r := strings.NewReplacer("$REPO", repo.Dir, "$NOTGIT", notGit, "$C0", hs[0], "$C1", hs[1], "$C2", hs[2], "$C4", hs[4])
			args = append(args, strings.Fields(r.Replace(cols[1]))...)
			code, out, stderr := runIn(args...)
			if code != 2 || !strings.Contains(stderr, cols[2]) {
				t.Errorf("reprolab %s: exit %d, stderr %q; want 2 and %q", strings.Join(args, " "), code, stderr, cols[2])
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if _, err := os.Stat(results); err == nil {
				t.Errorf("bad input wrote %s", results)
			}
		})
	}
}
