package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `reprolab report RUN-DIR` reads the run's console.log; a directory without one is bad
// input (exit 2) naming what to give instead.
func TestReportRunDir(t *testing.T) {
	log, err := os.ReadFile("../../lab/report/testdata/linux/x86-null.txt")
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, "console.log"), log, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runIn("report", run)
	if code != 0 || !strings.Contains(out, "BUG: unable to handle kernel NULL pointer dereference in rl_read_field") {
		t.Errorf("reprolab report RUN-DIR: exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	code, _, stderr = runIn("report", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "is a directory without console.log") {
		t.Errorf("reprolab report EMPTY-DIR: exit %d, stderr %q", code, stderr)
	}
}

// TestReportHungRunDir: a hung run's directory shows its hang report from hang.txt.
func TestReportHungRunDir(t *testing.T) {
	hang, err := os.ReadFile("../../lab/report/testdata/hang-6.1-x86_64.txt")
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	for name, data := range map[string][]byte{"console.log": hang, "hang.txt": hang} {
		if err := os.WriteFile(filepath.Join(run, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runIn("report", run)
	if code != 0 || !strings.Contains(out, "hang: INFO: task hung in mnt_want_write") || !strings.Contains(out, "blocked  sh") {
		t.Errorf("reprolab report HUNG-RUN-DIR: exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}
