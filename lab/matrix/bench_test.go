package matrix

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/store"
)

// BenchmarkMatrixThroughput runs the CI matrix's four plain cells (both arches × probe
// parameter 0/1, one run each, 2 iterations) at --jobs 1 and 2 and reports cells/hour.
// It boots 8 TCG guests, so it runs only with REPROLAB_BENCH_MATRIX=1.
func BenchmarkMatrixThroughput(b *testing.B) {
	if os.Getenv("REPROLAB_BENCH_MATRIX") == "" {
		b.Skip("boots guests: set REPROLAB_BENCH_MATRIX=1")
	}
	requireGuests(b)
	for _, jobs := range []int{1, 2} {
		b.Run("jobs="+strconv.Itoa(jobs), func(b *testing.B) {
			var cells int
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				s, err := Load("../../reproducers/ci-smoke/matrix.yaml")
				if err != nil {
					b.Fatal(err)
				}
				results := b.TempDir()
				st, err := store.Open(context.Background(), results)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				sum, err := Run(context.Background(), Options{Spec: s, Store: st, ResultsDir: results, Jobs: jobs, Runs: 1,
					Only: []Match{{"cmdline": "plain"}}})
				elapsed += time.Since(t0)
				st.Close()
				if err != nil || sum.Ran != 4 || sum.InfraErrors > 0 {
					b.Fatalf("%+v %v", sum, err)
				}
				cells += sum.Cells
			}
			b.ReportMetric(float64(cells)/elapsed.Hours(), "cells/hour")
		})
	}
}
