package qemu

import (
	"os/exec"
	"testing"

	"github.com/reprolab/reprolab/lab/fault"
)

// How QEMU ended decides boot failure against infrastructure, by type, not message.
func TestExitClassification(t *testing.T) {
	failed := exec.Command("sh", "-c", "exit 3").Run()
	killed := exec.Command("sh", "-c", "kill -9 $$").Run()
	for _, tt := range []struct {
		name     string
		e        *ExitError
		failed   bool
		rejected bool
	}{
		{"guest reset, QEMU exited 0", &ExitError{}, false, false},
		{"QEMU error exit", &ExitError{Wait: failed, Stderr: "qemu-system-x86_64: -drive: Could not open 'x'"}, true, false},
		{"killed", &ExitError{Wait: killed}, false, false},
		{"image refused", &ExitError{Wait: failed, Stderr: "qemu: linux kernel too old to load a ram disk"}, true, true},
		{"arm image refused", &ExitError{Wait: failed, Stderr: "qemu-system-aarch64: could not load kernel '/x/Image'"}, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.e.Failed() != tt.failed {
				t.Errorf("Failed() = %v for %v", !tt.failed, tt.e)
			}
			err := startFailure("qemu-system-x86_64", tt.e)
			if got := fault.Is(err, fault.Boot); got != tt.rejected {
				t.Errorf("%v: boot failure = %v, want %v", err, got, tt.rejected)
			}
		})
	}
}
