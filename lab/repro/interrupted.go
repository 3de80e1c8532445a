package repro

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/reprolab/reprolab/lab/tmpdir"
)

// ownerNote is the file in a run's scratch dir that names its results dir, so the scratch
// sweep of a later run can finish the record of a run that was SIGKILLed.
const ownerNote = "results-dir"

// noteOwner leaves the note; a failure only costs the later repair.
func (r *run) noteOwner() {
	abs, err := filepath.Abs(r.res.Dir)
	if err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(r.scratch, ownerNote), []byte(abs+"\n"), 0o600)
}

// sweepStale removes dead runs' scratch dirs and marks their meta.json interrupted.
func (r *run) sweepStale() {
	var errs []error
	_, err := tmpdir.SweepWith(func(dir string, pid int) {
		if fixed, err := MarkInterrupted(dir, pid); err != nil {
			errs = append(errs, err)
		} else if fixed != "" {
			r.say("sweep: run %s was killed (pid %d gone): marked interrupted", filepath.Base(fixed), pid)
		}
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, err := range errs {
		r.say("warning: sweeping stale scratch dirs: %v", err)
	}
}

// MarkInterrupted finishes the record of the dead run whose scratch dir is scratch: a
// meta.json still saying "running" becomes "interrupted" with what the run dir shows —
// the iterations completed (guest.log's last "### iteration N" header means N-1 ended)
// and the time of its last console or guest output as the finish time. It returns the run
// dir it fixed, "" when there was nothing to fix.
func MarkInterrupted(scratch string, pid int) (string, error) {
	note, err := os.ReadFile(filepath.Join(scratch, ownerNote))
	if err != nil {
		return "", nil // not a run's scratch dir, or killed before it said whose it was
	}
	dir := string(bytes.TrimSpace(note))
	res, err := ReadMeta(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return "", nil // the user removed the results
		}
		return "", fmt.Errorf("run %s: %w", dir, err)
	}
	if res.Outcome != Running {
		return "", nil
	}
	res.Outcome = Interrupted
	res.Error = fmt.Sprintf("reprolab (pid %d) died during the run without finishing it (SIGKILL, OOM or a host crash); marked by a later run's scratch sweep", pid)
	last := res.Started
	for _, f := range []string{"console.log", "guest.log"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.ModTime().After(last) {
			last = st.ModTime()
		}
	}
	res.Finished = last.UTC()
	if started, ok := lastIteration(filepath.Join(dir, "guest.log")); ok && started-1 > res.Iterations {
		res.Iterations = started - 1
	}
	if err := res.WriteMeta(); err != nil {
		return "", fmt.Errorf("run %s: marking interrupted: %w", dir, err)
	}
	return dir, nil
}

// lastIteration is the number of the last iteration guest.log says was started.
func lastIteration(guestLog string) (int, bool) {
	f, err := os.Open(guestLog)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	n, ok := 0, false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, found := bytes.CutPrefix(sc.Bytes(), []byte("### iteration ")); found {
			if i, err := strconv.Atoi(string(bytes.TrimSpace(rest))); err == nil {
				n, ok = i, true
			}
		}
	}
	return n, ok
}
