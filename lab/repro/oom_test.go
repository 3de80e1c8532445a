package repro

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/console"
	"github.com/reprolab/reprolab/lab/qemu"
)

// TestGuestOOMIsAnEvent: the OOM killer taking the reproducer on a real Debian kernel is
// recorded as an event per iteration (oom-N.txt with the parsed report) and the loop goes
// on to spend its budget: survived, not infra-error.
func TestGuestOOMIsAnEvent(t *testing.T) {
	res := runOn(t, qemu.X86_64, "testdata/oom.yaml", 0)
	if res.Outcome != Survived || res.Iterations != 2 {
		t.Fatalf("outcome %s after %d iterations (%s), want survived after 2; console:\n%s", res.Outcome, res.Iterations, res.Error, tailFile(res.Dir, "console.log", 40))
	}
	if len(res.Events) != 2 {
		t.Fatalf("%d events, want one OOM per iteration: %+v", len(res.Events), res.Events)
	}
	for i, e := range res.Events {
		if e.Kind != "oom" || e.Iteration != i+1 || e.Killed != "dd" || e.KilledPID == 0 || !e.EndedIteration || e.AnonRSSkB < 100<<10 {
			t.Errorf("event %d: %+v", i, e)
		}
		text, err := os.ReadFile(filepath.Join(res.Dir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(text), "invoked oom-killer") || !strings.Contains(string(text), "Killed process") {
			t.Errorf("%s is not the OOM report:\n%s", e.File, text)
		}
		if oo := console.ParseOOMs(text); len(oo) != 1 || oo[0].Killed != "dd" {
			t.Errorf("%s parses to %+v", e.File, oo)
		}
	}
	if res.LoopSeconds <= 0 || res.Reproduced || len(res.Crashes) > 0 {
		t.Errorf("loop %.1fs, reproduced %v, crashes %v", res.LoopSeconds, res.Reproduced, res.Crashes)
	}
	meta, _ := ReadMeta(res.Dir)
	if len(meta.Events) != 2 || meta.Events[0].File != "oom-1.txt" {
		t.Errorf("meta.json events: %+v", meta.Events)
	}
	t.Logf("2 OOM kills in %.1fs of looping; first: %+v", res.LoopSeconds, res.Events[0])
}

// TestGuestOOMStops: with on_oom: stop the first OOM kill ends the run there, survived
// with its loop time, the reason and the event recorded.
func TestGuestOOMStops(t *testing.T) {
	res := runOn(t, qemu.X86_64, "testdata/oom-stop.yaml", 0)
	if res.Outcome != Survived || res.Iterations != 1 || len(res.Events) != 1 {
		t.Fatalf("outcome %s after %d iterations with %d events (%s), want survived after 1 with 1", res.Outcome, res.Iterations, len(res.Events), res.Error)
	}
	if !strings.Contains(res.Error, "on_oom: stop") || !strings.Contains(res.Error, "oom-1.txt") || res.LoopSeconds <= 0 {
		t.Errorf("error %q, loop %.1fs", res.Error, res.LoopSeconds)
	}
}
