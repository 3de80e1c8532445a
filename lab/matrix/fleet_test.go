package matrix

import (
	"bytes"
	"context"
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
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
