package repro

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loop runs the reproducer until the budget is spent or the run ends. Normally the whole
// loop is one command, the agent's in-guest loop, which prints a line per iteration; one
// SSH session per iteration (LoopOverSSH) costs 127–227 ms of channel setup each under TCG.
func (r *run) loop(ctx context.Context) (Outcome, error) {
	maxIter, budgetSecs := r.budget()
	dur := time.Duration(budgetSecs * float64(time.Second))
	r.loopAt = time.Now()
	r.res.Timings.FirstIterSeconds = r.loopAt.Sub(r.res.Started).Seconds()
	defer func() {
		r.res.LoopSeconds = time.Since(r.loopAt).Seconds()
		r.res.Timings.LoopSeconds = r.res.LoopSeconds
		if it := &r.res.Timings.Iterations; len(it.GuestMs) == len(it.Millis) && len(it.Millis) > 0 {
			over := make([]float64, len(it.Millis))
			for i := range over {
				over[i] = it.Millis[i] - it.GuestMs[i]
			}
			// The first iteration also carries the loop command's own start (one SSH
			// session for the whole loop); the per-iteration share is in the others.
			if len(over) > 1 {
				over = over[1:]
			}
			r.res.Timings.IterOverheadMillis = Median(over)
		}
	}()
	r.say("loop: %q, budget %s", r.cfg.Repro.Run, budgetString(maxIter, dur))
	if r.cfg.LoopOverSSH || (maxIter == 0 && dur == 0) {
		return r.loopOverSSH(ctx, maxIter, dur)
	}
	return r.loopInGuest(ctx, maxIter, dur)
}

func (r *run) loopInGuest(ctx context.Context, maxIter int, dur time.Duration) (Outcome, error) {
	r.res.Timings.LoopMode = "agent"
	r.events = make(chan struct{}, 1)
	r.progress = &iterLines{notify: r.events, last: r.loopAt, mark: r.watch.Len, startMark: r.watch.Len()}
	defer func() { r.drainEvents(); r.events, r.progress, r.loopStop = nil, nil, nil }()
	// -k: the loop goes on after a failed iteration; drainEvents decides whether the
	// failure ends the run (anything but an OOM kill the spec tolerates does).
	cmd := fmt.Sprintf("exec reprolab-agent loop -k -n %d -d %s %s", maxIter, dur, shellQuote(r.cfg.Repro.Run))
	code, o, err := r.guestRunTo(ctx, cmd, 0, r.progress)
	if o == "" && r.loopStop != nil {
		// The loop ended on the host's decision while its last lines were drained.
		o, err = r.loopStop.o, r.loopStop.err
	}
	if o != "" {
		return o, err
	}
	if code != 0 {
		if r.iter > r.res.Iterations {
			return InfraError, fmt.Errorf("reproducer iteration %d exited %d (not a kernel crash): %s", r.iter, code, r.lastGuestOutput())
		}
		return InfraError, fmt.Errorf("the in-guest loop exited %d: %s", code, r.lastGuestOutput())
	}
	r.status("")
	return Survived, nil
}

// drainEvents applies what the in-guest loop reported so far: the iteration running now,
// and each finished iteration's host and guest durations.
func (r *run) drainEvents() {
	if r.progress == nil {
		return
	}
	cur, done := r.progress.take()
	for _, it := range done {
		if r.loopStop != nil {
			break
		}
		r.iter = it.n
		if it.code != 0 {
			// The OOM killer is recognised from its report on the console, not from the
			// exit status: it is the spec's memory pressure, not a host or agent failure.
			if !r.noteOOMs(it.mark, true) {
				r.loopStop = &loopStop{InfraError, fmt.Errorf("reproducer iteration %d exited %d (not a kernel crash): %s", it.n, it.code, r.lastGuestOutput())}
				break
			}
		}
		r.res.Iterations++
		r.res.Timings.Iterations.add(it.host, max(it.guest, time.Microsecond))
		if it.code != 0 {
			if stop, why := r.oomEnded(); stop {
				r.loopStop = &loopStop{Survived, why}
				break
			}
		}
	}
	if len(done) > 0 && r.loopStop == nil {
		// OOM kills of other processes (a reader) during iterations that succeeded.
		r.noteOOMs(done[0].mark, false)
	}
	if cur > r.iter {
		r.iter = cur
	}
}

// loopStop is the host's decision to end the in-guest loop early.
type loopStop struct {
	o   Outcome
	err error
}

// iterLines parses the agent loop's progress lines as they stream in (on the SSH output
// goroutine) and hands them to the run's goroutine through take.
type iterLines struct {
	mu      sync.Mutex
	partial []byte
	cur     int // iteration started last
	done    []iterDone
	last    time.Time // when the previous iteration ended (or the loop started)
	notify  chan struct{}
	// mark reads the console's length: an iteration's OOM reports are looked for from
	// where the console was when it started.
	mark      func() int
	startMark int
}

type iterDone struct {
	n, code     int
	host, guest time.Duration
	mark        int // console offset when the iteration started
}

func (p *iterLines) Write(b []byte) (int, error) {
	now := time.Now()
	p.mu.Lock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.line(string(p.partial[:i]), now)
		p.partial = p.partial[i+1:]
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return len(b), nil
}

// line reads "### iteration N started" and "### iteration N: exit C in X ms".
func (p *iterLines) line(l string, now time.Time) {
	rest, ok := strings.CutPrefix(l, "### iteration ")
	if !ok {
		return
	}
	if n, ok := strings.CutSuffix(rest, " started"); ok {
		if v, err := strconv.Atoi(n); err == nil {
			p.cur = v
			if p.mark != nil {
				p.startMark = p.mark()
			}
		}
		return
	}
	var n, code int
	var guestMs float64
	if _, err := fmt.Sscanf(rest, "%d: exit %d in %g ms", &n, &code, &guestMs); err != nil {
		return
	}
	// Host time per iteration is end to end, so the gap between iterations (the
	// harness's share) is in it.
	p.done = append(p.done, iterDone{n: n, code: code, host: now.Sub(p.last), guest: time.Duration(guestMs * float64(time.Millisecond)), mark: p.startMark})
	p.last = now
}

func (p *iterLines) take() (int, []iterDone) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.done
	p.done = nil
	return p.cur, d
}

// loopOverSSH runs one SSH command per iteration.
func (r *run) loopOverSSH(ctx context.Context, maxIter int, dur time.Duration) (Outcome, error) {
	r.res.Timings.LoopMode = "ssh"
	cmd := r.cfg.Repro.Run
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

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
