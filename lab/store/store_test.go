package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// backends are the databases the tests run against: SQLite always, and a real PostgreSQL
// when REPROLAB_TEST_POSTGRES holds a DSN (CI sets one when it can start postgresql).
func backends(t testing.TB) map[string]func(t testing.TB) *Store {
	b := map[string]func(t testing.TB) *Store{
		"sqlite": func(t testing.TB) *Store {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "r.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	if dsn := os.Getenv("REPROLAB_TEST_POSTGRES"); dsn != "" {
		b["postgres"] = func(t testing.TB) *Store {
			s, err := Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			// Each test starts from an empty schema.
			for _, tbl := range []string{"crashes", "runs", "cells", "builds", "campaigns"} {
				if _, err := s.db.Exec("DELETE FROM " + tbl); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	return b
}

func TestRunLifecycle(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if err := s.PutCampaign(ctx, Campaign{ID: "matrix-m", Kind: "matrix", Name: "m", SpecPath: "m.yaml", SpecSHA256: "ab"}); err != nil {
				t.Fatal(err)
			}
			cells := []Cell{
				{ID: "x86_64.p0", Arch: "x86_64", Probe: "0", PlannedRuns: 2, Position: 0},
				{ID: "x86_64.p100", Arch: "x86_64", Probe: "100", ExpectCrash: true, PlannedRuns: 2, Position: 1},
			}
			if err := s.PutCells(ctx, "matrix-m", cells); err != nil {
				t.Fatal(err)
			}
			begin := func(cell string, k int) Run {
				r := Run{ID: fmt.Sprintf("m-%s-r%d", cell, k), Campaign: "matrix-m", Group: cell, Attempt: k, Arch: "x86_64", Dir: "results/x"}
				if err := s.BeginRun(ctx, r); err != nil {
					t.Fatal(err)
				}
				return r
			}
			r1 := begin("x86_64.p0", 1)
			r1.Outcome, r1.LoopSeconds, r1.Iterations = "survived", 30, 2
			r1.Load, r1.Cores, r1.Timings = [3]float64{2.5, 1.25, 0.5}, 2, `{"boot_seconds":6.2}`
			if err := s.FinishRun(ctx, r1); err != nil {
				t.Fatal(err)
			}
			r2 := begin("x86_64.p100", 1)
			r2.Outcome, r2.TimeToCrash, r2.Reproduced = "crashed", 4.5, true
			r2.Crashes = []Crash{{Title: "BUG: unable to handle kernel NULL pointer dereference in test_clear_page_writeback", Type: "NULL-DEREF", Signature: "abc", ReportPath: "report-1.txt"}}
			if err := s.FinishRun(ctx, r2); err != nil {
				t.Fatal(err)
			}
			// A run killed mid-way stays "running" and is never counted as finished.
			begin("x86_64.p100", 2)
			// Finishing twice is refused: nothing is counted twice.
			if err := s.FinishRun(ctx, r2); !errors.Is(err, ErrNotRunning) {
				t.Fatalf("second FinishRun: %v", err)
			}
			runs, err := s.Runs(ctx, "matrix-m")
			if err != nil {
				t.Fatal(err)
			}
			states := map[string]string{}
			for _, r := range runs {
				states[r.ID] = r.State + "/" + r.Outcome
			}
			want := map[string]string{"m-x86_64.p0-r1": "finished/survived", "m-x86_64.p100-r1": "finished/crashed", "m-x86_64.p100-r2": "running/running"}
			if fmt.Sprint(states) != fmt.Sprint(want) {
				t.Fatalf("states %v, want %v", states, want)
			}
			for _, r := range runs {
				if r.ID == "m-x86_64.p0-r1" && (r.Load != [3]float64{2.5, 1.25, 0.5} || r.Cores != 2 || r.Timings != `{"boot_seconds":6.2}`) {
					t.Fatalf("load and timings read back as %v on %d cores, %q", r.Load, r.Cores, r.Timings)
				}
				if r.ID == "m-x86_64.p100-r1" && (len(r.Crashes) != 1 || r.Crashes[0].Seq != 1 || r.Crashes[0].Signature != "abc" || !r.Reproduced || r.TimeToCrash != 4.5) {
					t.Fatalf("crashed run read back as %+v", r)
				}
			}
			// The interrupted attempt is discarded and redone under the same ID.
			if err := s.DiscardRun(ctx, "matrix-m", "m-x86_64.p100-r2", 2); err != nil {
				t.Fatal(err)
			}
			r3 := begin("x86_64.p100", 2)
			r3.Outcome = "infra-error"
			r3.Error = "qemu: exited with status 1"
			if err := s.FinishRun(ctx, r3); err != nil {
				t.Fatal(err)
			}
			got, _ := s.Cells(ctx, "matrix-m")
			if len(got) != 2 || !got[1].ExpectCrash || got[0].ID != "x86_64.p0" {
				t.Fatalf("cells %+v", got)
			}
			runs, _ = s.Runs(ctx, "matrix-m")
			if len(runs) != 3 {
				t.Fatalf("%d runs", len(runs))
			}
		})
	}
}

func TestDiscardDropsCrashes(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			r := Run{ID: "m-c-r1", Campaign: "matrix-m", Group: "c", Attempt: 1}
			if err := s.BeginRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			r.Outcome = "crashed"
			r.Crashes = []Crash{{Title: "a"}, {Title: "b"}}
			if err := s.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := s.DiscardRun(ctx, r.Campaign, r.ID, r.Attempt); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := s.db.QueryRow(`SELECT COUNT(*) FROM crashes`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("crashes left: %d %v", n, err)
			}
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir) // a directory gets reprolab.db
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBuild(ctx, Build{ID: "b1", Campaign: "matrix-m", Arch: "arm64", Status: "ok", Seconds: 1.5}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, filepath.Join(dir, DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.Builds(ctx, "matrix-m")
	if err != nil || len(b) != 1 || b[0].Seconds != 1.5 {
		t.Fatalf("%+v %v", b, err)
	}
}

func TestBadLocation(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := Open(context.Background(), filepath.Join(f, "sub", "r.db")); err == nil {
		t.Fatal("opening a database under a regular file succeeded")
	}
}

// Parallel cells finish runs concurrently; none may be lost.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for k := 1; k <= 8; k++ {
						r := Run{ID: fmt.Sprintf("m-c%d-r%d", w, k), Campaign: "matrix-m", Group: fmt.Sprint("c", w), Attempt: k}
						if err := s.BeginRun(ctx, r); err != nil {
							errs <- err
							return
						}
						r.Outcome = "crashed"
						r.Crashes = []Crash{{Title: "t"}}
						if err := s.FinishRun(ctx, r); err != nil {
							errs <- err
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			runs, err := s.Runs(ctx, "matrix-m")
			if err != nil || len(runs) != 64 {
				t.Fatalf("%d runs, %v", len(runs), err)
			}
		})
	}
}

// BenchmarkRunWrites measures the store's write rate: one BeginRun + FinishRun (with one
// crash) per op, each a durable commit.
func BenchmarkRunWrites(b *testing.B) {
	ctx := context.Background()
	for name, open := range backends(b) {
		b.Run(name, func(b *testing.B) {
			s := open(b)
			start := time.Now()
			for i := 0; i < b.N; i++ {
				r := Run{ID: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), Campaign: "bench", Group: "c", Attempt: i}
				if err := s.BeginRun(ctx, r); err != nil {
					b.Fatal(err)
				}
				r.Outcome = "crashed"
				r.Crashes = []Crash{{Title: "t", Signature: "s"}}
				if err := s.FinishRun(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
		})
	}
}
