// Package queue carries a campaign's trials from the host that plans them to workers on
// any number of hosts. It is River (github.com/riverqueue/river, MPL-2.0) on the results
// database itself: the SQLite driver for a single host, database/sql over pgx for a
// shared PostgreSQL. River's tables live beside the results, so a job is inserted in the
// same transaction as whatever the enqueuer records with it.
//
// Guarantees the fleet depends on:
//   - a trial is enqueued at most once: jobs are unique on (campaign, trial, attempt)
//     over every state including completed, so re-running an enqueuer is harmless;
//   - a worker that dies (SIGKILL, power) leaves its job "running"; after the lease
//     (River's RescueStuckJobsAfter) a live worker's rescuer makes it available again.
//     A job's own time limit is kept under the lease, so a job is never rescued while a
//     live worker still runs it;
//   - results are idempotent by the store's key (lab/fleet checks it before running), so
//     a rescued job never counts twice.
//
// Why database/sql for PostgreSQL rather than River's pgx driver: the store speaks
// database/sql (one code path for both databases), and River's database/sql driver takes
// the same *sql.Tx, so enqueue and record share a transaction on both. The cost is no
// LISTEN/NOTIFY: workers poll (PollInterval), which for jobs that run minutes is noise.
package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/store"
)

// TrialArgs is one trial as a job: everything a worker needs to run it, by value.
// Kernel and reproducer paths must be the same on every host (a shared mount, or the
// same checkout and cache path); lab/fleet checks them before booting.
type TrialArgs struct {
	Campaign string `json:"campaign" river:"unique"`
	Trial    string `json:"trial" river:"unique"`
	Attempt  int    `json:"attempt" river:"unique"`
	Group    string `json:"group"`
	Dir      string `json:"dir"` // run folder relative to the results root
	Arch     string `json:"arch"`
	BuildID  string `json:"build_id"`
	Image    string `json:"image"`
	Vmlinux  string `json:"vmlinux,omitempty"`
	Modules  string `json:"modules,omitempty"`
	// Repro is the reproducer spec's path.
	Repro      string        `json:"repro"`
	Cmdline    []string      `json:"cmdline,omitempty"`
	Iterations int           `json:"iterations,omitempty"`
	Duration   time.Duration `json:"duration,omitempty"`
	Accel      string        `json:"accel,omitempty"`
	// Timeout is the job's time limit: boot, loop budget and crash dump, with margin.
	Timeout time.Duration `json:"timeout"`
}

// Kind is River's job kind for trials.
func (TrialArgs) Kind() string { return "reprolab_trial" }

// InsertOpts puts a trial on its arch's queue, once.
func (a TrialArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       TrialQueue(a.Arch),
		MaxAttempts: 20, // infrastructure retries; bad input is cancelled at once
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStateCompleted, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateCancelled, rivertype.JobStateDiscarded}},
	}
}

// TrialQueue is the queue of trials for one arch: a worker subscribes to the arches its
// host can emulate.
func TrialQueue(arch string) string { return "trial_" + arch }

// BuildArgs is one kernel build as a job, with the trials that wait for it: the worker
// that builds it enqueues them, their kernel paths filled in. Builds are unique per
// (campaign, key); across campaigns the shared kbuild cache makes a repeat a cache hit,
// so a kernel is compiled once per inputs key in the whole fleet.
type BuildArgs struct {
	Campaign string `json:"campaign" river:"unique"`
	Key      string `json:"key" river:"unique"` // the kernel's build key (a matrix cell's)
	Arch     string `json:"arch"`
	// Kernel is the campaign.Kernel, as JSON (this package knows no kernels).
	Kernel  json.RawMessage `json:"kernel"`
	Trials  []TrialArgs     `json:"trials"`
	Timeout time.Duration   `json:"timeout"`
}

// Kind is River's job kind for builds.
func (BuildArgs) Kind() string { return "reprolab_build" }

// InsertOpts puts a build on its arch's build queue, once.
func (a BuildArgs) InsertOpts() river.InsertOpts {
	o := TrialArgs{}.InsertOpts()
	o.Queue = BuildQueue(a.Arch)
	return o
}

// BuildQueue is the queue of kernel builds for one arch (a host builds the arches it
// has compilers for).
func BuildQueue(arch string) string { return "build_" + arch }

// Handler runs one trial. Its error decides the job: nil completes it, Cancel(err) ends
// it for good (bad input), HandBack re-queues it at once (the worker is stopping), any
// other error retries it later.
type Handler func(ctx context.Context, a TrialArgs) error

// Cancel marks err as final: the job is not retried.
func Cancel(err error) error { return river.JobCancel(err) }

// HandBack re-queues the job at once for another worker, without using up an attempt's
// backoff.
func HandBack() error { return river.JobSnooze(0) }

