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
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/queue"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
)

// Jobs converts planned trials to queue jobs. A trial whose kernel is built already
// becomes a trial job; trials whose kernel is still to be built (Build.Image empty, a
// source kernel: see PendingBuild) go into one build job per kernel, and the worker that
// builds it enqueues them. Kernel and reproducer paths are made absolute: workers resolve
// them on their own host, where they must exist at the same path (a shared mount, or the
// same checkout and cache location).
func Jobs(campaignID string, accel qemu.Accel, trials []campaign.Trial) ([]queue.TrialArgs, []queue.BuildArgs, error) {
	var out []queue.TrialArgs
	builds := map[string]*queue.BuildArgs{}
	var order []string
	for _, t := range trials {
		if t.Build == nil || t.Build.Failed != nil {
			return nil, nil, fault.Inputf("trial %s: no kernel to dispatch", t.ID)
		}
		if t.Repro == nil || t.Repro.Path == "" {
			return nil, nil, fault.Inputf("trial %s: its reproducer has no spec file a worker could load", t.ID)
		}
		a := queue.TrialArgs{Campaign: campaignID, Trial: t.ID, Attempt: t.Attempt, Group: t.Group, Dir: t.Dir,
			Arch: t.Build.Kernel.Arch, BuildID: t.Build.ID, Cmdline: t.Cmdline, Iterations: t.Iterations, Duration: t.Duration,
			Accel: string(accel), Timeout: TrialTimeout(t)}
		var err error
		if a.Repro, err = filepath.Abs(t.Repro.Path); err != nil {
			return nil, nil, fault.Inputf("trial %s: %s: %v", t.ID, t.Repro.Path, err)
		}
		if t.Build.Image == "" {
			if t.Build.Kernel.Source == nil {
				return nil, nil, fault.Inputf("trial %s: its kernel has neither an image nor a source", t.ID)
			}
			key := t.Build.Kernel.BuildKey()
			b := builds[key]
			if b == nil {
				k, err := json.Marshal(absKernel(t.Build.Kernel))
				if err != nil {
					return nil, nil, err
				}
				b = &queue.BuildArgs{Campaign: campaignID, Key: key, Arch: t.Build.Kernel.Arch, Kernel: k, Timeout: 3 * time.Hour}
				builds[key] = b
				order = append(order, key)
			}
			b.Trials = append(b.Trials, a)
			continue
		}
		for _, p := range []struct {
			dst *string
			src string
		}{{&a.Image, t.Build.Image}, {&a.Vmlinux, t.Build.Vmlinux}, {&a.Modules, t.Build.Modules}} {
			if p.src == "" {
				continue
			}
			if *p.dst, err = filepath.Abs(p.src); err != nil {
				return nil, nil, fault.Inputf("trial %s: %s: %v", t.ID, p.src, err)
			}
		}
		out = append(out, a)
	}
	var bl []queue.BuildArgs
	for _, k := range order {
		bl = append(bl, *builds[k])
	}
	return out, bl, nil
}

// PendingBuild is the build a driver plans trials on when workers build the kernel:
// recorded as "pending-<key>" until the worker that builds it rebinds the cells.
func PendingBuild(k campaign.Kernel) *campaign.Build {
	return &campaign.Build{ID: PendingID(k.BuildKey()), Kernel: k}
}

// PendingID is the build id cells carry until their kernel is built.
func PendingID(key string) string { return "pending-" + key }

// absKernel makes a kernel's local paths absolute, for a worker in another directory.
func absKernel(k campaign.Kernel) campaign.Kernel {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	absAll := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			out = append(out, abs(p))
		}
		return out
	}
	k.Patches, k.Probes, k.FragmentDirs = absAll(k.Patches), absAll(k.Probes), absAll(k.FragmentDirs)
	if k.Source != nil {
		src := *k.Source
		src.Git, src.Dir, src.Tarball = abs(src.Git), abs(src.Dir), abs(src.Tarball)
		k.Source = &src
	}
	return k
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
	// Queue is where a build job enqueues the trials that waited for it.
	Queue *queue.Queue
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

