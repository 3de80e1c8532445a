package queue

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/store/storetest"
)

// BenchmarkQueue measures the queue alone with no-op trials, on SQLite and (with
// REPROLAB_TEST_POSTGRES) PostgreSQL: inserts per second in one transaction, then
// throughput of one worker client with 4 slots draining them, and claim latency (job
// inserted → its handler starts) when jobs arrive one at a time to an idle worker.
func BenchmarkQueue(b *testing.B) {
	for _, dialect := range storetest.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			st := openStore(b, dialect)
			const n = 200
			var mu sync.Mutex
			started := map[string]time.Time{}
			done := make(chan struct{}, n+100)
			w, err := Open(ctx, st, Config{Name: "bench", Queues: map[string]int{TrialQueue("x86_64"): 4}, PollInterval: 20 * time.Millisecond,
				Handler: func(ctx context.Context, a TrialArgs) error {
					mu.Lock()
					started[a.Campaign+"/"+a.Trial] = time.Now()
					mu.Unlock()
					done <- struct{}{}
					return nil
				}})
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				camp := fmt.Sprintf("bulk%d", i)
				t0 := time.Now()
				if _, err := w.Enqueue(ctx, trials(camp, n, "x86_64"), nil, nil); err != nil {
					b.Fatal(err)
				}
				ins := time.Since(t0)
				t1 := time.Now()
				if err := w.Start(ctx); err != nil {
					b.Fatal(err)
				}
				for j := 0; j < n; j++ {
					<-done
				}
				drain := time.Since(t1)
				// Claim latency: one job at a time into the idle, polling worker.
				var lat []time.Duration
				for j := 0; j < 20; j++ {
					one := trials(fmt.Sprintf("one%d-%d", i, j), 1, "x86_64")
					t := time.Now()
					if _, err := w.Enqueue(ctx, one, nil, nil); err != nil {
						b.Fatal(err)
					}
					<-done
					mu.Lock()
					lat = append(lat, started[one[0].Campaign+"/t1"].Sub(t))
					mu.Unlock()
				}
				if err := w.Stop(ctx); err != nil {
					b.Fatal(err)
				}
				sort.Slice(lat, func(a, c int) bool { return lat[a] < lat[c] })
				b.ReportMetric(float64(n)/ins.Seconds(), "inserts/s")
				b.ReportMetric(float64(n)/drain.Seconds(), "jobs/s")
				b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "claim-p50-ms")
				b.ReportMetric(float64(lat[len(lat)*9/10].Milliseconds()), "claim-p90-ms")
			}
		})
	}
}
