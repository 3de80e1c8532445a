// Package tmpdir makes per-run scratch directories that are cleaned up even when the
// process that made them was killed with SIGKILL.
//
// A SIGKILLed orchestrator cannot remove its own directories, so each directory carries
// the creating process's PID in its name and every later reprolab process sweeps the
// directories whose creator is gone. Directories live directly under os.TempDir() with a
// short name because QEMU's unix sockets must fit in sun_path (108 bytes).
package tmpdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const prefix = "reprolab-"

// New makes a fresh directory owned by this process.
func New() (string, error) {
	return os.MkdirTemp(os.TempDir(), fmt.Sprintf("%s%d-", prefix, os.Getpid()))
}

// Sweep removes the scratch directories of reprolab processes that no longer exist and
// returns the ones it removed.
func Sweep() ([]string, error) { return SweepWith(nil) }

// SweepWith is Sweep that first calls visit with each dead owner's directory, while its
// contents are still there: a run leaves a note in its scratch dir saying whose record
// to fix when it cannot finish the record itself.
func SweepWith(visit func(dir string, ownerPID int)) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*-*"))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, dir := range matches {
		pid, ok := ownerPID(filepath.Base(dir))
		if !ok || alive(pid) {
			continue
		}
		if visit != nil {
			visit(dir, pid)
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
