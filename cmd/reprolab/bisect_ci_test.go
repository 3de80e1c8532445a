package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ciHistory is the part of `make ci-history`'s record (REPROLAB_CI_HISTORY_JSON,
// lab/cihistory) the bisection tests read.
type ciHistory struct {
	Repo       string `json:"repo"`
	Base       string `json:"base"`
	Bad        string `json:"bad"`
	Fix        string `json:"fix"`
	LastBad    string `json:"last_bad"`
	Head       string `json:"head"`
	Reproducer string `json:"reproducer"`
	KernelSpec string `json:"kernel_spec"`
}

func loadCIHistory(t *testing.T) *ciHistory {
	t.Helper()
	p := os.Getenv("REPROLAB_CI_HISTORY_JSON")
	if p == "" {
		t.Skip("REPROLAB_CI_HISTORY_JSON unset: run `make ci-history` (the synthetic history on the CI kernel tree)")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("CI history %s: %v: run `make ci-history`", p, err)
	}
	var h ciHistory
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatalf("CI history %s: %v", p, err)
	}
	return &h
}

// ciBisect is the command line of a CI bisection: a short loop budget, 6 crashes to
// measure λ at the crashing end (λ_low ≈ 0.37 λ̂, where 3 crashes give 0.21 λ̂ and clean
// steps nearly twice as long: TCG timing makes the injected crash come every 5–45 s), and
// c = 0.9, so a clean step needs one to three minutes of looping.
func ciBisect(h *ciHistory, results string, extra ...string) []string {
	return append([]string{"bisect", "--repro", h.Reproducer, "--git", h.Repo, "--kernel-spec", h.KernelSpec, "--results", results,
		"--end-crashes", "6", "--confidence", "0.9", "--duration", "90s", "--name", "ci"}, extra...)
}

type bisectJSON struct {
	Culprit *struct {
		Hash, Subject string
	} `json:"culprit"`
	Stopped string `json:"stopped"`
	Steps   []struct {
		Commit, Subject, Verdict string
		Runs, Crashes            int
		LoopMinutes              float64 `json:"loop_minutes"`
		BuildMinutes             float64 `json:"build_minutes"`
	} `json:"steps"`
}

func readBisect(t *testing.T, results string) *bisectJSON {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(results, "bisect-ci", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r bisectJSON
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Steps {
		t.Logf("step %.12s %-40.40s %-5s runs %d crashes %d loop %.1f min build %.1f min", s.Commit, s.Subject, s.Verdict, s.Runs, s.Crashes, s.LoopMinutes, s.BuildMinutes)
	}
	return &r
}

// TestBisectCI: a cause bisection on the synthetic history of the CI kernel tree, SIGKILLed
// while its first step inside the range runs, then resumed by the same command: it names
// the commit that injected the crash.
func TestBisectCI(t *testing.T) {
	h := loadCIHistory(t)
	results := t.TempDir()
	args := ciBisect(h, results, "--good", h.Base, "--bad", h.LastBad)
	cmd := exec.Command(binary, args...)
	cmd.Dir = "../.."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "bisect: bisect: ") && strings.Contains(line, ": trial ") {
			// The first trial inside the range has started: let it boot, then kill all.
			time.Sleep(5 * time.Second)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the bisection ended before a step inside the range ran")
	}
	code, _, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("resumed bisection: exit %d\n%s", code, tail(errOut, 40))
	}
	if !strings.Contains(errOut, "resuming from") || !strings.Contains(errOut, "interrupted run(s) discarded") {
		t.Errorf("the second invocation did not resume:\n%s", tail(errOut, 40))
	}
	r := readBisect(t, results)
	if r.Culprit == nil || r.Culprit.Hash != h.Bad {
		t.Fatalf("culprit %+v, want %s (stopped: %s)", r.Culprit, h.Bad, r.Stopped)
	}
	for _, f := range []string{"report.md", "bisect.log", "culprit.txt"} {
		if _, err := os.Stat(filepath.Join(results, "bisect-ci", f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
}

// TestBisectFixCI: a fix bisection from the last crashing commit to the head names the fix.
func TestBisectFixCI(t *testing.T) {
	h := loadCIHistory(t)
	results := t.TempDir()
	code, _, errOut := runCLI(t, ciBisect(h, results, "--fix", "--bad", h.LastBad, "--good", h.Head)...)
	if code != 0 {
		t.Fatalf("fix bisection: exit %d\n%s", code, tail(errOut, 40))
	}
	r := readBisect(t, results)
	if r.Culprit == nil || r.Culprit.Hash != h.Fix {
		t.Fatalf("fix %+v, want %s (stopped: %s)", r.Culprit, h.Fix, r.Stopped)
	}
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
