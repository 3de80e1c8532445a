package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad kernel inputs exit 2 before any compiler runs.
func TestKernelBadInputExitsTwo(t *testing.T) {
	mini, _ := filepath.Abs("../../lab/kbuild/testdata/minitree")
	td, _ := filepath.Abs("../../lab/kbuild/testdata")
	cache := t.TempDir()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"build", "--dir", mini, "--fragments", "no-such-fragment"},
		{"build", "--dir", mini, "--patch", filepath.Join(td, "wrong-context.diff")},
		{"build", "--dir", mini, "--probe", filepath.Join(td, "probe-bad-anchor.yaml")},
		{"build", "--tarball", filepath.Join(td, "wrong-context.diff"), "--sha256", strings.Repeat("0", 64)},
		{"build", "--git", mini, "--ref", "v0.0"},
		{"build", "--arch", "mips", "--dir", mini},
		{"build", "--spec", "does-not-exist.yaml"},
		{"build", "--dir", mini, "stray"},
	} {
		args = append(args, "--cache", cache)
		if len(args) == 2 || args[0] == "frobnicate" {
			args = args[:len(args)-2]
		}
		if code := kernelMain(args); code != exitBadInput {
			t.Errorf("reprolab kernel %s: exit %d, want %d", strings.Join(args, " "), code, exitBadInput)
		}
	}
}

func TestKernelHelp(t *testing.T) {
	old := os.Stderr
	os.Stderr, _ = os.Open(os.DevNull)
	defer func() { os.Stderr = old }()
	if code := kernelMain([]string{"--help"}); code != exitOK {
		t.Errorf("--help: exit %d", code)
	}
}
