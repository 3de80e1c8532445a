package tmpdir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSweepRemovesDeadOwnersOnly(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	mine, err := New()
	if err != nil {
		t.Fatal(err)
	}
	// A real process that has exited: its PID is dead (and not reused within this test).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(os.TempDir(), prefix+itoa(cmd.Process.Pid)+"-abc")
	if err := os.MkdirAll(filepath.Join(dead, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(os.TempDir(), "reprolab-cache")
	if err := os.Mkdir(unrelated, 0o755); err != nil {
		t.Fatal(err)
	}
	removed, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != dead {
		t.Fatalf("removed %v, want only %s", removed, dead)
	}
	for _, d := range []string{mine, unrelated} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
