package fleet

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/queue"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/store/storetest"
)

// An engine with Remote set runs its trials on a worker and gets the worker's finished
// run back as if it had run here; a driver interrupted while it waits finds the same run
// on resume without the trial running twice; a trial the worker refuses (its kernel is
// not on the worker's host) comes back as bad input instead of hanging. The guest run is
// a fake: this measures the hand-over; lab/matrix's TestFleetMatrix boots real guests.
func TestRemoteTrials(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			st, err := store.Open(ctx, storetest.DSN(t, dialect))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			results := t.TempDir()
			image := filepath.Join(t.TempDir(), "bzImage")
			if err := os.WriteFile(image, []byte("kernel"), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := spec.LoadReproducer("../../reproducers/ci-smoke/repro.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var runs atomic.Int32
			release := make(chan struct{})
			w := &Worker{Store: st, ResultsDir: results, Run: func(ctx context.Context, c repro.Config) (*repro.Result, error) {
				runs.Add(1)
				if c.RunID == "slow" {
					<-release
				}
				if err := os.MkdirAll(filepath.Join(c.ResultsDir, c.RunID), 0o755); err != nil {
					return nil, err
				}
				return &repro.Result{Outcome: repro.Crashed, Iterations: 3, CrashedIter: 3, Host: "worker-host",
					Crashes: []repro.Crash{{Title: "sysrq: Trigger a crash", Signature: "sig"}}, Started: time.Now(), Finished: time.Now()}, nil
			}}
			q, err := queue.Open(ctx, st, queue.Config{Name: "w", Queues: map[string]int{queue.TrialQueue("x86_64"): 2},
				Handler: w.Handle, PollInterval: 50 * time.Millisecond, Lease: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer q.Stop(context.Background())
			e := &campaign.Engine{Store: st, ResultsDir: results, Remote: Remote(q, st, "tcg", 50*time.Millisecond)}
			if err := e.Open(ctx, campaign.Campaign{ID: "validate-x", Kind: campaign.Validate, Name: "x"}); err != nil {
				t.Fatal(err)
			}
			b := &campaign.Build{ID: "b1", Kernel: campaign.Kernel{Arch: "x86_64"}, Image: image}
			run, err := e.Trial(ctx, "validate-x", campaign.Trial{ID: "fast", Group: "baseline", Attempt: 1, Build: b, Repro: r})
			if err != nil || run == nil || run.Host != "worker-host" || len(run.Crashes) != 1 || run.Outcome != string(repro.Crashed) {
				t.Fatalf("remote trial: %+v, %v", run, err)
			}

			// Interrupted while waiting: nil, nil; the resumed call gets the same run.
			short, stop := context.WithCancel(ctx)
			go func() { time.Sleep(300 * time.Millisecond); stop() }()
			slow := campaign.Trial{ID: "slow", Group: "candidate", Attempt: 1, Build: b, Repro: r}
			if run, err := e.Trial(short, "validate-x", slow); run != nil || err != nil {
				t.Fatalf("interrupted wait: %+v, %v; want nil, nil", run, err)
			}
			close(release)
			if run, err := e.Trial(ctx, "validate-x", slow); err != nil || run == nil || run.ID != "slow" {
				t.Fatalf("resumed wait: %+v, %v", run, err)
			}
			if n := runs.Load(); n != 2 {
				t.Fatalf("%d guest runs, want 2 (the resumed trial must not run again)", n)
			}

			// A kernel the worker cannot see: refused, and said so.
			gone := &campaign.Build{ID: "b2", Kernel: campaign.Kernel{Arch: "x86_64"}, Image: filepath.Join(t.TempDir(), "missing")}
			if _, err := e.Trial(ctx, "validate-x", campaign.Trial{ID: "lost", Group: "x", Attempt: 1, Build: gone, Repro: r}); !fault.IsInput(err) {
				t.Fatalf("trial with a kernel missing on the worker: %v; want bad input", err)
			}
		})
	}
}