// Config is a queue client. With no Queues it only enqueues and reads status.
type Config struct {
	// Queues maps queue names to how many jobs this client runs from each at once.
	Queues  map[string]int
	Handler Handler
	// BuildHandler runs builds (on the BuildQueue queues named in Queues).
	BuildHandler func(ctx context.Context, a BuildArgs) error
	// Lease is how long a running job may go without finishing before another worker
	// may take it over (its worker is presumed dead). Default 2h. Jobs are cut off
	// before it: a job's timeout is capped at 90% of the lease.
	Lease time.Duration
	// PollInterval is how often idle workers look for jobs. Default 1s.
	PollInterval time.Duration
	// Name identifies this client in status (default host:pid).
	Name string
	// Slots and Arches are shown in status.
	Slots  int
	Arches []string
	// Logf receives the client's notices (default: none).
	Logf func(format string, a ...any)
}

// Queue is a River client on the results database.
type Queue struct {
	st     *store.Store
	client *river.Client[*sql.Tx]
	cfg    Config
	hbStop chan struct{}
	hbDone chan struct{}
}

// Open migrates River's tables (idempotent) and makes a client.
func Open(ctx context.Context, st *store.Store, cfg Config) (*Queue, error) {
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var drv riverdriver.Driver[*sql.Tx]
	switch st.Dialect {
	case "sqlite":
		drv = riversqlite.New(st.DB())
	case "postgres":
		drv = riverdatabasesql.New(st.DB())
	default:
		return nil, fault.Inputf("job queue: database %s: unknown dialect %q", st.Location, st.Dialect)
	}
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		return nil, fault.Infraf("job queue on %s: %w", st.Location, err)
	}
	// Workers and enqueuers on several hosts may open a fresh database at once.
	if err := st.Exclusive(ctx, "queue-schema", func() error {
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fault.Infraf("job queue on %s: migrating River's tables: %w", st.Location, err)
		}
		if _, err := st.DB().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS reprolab_workers (
		name TEXT PRIMARY KEY, slots INTEGER NOT NULL, arches TEXT NOT NULL, started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL, running TEXT NOT NULL)`); err != nil {
			return fault.Infraf("job queue on %s: %w", st.Location, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rc := &river.Config{
		ID:                   strings.NewReplacer(":", "_", ".", "_").Replace(cfg.Name),
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        cfg.PollInterval / 10,
		RescueStuckJobsAfter: cfg.Lease,
		JobTimeout:           cfg.Lease * 9 / 10,
		PollOnly:             true,
		Logger:               quietLogger(),
	}
	if len(cfg.Queues) > 0 {
		if cfg.Handler == nil {
			return nil, fault.Inputf("job queue: a worker needs a handler")
		}
		rc.Queues = map[string]river.QueueConfig{}
		for name, n := range cfg.Queues {
			if n < 1 {
				n = 1
			}
			rc.Queues[name] = river.QueueConfig{MaxWorkers: n}
		}
		workers := river.NewWorkers()
		if err := river.AddWorkerSafely(workers, &trialWorker{handle: cfg.Handler, limit: cfg.Lease * 9 / 10, logf: cfg.Logf}); err != nil {
			return nil, err
		}
		if cfg.BuildHandler != nil {
			if err := river.AddWorkerSafely(workers, &buildWorker{handle: cfg.BuildHandler, limit: cfg.Lease * 9 / 10}); err != nil {
				return nil, err
			}
		}
		rc.Workers = workers
	}
	client, err := river.NewClient(drv, rc)
	if err != nil {
		return nil, fault.Infraf("job queue on %s: %w", st.Location, err)
	}
	return &Queue{st: st, client: client, cfg: cfg}, nil
}

type trialWorker struct {
	river.WorkerDefaults[TrialArgs]
	handle Handler
	limit  time.Duration
	logf   func(string, ...any)
}

// Timeout is the trial's own limit, kept under the lease so that River cuts a slow job
// off before another worker may rescue it.
func (w *trialWorker) Timeout(job *river.Job[TrialArgs]) time.Duration {
	t := job.Args.Timeout
	if t <= 0 || t > w.limit {
		if t > w.limit {
			w.logf("trial %s/%s: its time limit %s exceeds 90%% of the lease; cut to %s (give workers a longer --lease)",
				job.Args.Campaign, job.Args.Trial, t, w.limit)
		}
		t = w.limit
	}
	return t
}

type buildWorker struct {
	river.WorkerDefaults[BuildArgs]
	handle func(context.Context, BuildArgs) error
	limit  time.Duration
}

func (w *buildWorker) Timeout(job *river.Job[BuildArgs]) time.Duration {
	return min(max(job.Args.Timeout, time.Minute), w.limit)
}

func (w *buildWorker) Work(ctx context.Context, job *river.Job[BuildArgs]) error {
	return w.handle(ctx, job.Args)
}

func (w *trialWorker) Work(ctx context.Context, job *river.Job[TrialArgs]) error {
	return w.handle(ctx, job.Args)
}

// Enqueue inserts trials and builds as jobs in one transaction; record, when set, runs in
// the same transaction first (what the enqueuer records with them). Jobs already enqueued
// (in any state) are skipped. It returns how many were new.
func (q *Queue) Enqueue(ctx context.Context, trials []TrialArgs, builds []BuildArgs, record func(*sql.Tx) error) (int, error) {
	if len(trials)+len(builds) == 0 {
		return 0, nil
	}
	for _, b := range builds {
		if b.Campaign == "" || b.Key == "" || b.Arch == "" || len(b.Kernel) == 0 {
			return 0, fault.Inputf("enqueue: build %q of campaign %q lacks a campaign, key, arch or kernel", b.Key, b.Campaign)
		}
	}
	for _, t := range trials {
		if t.Campaign == "" || t.Trial == "" || t.Arch == "" || t.Image == "" || t.Repro == "" {
			return 0, fault.Inputf("enqueue: trial %q of campaign %q lacks a campaign, id, arch, kernel image or reproducer", t.Trial, t.Campaign)
		}
	}
	tx, err := q.st.DB().BeginTx(ctx, nil)
	if err != nil {
		return 0, fault.Infraf("enqueue on %s: %w", q.st.Location, err)
	}
	defer tx.Rollback()
	if record != nil {
		if err := record(tx); err != nil {
			return 0, err
		}
	}
	var params []river.InsertManyParams
	for _, t := range trials {
		params = append(params, river.InsertManyParams{Args: t})
	}
	for _, b := range builds {
		params = append(params, river.InsertManyParams{Args: b})
	}
	res, err := q.client.InsertManyTx(ctx, tx, params)
	if err != nil {
		return 0, fault.Infraf("enqueue on %s: %w", q.st.Location, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fault.Infraf("enqueue on %s: %w", q.st.Location, err)
	}
	n := 0
	for _, r := range res {
		if !r.UniqueSkippedAsDuplicate {
			n++
		}
	}
	return n, nil
}

// EnqueueTrial inserts one trial (or finds it already queued) and returns its job id.
func (q *Queue) EnqueueTrial(ctx context.Context, t TrialArgs) (int64, error) {
	res, err := q.client.Insert(ctx, t, nil)
	if err != nil {
		return 0, fault.Infraf("enqueue on %s: %w", q.st.Location, err)
	}
	return res.Job.ID, nil
}

// Ended says whether a job is over without success: cancelled (bad input: not retried)
// or discarded (out of attempts), with its last error. A running, waiting or completed
// job is not ended.
func (q *Queue) Ended(ctx context.Context, id int64) (bool, string, error) {
	j, err := q.client.JobGet(ctx, id)
	if err != nil {
		return false, "", fault.Infraf("job %d on %s: %w", id, q.st.Location, err)
	}
	if j.State != rivertype.JobStateCancelled && j.State != rivertype.JobStateDiscarded {
		return false, "", nil
	}
	msg := string(j.State)
	if n := len(j.Errors); n > 0 {
		msg += ": " + j.Errors[n-1].Error
	}
	return true, msg, nil
}

// Start starts working (a worker) and the heartbeat that status shows.
func (q *Queue) Start(ctx context.Context) error {
	if err := q.client.Start(ctx); err != nil {
		return fault.Infraf("job queue on %s: %w", q.st.Location, err)
	}
	q.hbStop, q.hbDone = make(chan struct{}), make(chan struct{})
	go q.heartbeat()
	return nil
}

// heartbeat records this worker every few seconds, with the jobs it runs, for status.
func (q *Queue) heartbeat() {
	defer close(q.hbDone)
	started := time.Now().UTC().Format(time.RFC3339)
	arches := strings.Join(q.cfg.Arches, ",")
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		running := q.runningHere(ctx)
		_, err := q.st.DB().ExecContext(ctx, `INSERT INTO reprolab_workers (name, slots, arches, started_at, heartbeat_at, running) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, running = excluded.running`,
			q.cfg.Name, q.cfg.Slots, arches, started, time.Now().UTC().Format(time.RFC3339), running)
		cancel()
		if err != nil {
			q.cfg.Logf("heartbeat: %v", err)
		}
		select {
		case <-q.hbStop:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = q.st.DB().ExecContext(ctx, `DELETE FROM reprolab_workers WHERE name = $1`, q.cfg.Name)
			cancel()
			return
		case <-tick.C:
		}
	}
}

// runningHere lists the trials this client runs (campaign/trial), for the heartbeat.
func (q *Queue) runningHere(ctx context.Context) string {
	res, err := q.client.JobList(ctx, river.NewJobListParams().States(rivertype.JobStateRunning).First(1000))
	if err != nil {
		return ""
	}
	var out []string
	for _, j := range res.Jobs {
		if len(j.AttemptedBy) > 0 && j.AttemptedBy[len(j.AttemptedBy)-1] == q.client.ID() {
			out = append(out, fmt.Sprintf("job %d", j.ID))
		}
	}
	return strings.Join(out, " ")
}

// Stop finishes the jobs in hand and stops; HandOff cancels them instead (their
// handlers hand them back) and stops.
func (q *Queue) Stop(ctx context.Context) error { return q.stop(ctx, q.client.Stop) }

// HandOff stops at once: running jobs' contexts are cancelled and their handlers are
// expected to return HandBack, so another worker takes them over without waiting for
// the lease.
func (q *Queue) HandOff(ctx context.Context) error { return q.stop(ctx, q.client.StopAndCancel) }

func (q *Queue) stop(ctx context.Context, f func(context.Context) error) error {
	err := f(ctx)
	if q.hbStop != nil {
		close(q.hbStop)
		<-q.hbDone
		q.hbStop = nil
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fault.Infraf("stopping the job queue: %w", err)
	}
	return nil
}

// Worker is a live worker as status shows it.
type Worker struct {
	Name, Arches, Running string
	Slots                 int
	Started, Heartbeat    time.Time
}

// QueueCount is the number of jobs in one queue and state.
type QueueCount struct {
	Queue, State string
	Jobs         int
}

// Status is the fleet at a glance.
type Status struct {
	Counts  []QueueCount
	Workers []Worker
	// Running lists running trials: who holds them and since when (the lease clock).
	Running []Lease
}

// Lease is a running job.
type Lease struct {
	JobID            int64
	Campaign, Trial  string
	Attempt          int
	Worker           string
	Since            time.Time
	PreviousAttempts int
}

// Status reads queue counts, live workers and running jobs.
func (q *Queue) Status(ctx context.Context) (*Status, error) {
	st := &Status{}
	rows, err := q.st.DB().QueryContext(ctx, `SELECT queue, state, COUNT(*) FROM river_job GROUP BY queue, state`)
	if err != nil {
		return nil, fault.Infraf("status on %s: %w", q.st.Location, err)
	}
	for rows.Next() {
		var c QueueCount
		if err := rows.Scan(&c.Queue, &c.State, &c.Jobs); err != nil {
			rows.Close()
			return nil, fault.Infraf("status: %w", err)
		}
		st.Counts = append(st.Counts, c)
	}
	rows.Close()
	sort.Slice(st.Counts, func(i, j int) bool {
		if st.Counts[i].Queue != st.Counts[j].Queue {
			return st.Counts[i].Queue < st.Counts[j].Queue
		}
		return st.Counts[i].State < st.Counts[j].State
	})
	wrows, err := q.st.DB().QueryContext(ctx, `SELECT name, slots, arches, started_at, heartbeat_at, running FROM reprolab_workers ORDER BY name`)
	if err != nil {
		return nil, fault.Infraf("status on %s: %w", q.st.Location, err)
	}
	for wrows.Next() {
		var w Worker
		var s, h string
		if err := wrows.Scan(&w.Name, &w.Slots, &w.Arches, &s, &h, &w.Running); err != nil {
			wrows.Close()
			return nil, fault.Infraf("status: %w", err)
		}
		w.Started, _ = time.Parse(time.RFC3339, s)
		w.Heartbeat, _ = time.Parse(time.RFC3339, h)
		st.Workers = append(st.Workers, w)
	}
	wrows.Close()
	res, err := q.client.JobList(ctx, river.NewJobListParams().States(rivertype.JobStateRunning).First(10000))
	if err != nil {
		return nil, fault.Infraf("status on %s: %w", q.st.Location, err)
	}
	for _, j := range res.Jobs {
		l := Lease{JobID: j.ID, PreviousAttempts: j.Attempt - 1}
		if j.AttemptedAt != nil {
			l.Since = *j.AttemptedAt
		}
		if len(j.AttemptedBy) > 0 {
			l.Worker = j.AttemptedBy[len(j.AttemptedBy)-1]
		}
		var a TrialArgs
		if err := jsonUnmarshal(j.EncodedArgs, &a); err == nil {
			l.Campaign, l.Trial, l.Attempt = a.Campaign, a.Trial, a.Attempt
		}
		st.Running = append(st.Running, l)
	}
	return st, nil
}
