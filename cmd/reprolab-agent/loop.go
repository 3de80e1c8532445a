//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// cmdLoop runs a reproducer's iterations inside the guest: one SSH command for the whole
// loop instead of a session (channel setup, exec, exit status: 127–227 ms under TCG) per
// iteration. Each iteration is /bin/sh -c CMD, started directly (no agent shim in
// between: a Go binary's start costs tens of milliseconds under TCG). Progress goes to
// stdout, one line before and one after each iteration:
//
//	### iteration 3 started
//	### iteration 3: exit 0 in 12.5 ms
//
// The command's own output goes to stderr so it can never split those lines. The loop
// stops after -n iterations or -d of looping (whichever comes first; 0 = no limit) or at
// the first iteration that fails, whose exit status (128+N for a signal) it exits with —
// unless -k: the host reads each exit status and stops the loop itself when a failure is
// not one it tolerates (an OOM kill the spec allows).
// Iterations run in the loop's process group, so the agent's kill of a cancelled
// session's group ends them too.
func cmdLoop(args []string) error {
	fs := flag.NewFlagSet("loop", flag.ContinueOnError)
	n := fs.Int("n", 0, "iterations (0: no limit)")
	d := fs.Duration("d", 0, "duration of the loop (0: no limit)")
	keep := fs.Bool("k", false, "keep going after a failed iteration (the host decides whether it ends the loop)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: loop [-n N] [-d DURATION] COMMAND")
	}
	if *n == 0 && *d == 0 {
		return errors.New("loop: give -n or -d (a loop without a budget never ends)")
	}
	command := fs.Arg(0)
	start := time.Now()
	for i := 1; ; i++ {
		if *n > 0 && i > *n {
			return nil
		}
		if *d > 0 && time.Since(start) >= *d {
			return nil
		}
		fmt.Fprintf(os.Stdout, "### iteration %d started\n", i)
		t := time.Now()
		code, err := runIteration(command)
		el := time.Since(t)
		if err != nil {
			return fmt.Errorf("iteration %d: %w", i, err)
		}
		fmt.Fprintf(os.Stdout, "### iteration %d: exit %d in %.1f ms\n", i, code, float64(el.Microseconds())/1000)
		if code != 0 && !*keep {
			os.Exit(code)
		}
	}
}

func runIteration(command string) (int, error) {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Dir = "/"
	err := cmd.Run()
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1, err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ee.ExitCode(), nil
}
