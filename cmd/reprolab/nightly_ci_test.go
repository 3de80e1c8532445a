package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNightlyCI: two nights on a branch of the synthetic CI history. The first records a
// clean head; then the branch moves to the commit that injects the crash, and the second
// night finds the cell newly crashing, bisects between the two heads and names it, exit 1.
// The branch lives in a scratch repository borrowing the history's objects (alternates),
// so the shared history is never written.
func TestNightlyCI(t *testing.T) {
	h := loadCIHistory(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "tracked.git")
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "init", "-q", "--bare", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(repo, "objects", "info", "alternates"), []byte(filepath.Join(h.Repo, "objects")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	parent := git("rev-parse", h.Bad+"^")
	git("update-ref", "refs/heads/main", parent)
	cfg := filepath.Join(dir, "nightly.yaml")
	results := filepath.Join(dir, "results")
	spec := `name: ci
trees:
  - {name: ci, git: ` + repo + `, branch: main}
cells:
  - name: race
    repro: ` + h.Reproducer + `
    kernel_spec: ` + h.KernelSpec + `
    duration: 60s
    runs: 1
bisect: {confidence: 0.9, end_crashes: 6, duration: 90s}
`
	if err := os.WriteFile(cfg, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "nightly", cfg, "--results", results)
	if code != 0 {
		t.Fatalf("first night: exit %d\n%s", code, tail(errOut, 30))
	}
	git("update-ref", "refs/heads/main", h.Bad)
	code, out, errOut := runCLI(t, "nightly", cfg, "--results", results)
	if code != 1 {
		t.Fatalf("second night: exit %d, want 1 (a new crash)\n%s", code, tail(errOut, 30))
	}
	data, err := os.ReadFile(filepath.Join(results, "nightly-ci", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Results []struct {
			Change    string
			Bisection *struct {
				Culprit *struct{ Hash string }
				Stopped string
			}
		}
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Change != "new" || sum.Results[0].Bisection == nil ||
		sum.Results[0].Bisection.Culprit == nil || sum.Results[0].Bisection.Culprit.Hash != h.Bad {
		t.Fatalf("summary %s\n%s", data, out)
	}
}
