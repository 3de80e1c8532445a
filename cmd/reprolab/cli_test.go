package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// allCommands walks the command tree: every command a user can type.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		out = append(out, allCommands(s)...)
	}
	return out
}

func runIn(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

// Every command's help exits 0 three ways; a bad flag exits 2 with that command's usage
// and not another's.
func TestHelpAndBadFlags(t *testing.T) {
	root := newRootCmd()
	for _, c := range allCommands(root) {
		path := strings.Fields(c.CommandPath())[1:]
		name := strings.Join(path, " ")
		for _, args := range [][]string{append(path, "--help"), append([]string{"help"}, path...), append(path, "-h")} {
			code, out, _ := runIn(args...)
			if code != 0 || !strings.Contains(out, "Usage:") {
				t.Errorf("reprolab %s: exit %d, usage printed %v", strings.Join(args, " "), code, strings.Contains(out, "Usage:"))
			}
		}
		if c == root || c.Name() == "help" {
			continue
		}
		code, out, stderr := runIn(append(path, "--no-such-flag")...)
		if code != 2 {
			t.Errorf("reprolab %s --no-such-flag: exit %d, want 2", name, code)
		}
		if out != "" || !strings.Contains(stderr, "unknown flag: --no-such-flag") || !strings.Contains(stderr, "Usage:\n  "+c.UseLine()) {
			t.Errorf("reprolab %s --no-such-flag: stdout %q, stderr:\n%s", name, out, stderr)
		}
		for _, other := range root.Commands() {
			if other != c && other.Name() != "help" && !strings.HasPrefix(c.CommandPath(), other.CommandPath()) &&
				strings.Contains(stderr, other.UseLine()) {
				t.Errorf("reprolab %s --no-such-flag prints the usage of %s too", name, other.CommandPath())
			}
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "a command is needed"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"matrx"}, 2, `did you mean "matrix"?`},
		{[]string{"kernel", "biuld"}, 2, `unknown command "biuld" for "reprolab kernel" (did you mean "build"?)`},
		{[]string{"kernel"}, 2, "a subcommand is needed"},
		{[]string{"matrix"}, 2, "want one matrix.yaml"},
		{[]string{"matrix", "a.yaml", "b.yaml"}, 2, "got 2 argument(s)"},
		{[]string{"matrix", "x.yaml", "--kernel", "v4.11=dir:/x"}, 2, "now --kernel-source NAME=SOURCE"},
		{[]string{"matrix", "x.yaml", "--runs", "0"}, 2, "--runs 0: must be a positive number"},
		{[]string{"matrix", "x.yaml", "--duration", "-3m"}, 2, "--duration -3m0s: must be a positive duration"},
		{[]string{"run", "--boot-timeout", "-1s", "--kernel", "k", "--repro", "r"}, 2, "--boot-timeout -1s: must be a positive duration"},
		{[]string{"run", "--iterations", "-1", "--kernel", "k", "--repro", "r"}, 2, "--iterations -1: must be a positive number"},
		{[]string{"run", "--repro", "r"}, 2, "--kernel is required"},
		{[]string{"run", "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"kernel", "build", "-j", "0"}, 2, "--make-jobs 0: must be a positive number"},
		{[]string{"report"}, 2, "give a console log"},
		{[]string{"report", "--module", "x", "c.log"}, 2, "want NAME=PATH"},
		{[]string{"report", "-vmcore", "v"}, 2, "--vmcore needs --vmlinux"},
		{[]string{"serve", "--addr", "0.0.0.0:8080"}, 2, "loopback only"},
		{[]string{"serve", "--results", "/nonexistent"}, 2, "results directory /nonexistent: not found"},
		{[]string{"completion", "bash"}, 0, ""},
	} {
		code, _, stderr := runIn(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("reprolab %s: exit %d, want %d with %q; stderr:\n%s", strings.Join(c.args, " "), code, c.code, c.want, stderr)
		}
	}
}
