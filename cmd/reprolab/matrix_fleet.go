package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/fleet"
	"github.com/reprolab/reprolab/lab/matrix"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/queue"
	"github.com/reprolab/reprolab/lab/store"
)

// dispatching says whether the matrix's runs go to workers: by default when the database
// is a shared PostgreSQL, on request (--dispatch) for a SQLite file workers on this host
// share, never with --local.
func (f *matrixFlags) dispatching() bool {
	if f.local {
		return false
	}
	return f.dispatch || strings.HasPrefix(f.dsn, "postgres://") || strings.HasPrefix(f.dsn, "postgresql://")
}

// dispatcher enqueues a matrix's trials for `reprolab worker`s (nil: run them here).
func (f *matrixFlags) dispatcher(st *store.Store, accel qemu.Accel) func(context.Context, string, []campaign.Trial) error {
	if !f.dispatching() {
		return nil
	}
	return func(ctx context.Context, cid string, trials []campaign.Trial) error {
		jobs, builds, err := fleet.Jobs(cid, accel, trials)
		if err != nil {
			return err
		}
		q, err := queue.Open(ctx, st, queue.Config{})
		if err != nil {
			return err
		}
		n, err := q.Enqueue(ctx, jobs, builds, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "matrix: %d runs and %d kernel builds (their runs enqueued once built) handed to workers, %d new, on %s; `reprolab status --db …` shows them\n",
			len(jobs), len(builds), n, st.Location)
		return nil
	}
}

// follow waits, with --wait, for workers to finish the dispatched runs, rewriting the
// reports after each; without --wait it returns done=true: the command ends here.
func (f *matrixFlags) follow(ctx context.Context, st *store.Store, name string, sum *matrix.Summary, reports *reportWriter) (done bool, err error) {
	if !f.wait {
		fmt.Fprintf(os.Stderr, "matrix %s: enqueued; run `reprolab matrix report` later, or the same command with --wait to follow it\n", name)
		return true, nil
	}
	ids := sum.Dispatched
	finished := 0
	t0 := time.Now()
	err = fleet.Wait(ctx, st, matrix.CampaignID(name), ids, 2*time.Second, func(r store.Run) {
		finished++
		sum.Ran++
		what := r.Outcome
		if len(r.Crashes) > 0 {
			what += ": " + r.Crashes[0].Title
			sum.Crashes++
		}
		if r.Outcome == store.OutcomeInfraError {
			sum.InfraErrors++
		}
		fmt.Fprintf(os.Stderr, "matrix %s: [%d/%d runs, %s] %s on %s: %s\n", name, finished, len(ids), time.Since(t0).Round(time.Second), r.ID, r.Host, what)
		reports.afterRun()
	})
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "reprolab matrix: stopped following; the workers go on (run with --wait again to follow)")
		return true, exitStatus(fault.ExitInterrupted)
	}
	return false, err
}

// remoteTrials makes a validation's or bisection's engine run its trials on workers when
// the database is a shared PostgreSQL (nil otherwise: they run here). Such a driver always
// follows its trials (its next step depends on them); Ctrl-C leaves the enqueued trials to
// the workers, and the same command resumes with their results.
func remoteTrials(ctx context.Context, st *store.Store, dsn string, accel qemu.Accel, local bool) (func(context.Context, string, campaign.Trial) (*store.Run, error), error) {
	if local || !(strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")) {
		return nil, nil
	}
	q, err := queue.Open(ctx, st, queue.Config{})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "trials go to the workers on %s (--local to run them here)\n", st.Location)
	return fleet.Remote(q, st, accel, 2*time.Second), nil
}