// HandleBuild builds one kernel (a cache hit when any host built the same inputs into the
// shared cache), points the campaign's cells at it and enqueues the trials waiting for
// it. A failed build is recorded (the trials are not run; Wait stops waiting for them).
func (w *Worker) HandleBuild(ctx context.Context, a queue.BuildArgs) error {
	if w.Queue == nil {
		return fault.Infraf("build %s: this worker has no queue to enqueue trials on", a.Key)
	}
	var k campaign.Kernel
	if err := json.Unmarshal(a.Kernel, &k); err != nil {
		return queue.Cancel(fault.Inputf("build %s/%s: kernel: %v", a.Campaign, a.Key, err))
	}
	e := &campaign.Engine{Store: w.Store, ResultsDir: w.ResultsDir, CacheDir: w.CacheDir, Progress: w.progress()}
	b, err := e.Kernel(ctx, a.Campaign, k)
	switch {
	case err != nil && fault.IsInput(err):
		return queue.Cancel(err)
	case err != nil:
		return err
	case ctx.Err() != nil && w.stopping():
		return queue.HandBack()
	case ctx.Err() != nil:
		return fault.Infraf("build %s/%s: cut off at its time limit", a.Campaign, a.Key)
	}
	if err := w.Store.RebindCells(ctx, a.Campaign, PendingID(a.Key), b.ID); err != nil {
		return err
	}
	if b.Failed != nil {
		fmt.Fprintf(w.progress(), "%s/%s: build failed; its %d trials are not run: %v\n", a.Campaign, a.Key, len(a.Trials), b.Failed)
		return nil
	}
	trials := append([]queue.TrialArgs(nil), a.Trials...)
	for i := range trials {
		trials[i].BuildID, trials[i].Image, trials[i].Vmlinux, trials[i].Modules = b.ID, b.Image, b.Vmlinux, b.Modules
	}
	n, err := w.Queue.Enqueue(ctx, trials, nil, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.progress(), "%s/%s: built %s (%.0fs, cached=%v); %d trials enqueued\n", a.Campaign, a.Key, b.Image, b.Seconds, b.Cached, n)
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

// Wait follows a campaign until every trial in ids (trial id → its kernel's build key) has
// a finished run or its kernel's build failed, calling onRun for each newly finished run
// (e.g. to rewrite reports). It returns ctx's error if cut short.
func Wait(ctx context.Context, st *store.Store, campaignID string, ids map[string]string, poll time.Duration, onRun func(store.Run)) error {
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
			if _, want := ids[r.ID]; r.State != store.Finished || !want {
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
		builds, err := st.Builds(ctx, campaignID)
		if err != nil {
			return err
		}
		failed := map[string]bool{}
		for _, b := range builds {
			if b.Status == "failed" {
				failed[strings.TrimPrefix(b.ID, "failed-")] = true
			}
		}
		for id, key := range ids {
			if !finished[id] && !failed[key] {
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

// Remote runs an engine's trials on workers (campaign.Engine.Remote): each trial is
// enqueued (once: a resumed driver asking again finds the same job) and followed until
// its run is finished, which is returned as if it had run here. Validations and
// bisections get the fleet this way without knowing of it.
func Remote(q *queue.Queue, st *store.Store, accel qemu.Accel, poll time.Duration) func(context.Context, string, campaign.Trial) (*store.Run, error) {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	return func(ctx context.Context, cid string, t campaign.Trial) (*store.Run, error) {
		jobs, _, err := Jobs(cid, accel, []campaign.Trial{t})
		if err != nil {
			return nil, err
		}
		id, err := q.EnqueueTrial(ctx, jobs[0])
		if err != nil {
			return nil, err
		}
		for {
			r, err := st.Run(ctx, cid, t.ID, t.Attempt)
			if err != nil && ctx.Err() == nil {
				return nil, err
			}
			if r != nil && r.State == store.Finished {
				return finishedRun(ctx, st, cid, t)
			}
			if ended, why, err := q.Ended(ctx, id); err == nil && ended {
				if strings.HasPrefix(why, "cancelled") {
					return nil, fault.Inputf("trial %s: a worker refused it: %s", t.ID, why)
				}
				return nil, fault.Infraf("trial %s: workers gave up on it: %s", t.ID, why)
			}
			select {
			case <-ctx.Done():
				return nil, nil // interrupted here; the job goes on, and a resume finds it
			case <-time.After(poll):
			}
		}
	}
}

// finishedRun reads a finished run with its crashes.
func finishedRun(ctx context.Context, st *store.Store, cid string, t campaign.Trial) (*store.Run, error) {
	runs, err := st.Runs(ctx, cid)
	if err != nil {
		return nil, err
	}
	for i := range runs {
		if runs[i].ID == t.ID && runs[i].Attempt == t.Attempt {
			return &runs[i], nil
		}
	}
	return nil, fault.Infraf("trial %s: its finished run vanished from %s", t.ID, st.Location)
}
