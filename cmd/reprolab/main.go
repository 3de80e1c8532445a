// Command reprolab reproduces Linux kernel bugs in QEMU guests: it builds kernels, boots
// them on x86-64 and arm64, sets up the guest (dm-crypt swap, ext4, memory pressure), loops
// a reproducer under a budget and collects the crash.
//
// The command line is built on spf13/cobra (help, usage, completion, flag parsing). Every
// command is one file holding one newXCmd() *cobra.Command, listed in commands below; a
// command returns an error and the one mapping to an exit code is fault.ExitCode.
//
// Exit codes (see README): 0 survived / success, 1 crashed, 2 bad input, 3 infrastructure
// error, 4 hung, 5 boot failure, 130 interrupted.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reprolab/reprolab/lab/fault"
)

// commands are the top-level commands, in the order `reprolab --help` lists them. Adding a
// command is one file with one newXCmd() and one line here.
var commands = []func() *cobra.Command{
	newRunCmd,
	newKernelCmd,
	newMatrixCmd,
	newValidateCmd,
	newBisectCmd,
	newNightlyCmd,
	newReportCmd,
	newServeCmd,
	newDoctorCmd,
	newWorkerCmd,
	newStatusCmd,
}

// Exit codes shared by every subcommand (the same numbers as lab/fault's).
const (
	exitOK       = fault.ExitOK
	exitCrashed  = fault.ExitCrashed
	exitBadInput = fault.ExitInput
	exitInfra    = fault.ExitInfra
)

const exitCodesHelp = `Exit codes: 0 survived/ok, 1 crashed (or a matrix contradicts its expectation),
2 bad input, 3 infrastructure error, 4 hung, 5 boot failure, 6 a validated patch changed the
crash, 7 a validation is inconclusive, 130 interrupted.`

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// exitStatus is a command's result that is not an error: a run that crashed (1), hung (4)
// or was interrupted (130), a matrix whose cells contradict their expectation. The
// command has already printed what happened.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a mistake on the command line (unknown flag, missing argument): exit 2
// with the usage of that command only.
type usageError struct{ err error }

func (e *usageError) Error() string         { return e.err.Error() }
func (e *usageError) Unwrap() error         { return e.err }
func (e *usageError) FaultKind() fault.Kind { return fault.Input }

// usagef is a usage error with a formatted message.
func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "reprolab",
		Short: "QEMU reproduction lab for Linux kernel bugs",
		Long: `reprolab — QEMU reproduction lab for Linux kernel bugs.

It builds kernels, boots them on x86_64 and arm64, sets up the guest, loops a reproducer
under a budget and collects the crash; a matrix does that over arch x kernel x config x
probe x patches, resumably.

` + exitCodesHelp,
		Args:          noArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("a command is needed")
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{err} })
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	return root
}

// execute runs one command line and returns the exit code: the only place errors are
// printed and mapped to exit codes.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(compatLongFlags(root, args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var ue *usageError
	if errors.As(err, &ue) || isCobraArgError(err) {
		fmt.Fprintf(stderr, "%s: %v\n\n%s", cmd.CommandPath(), err, cmd.UsageString())
		return exitBadInput
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	return fault.ExitCode(err)
}

// isCobraArgError recognises cobra's own command-line errors (unknown command or
// subcommand), which it returns unclassified.
func isCobraArgError(err error) bool {
	if fault.KindOf(err) != fault.Infra {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") || strings.HasPrefix(msg, "required flag")
}

// noArgs rejects positional arguments; a command with subcommands names the unknown one.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		hint := ""
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return usagef("unknown command %q for %q%s", args[0], cmd.CommandPath(), hint)
	}
	return usagef("unexpected argument %q", args[0])
}

// exactArgs wants n positional arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

// compatLongFlags rewrites Go-flag style single-dash long flags (-vmlinux F, as the
// commands accepted before cobra) to --vmlinux F when the command has such a long flag, so
// old scripts keep working.
func compatLongFlags(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && lookupFlag(cmd, name) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f
	}
	return cmd.InheritedFlags().Lookup(name)
}
