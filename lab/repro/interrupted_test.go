package repro

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/tmpdir"
)

// TestKilledRunMarkedInterrupted SIGKILLs a process in the middle of a run (its meta.json
// says running, guest.log is at iteration 6) and checks that the next run's sweep removes
// its scratch dir and finishes its record as interrupted with the 5 iterations it completed.
func TestKilledRunMarkedInterrupted(t *testing.T) {
	if os.Getenv("REPROLAB_HELPER_RUN_DIR") != "" {
		return // the helper is TestHelperRunning
	}
	t.Setenv("TMPDIR", t.TempDir())
	runDir := filepath.Join(t.TempDir(), "results", "r1")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRunning$")
	cmd.Env = append(os.Environ(), "REPROLAB_HELPER_RUN_DIR="+runDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		_ = cmd.Process.Kill()
		t.Fatalf("helper: %q %v", line, err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	before, _ := ReadMeta(runDir)
	if before == nil || before.Outcome != Running {
		t.Fatalf("helper left %+v, want a running record", before)
	}
	scratch, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("reprolab-%d-*", cmd.Process.Pid)))
	if len(scratch) != 1 {
		t.Fatalf("scratch dirs of the helper: %v", scratch)
	}

	var said strings.Builder
	(&run{cfg: Config{Progress: &said}}).sweepStale()

	res, err := ReadMeta(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Interrupted || res.Iterations != 5 || res.Finished.IsZero() || res.Finished.Before(res.Started) {
		t.Errorf("after the sweep: outcome %s, iterations %d, started %s finished %s; want interrupted, 5, a finish time", res.Outcome, res.Iterations, res.Started, res.Finished)
	}
	if !strings.Contains(res.Error, fmt.Sprint(cmd.Process.Pid)) {
		t.Errorf("error %q does not name the dead pid", res.Error)
	}
	if _, err := os.Stat(scratch[0]); !os.IsNotExist(err) {
		t.Errorf("scratch %s not swept: %v", scratch[0], err)
	}
	if !strings.Contains(said.String(), "marked interrupted") {
		t.Errorf("the sweep said %q", said.String())
	}
	// A second sweep finds nothing; a finished record is never touched.
	finished := *res
	(&run{}).sweepStale()
	if again, _ := ReadMeta(runDir); again.Error != finished.Error || again.Outcome != Interrupted {
		t.Errorf("second sweep changed the record: %+v", again)
	}
}

// TestHelperRunning is the run that gets killed: it does what Run does up to iteration 6.
func TestHelperRunning(t *testing.T) {
	dir := os.Getenv("REPROLAB_HELPER_RUN_DIR")
	if dir == "" {
		t.Skip("helper process for TestKilledRunMarkedInterrupted")
	}
	r := &run{res: &Result{Dir: dir, RunID: "r1", Outcome: Running, Started: time.Now().UTC()}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.res.WriteMeta(); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.scratch, err = tmpdir.New(); err != nil {
		t.Fatal(err)
	}
	r.noteOwner()
	var log strings.Builder
	log.WriteString("### setup 1: shell\n$ true\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&log, "### iteration %d\nok\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "guest.log"), []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
}
