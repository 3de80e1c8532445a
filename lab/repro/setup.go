package repro

import (
	"context"
	"fmt"
	"time"
)

// setup runs the spec's setup steps in order, timing each. A non-empty Outcome ends the run.
func (r *run) setup(ctx context.Context) (Outcome, error) {
	steps := r.cfg.Repro.Setup
	at := time.Now()
	defer func() { r.res.Timings.SetupSeconds = secs(time.Since(at)) }()
	for i, step := range steps {
		r.say("setup %d/%d: %s", i+1, len(steps), step)
		fmt.Fprintf(r.guestLg, "### setup %d: %s\n$ %s\n", i+1, step, step.Command())
		t := time.Now()
		code, o, err := r.guestRun(ctx, step.Command(), 0)
		d := time.Since(t)
		r.res.Timings.Setup = append(r.res.Timings.Setup, Step{Step: step.String(), Seconds: secs(d)})
		fmt.Fprintf(r.guestLg, "### setup %d: exit %d in %.2fs\n", i+1, code, d.Seconds())
		if o != "" {
			return o, err
		}
		if code != 0 {
			return InfraError, fmt.Errorf("setup step %d (%s) exited %d: %s", i+1, step, code, r.lastGuestOutput())
		}
	}
	return "", nil
}
