package repro

import (
	"context"
	"fmt"
	"time"
)

// loop runs the reproducer until the budget is spent or the run ends, one SSH session per
// iteration, timing each.
func (r *run) loop(ctx context.Context) (Outcome, error) {
	maxIter, budgetSecs := r.budget()
	dur := time.Duration(budgetSecs * float64(time.Second))
	r.loopAt = time.Now()
	r.res.Timings.FirstIterSeconds = r.loopAt.Sub(r.res.Started).Seconds()
	r.res.Timings.LoopMode = "ssh"
	defer func() {
		r.res.LoopSeconds = time.Since(r.loopAt).Seconds()
		r.res.Timings.LoopSeconds = r.res.LoopSeconds
	}()
	cmd := r.cfg.Repro.Run
	r.say("loop: %q, budget %s", cmd, budgetString(maxIter, dur))
	for {
		if maxIter > 0 && r.res.Iterations >= maxIter {
			break
		}
		if dur > 0 && time.Since(r.loopAt) >= dur {
			break
		}
		r.iter = r.res.Iterations + 1
		fmt.Fprintf(r.guestLg, "### iteration %d\n", r.iter)
		t := time.Now()
		mark := r.watch.Len()
		code, o, err := r.guestRun(ctx, cmd, 0)
		if o != "" {
			return o, err
		}
		d := time.Since(t)
		fmt.Fprintf(r.guestLg, "### iteration %d: exit %d in %.1f ms\n", r.iter, code, ms(d))
		// The OOM killer is recognised from its report on the console, not from the
		// exit status: it is the spec's memory pressure, not a host or agent failure.
		oom := r.noteOOMs(mark, code != 0)
		if code != 0 && !oom {
			return InfraError, fmt.Errorf("reproducer iteration %d exited %d (not a kernel crash): %s", r.iter, code, r.lastGuestOutput())
		}
		r.res.Timings.Iterations.add(d, 0)
		r.res.Iterations++
		if code != 0 {
			if stop, why := r.oomEnded(); stop {
				return Survived, why
			}
		}
	}
	r.status("")
	return Survived, nil
}
