package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/store/storetest"
)

func openStore(t testing.TB, dialect string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), storetest.DSN(t, dialect))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func trials(campaign string, n int, arch string) []TrialArgs {
	var out []TrialArgs
	for i := 1; i <= n; i++ {
		out = append(out, TrialArgs{Campaign: campaign, Trial: fmt.Sprintf("t%d", i), Attempt: 1, Arch: arch,
			Image: "/k/" + arch, Repro: "/r.yaml", Timeout: time.Minute})
	}
	return out
}

// Two workers drain a queue: every trial runs exactly once, a re-enqueue of the same
// trials inserts nothing (not even after they completed), a cancelled job is not
// retried, and status counts what happened.
func TestWorkAllJobs(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			st := openStore(t, dialect)
			var mu sync.Mutex
			ran := map[string]int{}
			handle := func(ctx context.Context, a TrialArgs) error {
				mu.Lock()
				ran[a.Trial]++
				mu.Unlock()
				if a.Trial == "t3" {
					return Cancel(errors.New("bad input"))
				}
				return nil
			}
			enq, err := Open(ctx, st, Config{})
			if err != nil {
				t.Fatal(err)
			}
			n, err := enq.Enqueue(ctx, trials("c1", 12, "x86_64"), nil, nil)
			if err != nil || n != 12 {
				t.Fatalf("enqueue: %d new, %v", n, err)
			}
			var ws []*Queue
			for i := 0; i < 2; i++ {
				w, err := Open(ctx, st, Config{Name: fmt.Sprintf("w%d", i), Queues: map[string]int{TrialQueue("x86_64"): 2},
					Handler: handle, PollInterval: 50 * time.Millisecond, Lease: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Start(ctx); err != nil {
					t.Fatal(err)
				}
				ws = append(ws, w)
			}
			waitState(t, ctx, enq, map[string]int{"completed": 11, "cancelled": 1})
			if n, err := enq.Enqueue(ctx, trials("c1", 12, "x86_64"), nil, nil); err != nil || n != 0 {
				t.Fatalf("re-enqueue: %d new, %v; want 0", n, err)
			}
			for _, w := range ws {
				if err := w.Stop(ctx); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i <= 12; i++ {
				if ran[fmt.Sprintf("t%d", i)] != 1 {
					t.Errorf("trial t%d ran %d times, want 1", i, ran[fmt.Sprintf("t%d", i)])
				}
			}
		})
	}
}

// A job whose worker hands it back (SIGTERM) is taken by another worker at once, not
// after the lease.
func TestHandOff(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			st := openStore(t, dialect)
			started := make(chan string, 4)
			var mu sync.Mutex
			by := map[string]int{}
			mk := func(name string) *Queue {
				w, err := Open(ctx, st, Config{Name: name, Queues: map[string]int{TrialQueue("arm64"): 1}, PollInterval: 50 * time.Millisecond, Lease: time.Hour,
					Handler: func(ctx context.Context, a TrialArgs) error {
						started <- name
						if name == "first" {
							<-ctx.Done()
							return HandBack()
						}
						mu.Lock()
						by[name]++
						mu.Unlock()
						return nil
					}})
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			first := mk("first")
			if err := first.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := first.Enqueue(ctx, trials("c2", 1, "arm64"), nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := <-started; got != "first" {
				t.Fatalf("started by %s", got)
			}
			if err := first.HandOff(ctx); err != nil {
				t.Fatal(err)
			}
			second := mk("second")
			if err := second.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer second.Stop(ctx)
			waitState(t, ctx, second, map[string]int{"completed": 1})
			mu.Lock()
			defer mu.Unlock()
			if by["second"] != 1 {
				t.Fatalf("second worker ran the job %d times", by["second"])
			}
		})
	}
}

func waitState(t *testing.T, ctx context.Context, q *Queue, want map[string]int) {
	t.Helper()
	for {
		st, err := q.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, c := range st.Counts {
			got[c.State] += c.Jobs
		}
		ok := true
		for k, v := range want {
			if got[k] != v {
				ok = false
			}
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("jobs by state %v, want %v", got, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
