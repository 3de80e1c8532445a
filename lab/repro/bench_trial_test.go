package repro

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/reprolab/reprolab/lab/hostload"
)

// BenchmarkTrial measures one short trial of the shipped seed reproducer (2 iterations)
// booted fresh against restored from a snapshot, per arch on Debian's kernels: time to the
// first iteration, whole-trial wall time and trials per hour, with the host load.
//
//	go test -run '^$' -bench Trial -benchtime 3x ./lab/repro
func BenchmarkTrial(b *testing.B) {
	for _, arch := range arches {
		for _, mode := range []string{"fresh", "snapshot"} {
			b.Run(string(arch)+"/"+mode, func(b *testing.B) {
				kernel, modules := debianKernel(b, arch)
				spec := loadSpec(b, "../../reproducers/memcg-writeback-null/repro.yaml")
				tag := make([]byte, 4)
				_, _ = rand.Read(tag)
				cfg := Config{Arch: arch, Kernel: kernel, ModulesDir: modules, Repro: spec, Iterations: 2,
					CacheDir: cacheDir(), Snapshot: mode == "snapshot", Cmdline: []string{"reprolab.bench=" + hex.EncodeToString(tag)}}
				if mode == "snapshot" {
					// The preparing trial is not what later trials cost: take it first.
					cfg.ResultsDir = b.TempDir()
					res, err := Run(context.Background(), cfg)
					if err != nil || res.Outcome != Survived {
						b.Fatalf("preparing the snapshot: %v %s %s", err, res.Outcome, res.Error)
					}
					b.Logf("prepare: %s", res.Timings.Split())
					defer os.RemoveAll(res.SnapshotDir)
					defer os.Remove(res.SnapshotDir + ".lock")
				}
				var first, total, iter, over float64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					cfg.ResultsDir = b.TempDir()
					res, err := Run(context.Background(), cfg)
					if err != nil {
						b.Fatal(err)
					}
					if res.Outcome != Survived {
						b.Fatalf("outcome %s: %s", res.Outcome, res.Error)
					}
					first += res.Timings.FirstIterSeconds
					total += res.Timings.TotalSeconds
					iter += res.Timings.Iterations.MedianMs
					over += res.Timings.IterOverheadMillis
					load := "?"
					if res.HostLoad != nil {
						load = res.HostLoad.String()
					}
					b.Logf("%s %s (%s): %s", arch, mode, load, res.Timings.Split())
				}
				n := float64(b.N)
				b.ReportMetric(first/n, "s-to-first-iteration")
				b.ReportMetric(total/n, "s/trial")
				b.ReportMetric(3600/(total/n), "trials/hour")
				b.ReportMetric(iter/n, "ms/dd-iteration")
				b.ReportMetric(over/n, "harness-ms/iteration")
				if l, err := hostload.Read(); err == nil {
					b.ReportMetric(l.Load1, "load1")
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkIteration measures the harness's own cost per iteration: `true` looped by the
// agent inside the guest against one SSH session per iteration, on the Debian x86-64 kernel.
//
//	go test -run '^$' -bench Iteration -benchtime 1x ./lab/repro
func BenchmarkIteration(b *testing.B) {
	for _, mode := range []string{"agent", "ssh"} {
		b.Run(mode, func(b *testing.B) {
			kernel, modules := debianKernel(b, arches[0])
			spec := loadSpec(b, "testdata/trivial.yaml")
			var perIter, over float64
			for i := 0; i < b.N; i++ {
				res, err := Run(context.Background(), Config{Arch: arches[0], Kernel: kernel, ModulesDir: modules, Repro: spec,
					Iterations: 100, ResultsDir: b.TempDir(), CacheDir: cacheDir(), LoopOverSSH: mode == "ssh"})
				if err != nil || res.Outcome != Survived {
					b.Fatalf("%v %s %s", err, res.Outcome, res.Error)
				}
				perIter += 1000 * res.LoopSeconds / float64(res.Iterations)
				over += res.Timings.IterOverheadMillis
				b.Logf("%s: %d iterations of true in %.2fs, %.1f ms each (median %.1f ms, harness %.1f ms), %v",
					mode, res.Iterations, res.LoopSeconds, 1000*res.LoopSeconds/float64(res.Iterations), res.Timings.Iterations.MedianMs, res.Timings.IterOverheadMillis, res.HostLoad)
			}
			n := float64(b.N)
			b.ReportMetric(perIter/n, "ms/iteration")
			b.ReportMetric(over/n, "harness-ms/iteration")
			if l, err := hostload.Read(); err == nil {
				b.ReportMetric(l.Load1, "load1")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}
