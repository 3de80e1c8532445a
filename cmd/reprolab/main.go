// Command reprolab reproduces Linux kernel bugs in QEMU guests: it builds kernels, boots
// them on x86-64 and arm64, sets up the guest (dm-crypt swap, ext4, memory pressure), loops
// a reproducer under a budget and collects the crash.
//
// Exit codes (see README): 0 survived / success, 1 crashed, 2 bad input, 3 infrastructure
// error, 4 hung, 5 boot failure, 130 interrupted.
package main

import (
	"fmt"
	"os"
)

// Exit codes shared by every subcommand.
const (
	exitOK       = 0
	exitCrashed  = 1
	exitBadInput = 2
	exitInfra    = 3
)

const usage = `reprolab — QEMU reproduction lab for Linux kernel bugs

usage: reprolab <command> [flags]

commands:
  run       boot a kernel and loop a reproducer until it crashes or the budget is spent
  kernel    build kernels (reprolab kernel build --help)
  matrix    run a matrix of arch x kernel x config x probe x patches, resumable
  report    re-parse a console log or run directory into crash reports
  serve     serve the HTML matrix report on 127.0.0.1
  doctor    check the host for QEMU, KVM, busybox, mkfs.ext4, cross tools
  help      this text

exit codes: 0 survived/ok, 1 crashed, 2 bad input, 3 infrastructure error, 4 hung,
            5 boot failure, 130 interrupted
`

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitBadInput
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runMain(rest)
	case "doctor":
		return doctorMain(rest)
	case "kernel":
		return kernelMain(rest)
	case "report":
		return reportMain(rest)
	case "matrix":
		return matrixMain(rest)
	case "serve":
		return serveMain(rest)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "reprolab: unknown command %q\n\n%s", cmd, usage)
	return exitBadInput
}
