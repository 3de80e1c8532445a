package validate

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// The progress shows per arch the baseline's crashes and λ, the candidate's clean hours
// against T, the ETA and at the end the verdict: as bars, and as plain lines.
func TestProgress(t *testing.T) {
	states := []Status{
		{Arch: "x86_64", Phase: "building baseline", Rate: math.NaN(), NeedHours: math.Inf(1), ETAHours: math.Inf(1)},
		{Arch: "x86_64", Phase: "running", BaseCrashes: 3, BaseHours: 0.02, Rate: 150, CandHours: 0.01, NeedHours: 0.08, ETAHours: 0.07},
		{Arch: "arm64", Phase: "running", BaseCrashes: 0, BaseHours: 0.01, Rate: 0, NeedHours: math.Inf(1), ETAHours: math.Inf(1)},
		{Arch: "x86_64", Phase: "done", BaseCrashes: 7, BaseHours: 0.05, CandHours: 0.09, Verdict: Fixed},
	}
	for _, tty := range []bool{false, true} {
		var b bytes.Buffer
		p := NewProgress(&b, tty, []string{"x86_64", "arm64"})
		for _, s := range states {
			p.Update(s)
		}
		p.Write([]byte("build x86_64: kbuild: compile\n"))
		p.Wait()
		out := b.String()
		for _, want := range []string{"build x86_64: kbuild: compile", "fixed (baseline 7 crashes in 0.05 h, candidate 0.09 h)"} {
			if !strings.Contains(out, want) {
				t.Errorf("tty=%v: %q missing from:\n%s", tty, want, out)
			}
		}
		if !tty {
			for _, want := range []string{"validate x86_64: baseline 3 crashes in 0.02 h, λ 150/h | candidate 0.01 h clean of T 0.08 h | ETA 4m12s of looping", "validate arm64: baseline 0 crashes in 0.01 h, λ 0/h | candidate 0.00 h clean of T ? | ETA ?"} {
				if !strings.Contains(out, want) {
					t.Errorf("%q missing from:\n%s", want, out)
				}
			}
		}
	}
}
