// Package fleet runs a campaign's trials on workers of many hosts: it turns planned
// campaign trials into lab/queue jobs, runs a job on a worker through the same engine a
// single host uses (lab/campaign), and follows a campaign until its trials are done.
//
// What makes it safe to share one database among hosts, where a single-host campaign
// could simply discard every "running" row at start:
//   - a worker checks the store before running a job: a finished run (a rescued job whose
//     first attempt did finish) completes the job without running again; a "running" row
//     belongs to a dead worker (the queue only hands a job over after its lease, and a
//     job is cut off before its lease), so it is discarded and redone;
//   - the enqueuer never discards runs: rows in progress are the workers';
//   - the run's folder is written straight into the shared results root (a shared mount
//     every host and the reports see), before the run is recorded finished.
package fleet

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/queue"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
)

// Jobs converts planned trials to queue jobs. Kernel and reproducer paths are made
// absolute: workers resolve them on their own host, where they must exist at the same
// path (a shared mount, or the same checkout and cache location).
func Jobs(campaignID string, accel qemu.Accel, trials []campaign.Trial) ([]queue.TrialArgs, error) {
	var out []queue.TrialArgs
	for _, t := range trials {
		if t.Build == nil || t.Build.Failed != nil || t.Build.Image == "" {
			return nil, fault.Inputf("trial %s: no built kernel to dispatch", t.ID)
		}
		if t.Repro == nil || t.Repro.Path == "" {
			return nil, fault.Inputf("trial %s: its reproducer has no spec file a worker could load", t.ID)
		}
		a := queue.TrialArgs{Campaign: campaignID, Trial: t.ID, Attempt: t.Attempt, Group: t.Group, Dir: t.Dir,
			Arch: t.Build.Kernel.Arch, BuildID: t.Build.ID, Cmdline: t.Cmdline, Iterations: t.Iterations, Duration: t.Duration,
			Accel: string(accel), Timeout: TrialTimeout(t)}
		var err error
		for _, p := range []struct {
			dst *string
			src string
		}{{&a.Image, t.Build.Image}, {&a.Vmlinux, t.Build.Vmlinux}, {&a.Modules, t.Build.Modules}, {&a.Repro, t.Repro.Path}} {
			if p.src == "" {
				continue
			}
			if *p.dst, err = filepath.Abs(p.src); err != nil {
				return nil, fault.Inputf("trial %s: %s: %v", t.ID, p.src, err)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// TrialTimeout bounds a trial as a job: booting under TCG, the loop budget (the trial's
// or its reproducer's), the crash dump, and a margin. Without a time budget, the
// iteration count times the iteration timeout stands in.
func TrialTimeout(t campaign.Trial) time.Duration {
	const overhead = 15 * time.Minute // boot under a busy TCG host, setup, vmcore dump
	loop := t.Duration
	b := t.Repro.Budget
	if loop == 0 {
		loop = b.Duration.Std()
	}
	if loop == 0 {
		n := t.Iterations
		if n == 0 {
			n = b.Iterations
		}
		loop = time.Duration(n) * b.IterationTimeout.Std()
	}
	return overhead + loop
}

// Worker runs queue jobs on this host.
type Worker struct {
	Store *store.Store
	// ResultsDir is the shared results root: run folders are written there directly.
	ResultsDir string
	CacheDir   string
	Progress   io.Writer
	// Run defaults to repro.Run (tests substitute fakes to measure the queue).
	Run func(context.Context, repro.Config) (*repro.Result, error)
	// Stopping is closed when the worker is told to stop: a trial cut off by it is handed
	// back rather than retried after a backoff.
	Stopping <-chan struct{}
}

// Handle runs one job: queue.Handler.
func (w *Worker) Handle(ctx context.Context, a queue.TrialArgs) error {
	prev, err := w.Store.Run(ctx, a.Campaign, a.Trial, a.Attempt)
	if err != nil {
		return err
	}
	if prev != nil && prev.State == store.Finished {
		fmt.Fprintf(w.progress(), "%s/%s: already finished on %s; not run again\n", a.Campaign, a.Trial, prev.Host)
		return nil
	}
	if prev != nil {
		// Left "running" by a worker that died holding this job (see the package doc).
		fmt.Fprintf(w.progress(), "%s/%s: discarding the run %s left unfinished; running it again\n", a.Campaign, a.Trial, prev.Host)
		if err := w.Store.DiscardRun(ctx, a.Campaign, a.Trial, a.Attempt); err != nil {
			return err
		}
	}
	for _, p := range []string{a.Image, a.Repro, a.Vmlinux, a.Modules} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return queue.Cancel(fault.Inputf("%s/%s: %s is not on this host (%v): workers need the kernels and reproducers at the same paths as the enqueuing host",
				a.Campaign, a.Trial, p, err))
		}
	}
	r, err := spec.LoadReproducer(a.Repro)
	if err != nil {
		return queue.Cancel(fault.AsInput(err))
	}
	accel, err := qemu.ParseAccel(a.Accel)
	if err != nil {
		accel = qemu.Auto
	}
	e := &campaign.Engine{Store: w.Store, ResultsDir: w.ResultsDir, CacheDir: w.CacheDir, Accel: accel, Progress: w.progress(), Run: w.Run}
	b := &campaign.Build{ID: a.BuildID, Kernel: campaign.Kernel{Arch: a.Arch}, Image: a.Image, Vmlinux: a.Vmlinux, Modules: a.Modules}
	res, err := e.Trial(ctx, a.Campaign, campaign.Trial{ID: a.Trial, Group: a.Group, Attempt: a.Attempt, Build: b, Repro: r,
		Cmdline: a.Cmdline, Iterations: a.Iterations, Duration: a.Duration, Dir: a.Dir})
	switch {
	case err != nil && fault.IsInput(err):
		return queue.Cancel(err)
	case err != nil:
		return err
	case res == nil && w.stopping():
		fmt.Fprintf(w.progress(), "%s/%s: handed back (worker stopping)\n", a.Campaign, a.Trial)
		return queue.HandBack()
	case res == nil:
		return fault.Infraf("%s/%s: cut off at its time limit; it will be retried", a.Campaign, a.Trial)
	}
	fmt.Fprintf(w.progress(), "%s/%s: %s\n", a.Campaign, a.Trial, res.Outcome)
	return nil
}

func (w *Worker) stopping() bool {
	if w.Stopping == nil {
		return false
	}
	select {
	case <-w.Stopping:
		return true
	default:
		return false
	}
}

func (w *Worker) progress() io.Writer {
	if w.Progress == nil {
		return io.Discard
	}
	return w.Progress
}

// Wait follows a campaign until every trial in ids has a finished run, calling onRun for
// each newly finished one (e.g. to rewrite reports). It returns ctx's error if cut short.
func Wait(ctx context.Context, st *store.Store, campaignID string, ids map[string]bool, poll time.Duration, onRun func(store.Run)) error {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	seen := map[string]bool{}
	for {
		runs, err := st.Runs(ctx, campaignID)
		if err != nil {
			return err
		}
		left := 0
		finished := map[string]bool{}
		for _, r := range runs {
			if r.State != store.Finished || !ids[r.ID] {
				continue
			}
			finished[r.ID] = true
			key := fmt.Sprintf("%s#%d", r.ID, r.Attempt)
			if !seen[key] {
				seen[key] = true
				if onRun != nil {
					onRun(r)
				}
			}
		}
		for id := range ids {
			if !finished[id] {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
