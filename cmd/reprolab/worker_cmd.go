package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/fleet"
	"github.com/reprolab/reprolab/lab/matrix"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/queue"
	"github.com/reprolab/reprolab/lab/store"
)

const workerLong = `Run trials that matrices (and later validations and bisections) enqueue on a shared
results database, on this host, until stopped.

Start one worker per host, all on the same database (postgres://…) and the same results
folder (a shared mount: run folders are written there, and reports read them). Kernels and
reproducer specs must be at the same paths on every host. A worker takes jobs only for the
arches this host can emulate (qemu-system-* on PATH, or --arch), as many at once as its
cores and memory take (--slots).

SIGTERM or Ctrl-C hands the trials in progress back at once (another worker redoes them);
a worker killed outright leaves its trial to be taken over when its lease expires.`

type workerFlags struct {
	dsn, results  string
	slots, builds int
	arches        []string
	lease, poll   time.Duration
}

func newWorkerCmd() *cobra.Command {
	var f workerFlags
	cmd := &cobra.Command{
		Use:     "worker --db postgres://… [flags]",
		Short:   "run enqueued trials on this host (one of many workers on a shared database)",
		Long:    workerLong,
		Example: "  reprolab worker --db postgres://lab@db.example/reprolab --results /srv/reprolab/results",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return runWorker(&f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dsn, "db", "", "the shared database: postgres://… (or a SQLite file for workers on one host)")
	fl.StringVar(&f.results, "results", "results", "results root shared with the enqueuing host (run folders are written here)")
	fl.IntVar(&f.slots, "slots", 0, "trials at once (default: what the host's cores and memory take for a 2-vCPU, 512 MiB guest)")
	fl.IntVar(&f.builds, "builds", 1, "kernel builds at once, for the arches this host has compilers for (0: take no builds)")
	fl.StringSliceVar(&f.arches, "arch", nil, "arches to take trials for (default: those with qemu-system-* on PATH)")
	fl.DurationVar(&f.lease, "lease", 2*time.Hour, "a trial held longer than this by a silent worker is taken over (keep it above the longest trial)")
	fl.DurationVar(&f.poll, "poll", time.Second, "how often an idle worker looks for trials")
	_ = cmd.MarkFlagRequired("db")
	return cmd
}

func runWorker(f *workerFlags) error {
	if f.slots < 0 || f.builds < 0 || f.lease <= 0 || f.poll <= 0 {
		return usagef("--slots, --builds, --lease and --poll must be positive")
	}
	arches, err := workerArches(f.arches)
	if err != nil {
		return err
	}
	if f.slots == 0 {
		f.slots = matrix.DefaultJobs(2, 512)
	}
	ctx, stop := signalContext("handing the trials in progress back to the queue")
	defer stop()
	st, err := store.Open(ctx, f.dsn)
	if err != nil {
		return fault.AsInfra(err)
	}
	defer st.Close()
	stopping := make(chan struct{})
	w := &fleet.Worker{Store: st, ResultsDir: f.results, CacheDir: cacheDir(), Progress: os.Stderr, Stopping: stopping}
	queues := map[string]int{}
	for i, a := range arches { // the slots are shared out among the arch queues
		n := f.slots / len(arches)
		if i < f.slots%len(arches) {
			n++
		}
		queues[queue.TrialQueue(a)] = max(n, 1)
		if f.builds > 0 && canBuild(a) {
			queues[queue.BuildQueue(a)] = f.builds
		}
	}
	q, err := queue.Open(ctx, st, queue.Config{Queues: queues, Handler: w.Handle, BuildHandler: w.HandleBuild, Lease: f.lease, PollInterval: f.poll,
		Slots: f.slots, Arches: arches, Logf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, "worker: "+format+"\n", a...) }})
	if err != nil {
		return err
	}
	w.Queue = q
	if err := q.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	var names []string
	for name := range queues {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "worker: %d slot(s), queues %s, on %s; results in %s\n", f.slots, strings.Join(names, " "), st.Location, f.results)
	<-ctx.Done()
	close(stopping)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := q.HandOff(sctx); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "worker: stopped")
	return exitStatus(fault.ExitInterrupted)
}

// canBuild: the host has make and a C compiler for arch (lab/kbuild cross-compiles arm64
// with Debian's aarch64-linux-gnu- toolchain).
func canBuild(arch string) bool {
	cc := "gcc"
	if arch == string(qemu.ARM64) && runtime.GOARCH != "arm64" {
		cc = "aarch64-linux-gnu-gcc"
	}
	for _, b := range []string{"make", cc} {
		if _, err := exec.LookPath(b); err != nil {
			return false
		}
	}
	return true
}

// workerArches are the arches asked for, or those this host has a QEMU for.
func workerArches(asked []string) ([]string, error) {
	if len(asked) == 0 {
		for _, a := range []qemu.Arch{qemu.X86_64, qemu.ARM64} {
			if _, err := exec.LookPath(a.Binary()); err == nil {
				asked = append(asked, string(a))
			}
		}
		if len(asked) == 0 {
			return nil, fault.Inputf("no qemu-system-x86_64 or qemu-system-aarch64 on PATH: install QEMU (make setup) or this host cannot be a worker")
		}
		return asked, nil
	}
	for _, a := range asked {
		if _, err := qemu.ParseArch(a); err != nil {
			return nil, usagef("--arch %s: %v", a, err)
		}
	}
	return asked, nil
}

func newStatusCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "status --db postgres://…",
		Short: "show the job queues, live workers and the trials they hold",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return runStatus(cmd, dsn) },
	}
	cmd.Flags().StringVar(&dsn, "db", "", "the shared database: postgres://… or a SQLite file")
	_ = cmd.MarkFlagRequired("db")
	return cmd
}

func runStatus(cmd *cobra.Command, dsn string) error {
	ctx := cmd.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return fault.AsInfra(err)
	}
	defer st.Close()
	q, err := queue.Open(ctx, st, queue.Config{})
	if err != nil {
		return err
	}
	s, err := q.Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tSTATE\tJOBS")
	for _, c := range s.Counts {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", c.Queue, c.State, c.Jobs)
	}
	fmt.Fprintln(tw, "\nWORKER\tSLOTS\tARCHES\tLAST HEARTBEAT\tRUNNING")
	for _, w := range s.Workers {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s ago\t%s\n", w.Name, w.Slots, w.Arches, time.Since(w.Heartbeat).Round(time.Second), w.Running)
	}
	fmt.Fprintln(tw, "\nJOB\tCAMPAIGN\tTRIAL\tHELD BY\tFOR\tEARLIER ATTEMPTS")
	for _, l := range s.Running {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\n", l.JobID, l.Campaign, l.Trial, l.Worker, time.Since(l.Since).Round(time.Second), l.PreviousAttempts)
	}
	return tw.Flush()
}
