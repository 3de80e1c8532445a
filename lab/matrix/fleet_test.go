package matrix

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/store/storetest"
)

// The CI matrix on a real PostgreSQL with two real workers: one is SIGKILLed while it
// holds a trial (its guest dies with it), the other finishes everything, the killed
// trial once its lease has expired. The totals equal an uninterrupted run: every trial
// finished exactly once, none lost, none doubled, every artifact in the shared results.
func TestFleetMatrix(t *testing.T) {
	requireGuests(t)
	dsn := storetest.DSN(t, "postgres")
	results := t.TempDir()
	bin := buildCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = repoRoot
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
		return cmd, &out
	}
	// The lease is short so the test sees a takeover; each trial's limit is cut under it.
	worker := func(name string) (*exec.Cmd, *bytes.Buffer) {
		return start("worker", "--db", dsn, "--results", results, "--slots", "1", "--lease", "150s", "--poll", "200ms")
	}
	follow, followOut := start("matrix", "reproducers/ci-smoke", "--db", dsn, "--results", results, "--runs", "1", "--wait")

	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	victim, victimOut := worker("victim")
	held := waitRunning(t, ctx, st)
	t.Logf("SIGKILL the worker holding %s", held)
	pids := append(childPids(victim.Process.Pid), victim.Process.Pid)
	_ = syscall.Kill(-victim.Process.Pid, syscall.SIGKILL)
	_ = victim.Wait()
	checkGone(t, pids)

	survivor, survivorOut := worker("survivor")
	if err := follow.Wait(); err != nil {
		t.Fatalf("matrix --wait: %v\n%s\nvictim:\n%s\nsurvivor:\n%s", err, followOut, victimOut, survivorOut)
	}
	_ = survivor.Process.Signal(syscall.SIGTERM)
	if err := survivor.Wait(); err == nil || survivor.ProcessState.ExitCode() != 130 {
		t.Errorf("worker after SIGTERM: %v (want exit 130)\n%s", err, survivorOut)
	}

	runs, err := st.Runs(ctx, CampaignID("ci-smoke"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	crashed := 0
	for _, r := range runs {
		if r.State != store.Finished {
			t.Errorf("run %s left %s", r.ID, r.State)
		}
		seen[r.ID]++
		if r.Outcome == string(repro.Crashed) {
			crashed++
			if !strings.Contains(r.Group, "sysrq-crash") {
				t.Errorf("run %s crashed but its cell expects none", r.ID)
			}
		}
	}
	// 5 cells (see reproducers/ci-smoke/matrix.yaml) × 1 run, the same as uninterrupted.
	if len(seen) != 5 || crashed != 1 {
		t.Fatalf("runs %v, %d crashed; want 5 runs once each, 1 crashed\n%s", seen, crashed, followOut)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("run %s counted %d times", id, n)
		}
	}
	checkArtifacts(t, results, runs)
	if !strings.Contains(survivorOut.String(), held+": discarding the run") {
		t.Errorf("the survivor did not take over %s from the killed worker:\n%s", held, survivorOut)
	}
	if _, err := filepath.Glob(filepath.Join(results, "matrix-ci-smoke", "report.md")); err != nil {
		t.Error(err)
	}
}

// Builds are jobs too: a matrix over a kernel built from source (the CI kernel, a cache
// hit in the kbuild cache) hands the build to a worker, which builds it, points the cells
// at it and enqueues their runs; the probe axis still reaches the built probe.
func TestFleetBuiltKernel(t *testing.T) {
	requireGuests(t)
	if p := os.Getenv("REPROLAB_CI_KERNEL_JSON"); p == "" {
		t.Skip("REPROLAB_CI_KERNEL_JSON not set: `make test` builds the CI kernel first (make ci-kernel)")
	} else if _, err := os.Stat(p); err != nil {
		t.Skipf("CI kernel not built: %v", err)
	}
	dsn := storetest.DSN(t, "postgres")
	results := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	worker := exec.CommandContext(ctx, buildCLI(t), "worker", "--db", dsn, "--results", results, "--slots", "2", "--arch", "x86_64", "--poll", "200ms")
	worker.Dir = repoRoot
	var wout bytes.Buffer
	worker.Stdout, worker.Stderr = &wout, &wout
	worker.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-worker.Process.Pid, syscall.SIGKILL); _ = worker.Wait() }()
	out, code := runCLI(t, "matrix", "reproducers/ci-smoke/built-kernel.yaml", "--db", dsn, "--results", results, "--wait")
	// Its cells check the probe, not a crash rate: with no clean rate to judge them by they
	// are "incomplete" (exit 3), never failed or erroneous.
	if code != 0 && (code != 3 || !strings.Contains(out, " 0 fail, 0 error")) {
		t.Fatalf("matrix --wait: exit %d\n%s\nworker:\n%s", code, out, wout.String())
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cid := CampaignID("ci-built-kernel")
	builds, _ := st.Builds(ctx, cid)
	if len(builds) != 1 || !builds[0].Cached || !strings.HasPrefix(builds[0].ID, "kbuild-") {
		t.Fatalf("want one cached kbuild build made by the worker, got %+v\n%s", builds, wout.String())
	}
	cells, _ := st.Cells(ctx, cid)
	for _, c := range cells {
		if c.BuildID != builds[0].ID {
			t.Errorf("cell %s still on build %q, want %s", c.ID, c.BuildID, builds[0].ID)
		}
	}
	runs, _ := st.Runs(ctx, cid)
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2\n%s", len(runs), wout.String())
	}
	for _, r := range runs {
		if r.State != store.Finished || r.Outcome != "survived" {
			t.Errorf("%s: %s %s: %s", r.ID, r.State, r.Outcome, r.Error)
		}
	}
}

// waitRunning waits for a run in progress and returns "<campaign>/<trial>".
func waitRunning(t *testing.T, ctx context.Context, st *store.Store) string {
	t.Helper()
	for {
		runs, err := st.Runs(ctx, CampaignID("ci-smoke"))
		if err == nil {
			for _, r := range runs {
				if r.State == store.Running {
					return r.Campaign + "/" + r.ID
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no trial started")
		case <-time.After(200 * time.Millisecond):
		}
	}
}
