package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNightlyCI: two nights on the synthetic CI history. The first records a clean head;
// then the tracked revision moves to the commit that injects the crash, and the second night
// finds the cell newly crashing, bisects between the two heads and names it, exit 1. The
// "branch" is a revision rewritten between the nights, so the shared history is never
// written, and the kept tree is the bisection tests' own (same repository and config).
func TestNightlyCI(t *testing.T) {
	h := loadCIHistory(t)
	dir := t.TempDir()
	rev, err := exec.Command("git", "-C", h.Repo, "rev-parse", h.Bad+"^").Output()
	if err != nil {
		t.Fatal(err)
	}
	parent := strings.TrimSpace(string(rev))
	cfg := filepath.Join(dir, "nightly.yaml")
	results := filepath.Join(dir, "results")
	write := func(head string) {
		t.Helper()
		spec := `name: ci
trees:
  - {name: ci, git: ` + h.Repo + `, branch: ` + head + `}
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
	}
	write(parent)
	code, _, errOut := runCLI(t, "nightly", cfg, "--results", results)
	if code != 0 {
		t.Fatalf("first night: exit %d\n%s", code, tail(errOut, 30))
	}
	write(h.Bad)
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
