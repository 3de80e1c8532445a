package matrix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/render"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/store"
)

// fakeRun stands in for repro.Run where the test is about what the matrix records, not
// about guests: it writes the artifacts a run leaves and crashes when the probe is on.
func fakeRun(ctx context.Context, cfg repro.Config) (*repro.Result, error) {
	dir := filepath.Join(cfg.ResultsDir, cfg.RunID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(dir, "console.log"), []byte("booted "+cfg.RunID+"\n"), 0o644)
	t0 := time.Now()
	r := &repro.Result{RunID: cfg.RunID, Dir: dir, Arch: "x86_64", Accel: "tcg", Kernel: cfg.Kernel, Host: "test",
		Cmdline: strings.Join(cfg.Cmdline, " "), Started: t0, Finished: t0.Add(40 * time.Second), BootSeconds: 9, LoopSeconds: 30, Iterations: 3}
	if strings.Contains(r.Cmdline, "=100") {
		os.WriteFile(filepath.Join(dir, "report-1.txt"), []byte("sysrq: Trigger a crash\n"), 0o644)
		r.Outcome, r.Reproduced, r.CrashedIter, r.TimeToCrash, r.Iterations = repro.Crashed, true, 2, 12.5, 1
		r.Crashes = []repro.Crash{{Title: "sysrq: Trigger a crash", Type: "SYSRQ", Signature: "sig-sysrq", File: "report-1.txt"}}
	} else {
		r.Outcome = repro.Survived
	}
	return r, r.WriteMeta()
}

// TestResumeV1Database: a results database written by the schema-1 matrix (commit
// e326219; ../store/testdata/v1) opens, upgrades, reports what it had, and resumes:
// the run SIGKILL left "running" is discarded with its folder and redone, the three
// finished ones are kept, and the report then shows the complete matrix.
func TestResumeV1Database(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	t.Setenv("REPROLAB_CACHE", cache)
	os.MkdirAll(filepath.Join(cache, "v1"), 0o755)
	os.WriteFile(filepath.Join(cache, "v1", "vmlinuz-fake"), []byte("not a kernel"), 0o644)
	results := t.TempDir()
	db, err := os.ReadFile("../store/testdata/v1/reprolab.db")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(results, store.DefaultFile), db, 0o644)
	killed := filepath.Join(results, "v1-x86_64_fake_default_p100_none_plain-r2")
	os.MkdirAll(killed, 0o755)
	os.WriteFile(filepath.Join(killed, "console.log"), []byte("booting"), 0o644)

	st, err := store.Open(ctx, results)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := BuildReport(ctx, st, "v1", results)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cells) != 2 || rep.Cells[0].Stats.Runs != 2 || rep.Cells[1].Stats.Runs != 1 || rep.Cells[1].Stats.Crashes != 1 ||
		rep.Cells[1].Verdict != render.Incomplete || len(rep.Cells[1].Runs[0].Crashes) != 1 {
		t.Fatalf("report before resuming: %s", verdicts(rep))
	}
	s, err := Load("../store/testdata/v1/matrix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(ctx, Options{Spec: s, Store: st, ResultsDir: results, Jobs: 1, Run: fakeRun})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Kept != 3 || sum.Discarded != 1 || sum.Ran != 1 || sum.Crashes != 1 {
		t.Fatalf("resume summary %+v, want 3 kept, 1 discarded, 1 ran (crashed)", *sum)
	}
	if data, _ := os.ReadFile(filepath.Join(killed, "console.log")); string(data) == "booting" {
		t.Error("the killed run's partial folder was not replaced")
	}
	rep, err = BuildReport(ctx, st, "v1", results)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Runs != 4 || rep.Totals.Crashes != 2 || rep.Cells[1].Verdict != render.Pass {
		t.Fatalf("report after resuming: %+v, %s", rep.Totals, verdicts(rep))
	}
	// A second invocation has nothing left to do.
	sum, err = Run(ctx, Options{Spec: s, Store: st, ResultsDir: results, Jobs: 1, Run: fakeRun})
	if err != nil || sum.Kept != 4 || sum.Ran != 0 || sum.Discarded != 0 {
		t.Fatalf("third invocation: %+v %v", sum, err)
	}
}

func verdicts(rep *render.Report) string {
	var b strings.Builder
	for _, c := range rep.Cells {
		fmt.Fprintf(&b, "%s=%s/%d runs ", c.ID, c.Verdict, c.Stats.Runs)
	}
	return b.String()
}
