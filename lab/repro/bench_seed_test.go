package repro

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/hostload"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/stats"
)

// seedKernel returns the founding case's kernel for arch: pristine v4.11 with the seed probe.
// `make seed-kernels` (kernel.org's tarball, or SEED_SOURCE="--git TREE --ref v4.11") records
// it in $REPROLAB_CACHE/seed-kernel-<arch>.json; without that record, the newest such build
// in the kbuild cache (a matrix run's, say) is used. The benchmarks skip without either: CI
// has no v4.11 source.
func seedKernel(t testing.TB, arch qemu.Arch) *kbuild.Result {
	t.Helper()
	if _, err := lookPath(arch.Binary()); err != nil {
		t.Skipf("%s not installed: run images/setup-host.sh", arch.Binary())
	}
	p := filepath.Join(cacheDir(), "seed-kernel-"+string(arch)+".json")
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		if k := cachedSeedKernel(t, arch); k != nil {
			return k
		}
		t.Skipf("no seed kernel for %s (%s, nor a v4.11 build with the seed probe in the kbuild cache): run `make seed-kernels`", arch, p)
	}
	if err != nil {
		t.Fatal(err)
	}
	var res kbuild.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if _, err := os.Stat(res.Kernel); err != nil {
		t.Fatalf("seed kernel %s: %v (rebuild: make seed-kernels)", arch, err)
	}
	return &res
}

// cachedSeedKernel finds the newest v4.11 build for arch in the kbuild cache that carries the
// seed probe and no patch, from its metadata.json.
func cachedSeedKernel(t testing.TB, arch qemu.Arch) *kbuild.Result {
	metas, _ := filepath.Glob(filepath.Join(cacheDir(), "kbuild", "out", "*", "metadata.json"))
	var best *kbuild.Result
	var bestBuilt time.Time
	for _, m := range metas {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var md kbuild.Metadata // the build's own record, as kbuild writes it
		if json.Unmarshal(data, &md) != nil || md.Arch != string(arch) || !strings.HasPrefix(md.KernelVersion, "4.11") ||
			len(md.Patches) > 0 || len(md.Probes) != 1 || md.Probes[0].Name != "seed" || !md.Built.After(bestBuilt) {
			continue
		}
		dir := filepath.Dir(m)
		image := md.Artifacts["bzImage"]
		if arch == qemu.ARM64 {
			image = md.Artifacts["Image"]
		}
		if image == "" {
			continue
		}
		res := &kbuild.Result{Kernel: filepath.Join(dir, image), Dir: dir, CmdlineParams: md.CmdlineParams, Version: md.KernelVersion}
		if v := md.Artifacts["vmlinux"]; v != "" {
			res.Vmlinux = filepath.Join(dir, v)
		}
		if _, err := os.Stat(res.Kernel); err == nil {
			best, bestBuilt = res, md.Built
		}
	}
	if best != nil {
		t.Logf("seed kernel %s: %s (kbuild cache)", arch, best.Dir)
	}
	return best
}

// seedRuns is how many trials each mode gets per benchmark iteration: medians over at least
// five; REPROLAB_SEED_RUNS=N asks for more, for a tighter rate interval.
func seedRuns() int {
	if n, err := strconv.Atoi(os.Getenv("REPROLAB_SEED_RUNS")); err == nil && n >= 5 {
		return n
	}
	return 5
}

// seedTrial is one trial's figures.
type seedTrial struct {
	toPanic  float64 // Run called → the panic's report parsed and written
	total    float64 // Run called → Run returned
	loop     float64 // loop time exposed to the race (first iteration → crash or budget end)
	crashed  bool    // crashed in the loop with the expected title
	inSetup  bool    // crashed before the first iteration (boot or setup)
	titleBad string  // crashed with a title the spec does not expect
}

// BenchmarkSeed measures the founding case itself on v4.11 with the probe at 100 µs, both
// arches, fresh boots against trials restored from a snapshot: median start → parsed panic,
// trials per hour and the crash rate per loop-hour with its 95% interval, so a snapshot's
// effect on the race's rate is reported rather than assumed. Run it on an idle host: load
// changes the rate several-fold, and every line carries the load.
//
//	make seed-kernels SEED_SOURCE="--git ~/linux --ref v4.11"
//	go test -run '^$' -bench Seed -benchtime 1x -timeout 60m ./lab/repro
func BenchmarkSeed(b *testing.B) {
	for _, arch := range arches {
		for _, mode := range []string{"fresh", "snapshot"} {
			b.Run(string(arch)+"/"+mode, func(b *testing.B) {
				k := seedKernel(b, arch)
				spec := loadSpec(b, "../../reproducers/memcg-writeback-null/repro.yaml")
				tag := make([]byte, 4)
				_, _ = rand.Read(tag)
				cfg := Config{Arch: arch, Kernel: k.Kernel, Vmlinux: k.Vmlinux, Repro: spec,
					Duration: 3 * time.Minute, CacheDir: cacheDir(), Snapshot: mode == "snapshot",
					// A fresh tag per benchmark: the snapshot is prepared here, not reused.
					Cmdline: append(append([]string{}, k.CmdlineParams...), "reprolab.bench="+hex.EncodeToString(tag))}
				if mode == "snapshot" {
					prepareSeedSnapshot(b, cfg)
				}
				var trials []seedTrial
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := 0; j < seedRuns(); j++ {
						cfg.ResultsDir = b.TempDir()
						res, err := Run(context.Background(), cfg)
						if err != nil {
							b.Fatal(err)
						}
						tr := seedFigures(b, res)
						trials = append(trials, tr)
						b.Logf("%s %s #%d (%v): outcome %s at iteration %d, panic parsed at %.1fs, loop %.1fs%s\n  split: %s",
							arch, mode, j+1, res.HostLoad, res.Outcome, res.CrashedIter, tr.toPanic, tr.loop, tr.titleBad, res.Timings.Split())
						if mode == "snapshot" && res.Snapshot != "restored" {
							b.Errorf("trial %d was not restored from the snapshot (%q)", j+1, res.Snapshot)
						}
					}
				}
				reportSeed(b, trials)
			})
		}
	}
}

// prepareSeedSnapshot runs the trial that boots, sets up and saves the state, and removes
// the state when the benchmark ends. On v4.11 the fill itself may crash before the save; it
// is then tried again.
func prepareSeedSnapshot(b *testing.B, cfg Config) {
	b.Helper()
	for attempt := 1; attempt <= 5; attempt++ {
		cfg.ResultsDir = b.TempDir()
		res, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatalf("preparing the snapshot: %v", err)
		}
		if res.SnapshotDir != "" {
			b.Cleanup(func() { os.RemoveAll(res.SnapshotDir); os.Remove(res.SnapshotDir + ".lock") })
		}
		if res.Snapshot == "prepared" {
			b.Logf("prepare (attempt %d, %v): %s %s", attempt, res.HostLoad, res.Outcome, res.Timings.Split())
			return
		}
		b.Logf("prepare attempt %d: no state saved (%s at iteration %d)", attempt, res.Outcome, res.CrashedIter)
	}
	b.Fatal("no snapshot after 5 attempts: the guest crashes during setup every time")
}

func seedFigures(b *testing.B, res *Result) seedTrial {
	t := res.Timings
	tr := seedTrial{total: t.TotalSeconds, loop: t.LoopSeconds}
	switch res.Outcome {
	case Crashed:
		tr.toPanic = t.CrashAtSeconds + t.CrashNoticeSeconds + t.CrashReportSeconds
		tr.inSetup = res.CrashedIter == 0
		tr.crashed = res.Reproduced && !tr.inSetup
		if !res.Reproduced && len(res.Crashes) > 0 {
			tr.titleBad = fmt.Sprintf(" (unexpected title %q)", res.Crashes[0].Title)
		}
	case Survived:
	default:
		b.Fatalf("outcome %s: %s", res.Outcome, res.Error)
	}
	return tr
}

func reportSeed(b *testing.B, trials []seedTrial) {
	var toPanic, totals []float64
	var exposure float64
	crashes, inSetup := 0, 0
	for _, tr := range trials {
		totals = append(totals, tr.total)
		exposure += tr.loop
		if tr.crashed {
			crashes++
		}
		if tr.inSetup {
			inSetup++
		}
		if tr.crashed || tr.inSetup {
			toPanic = append(toPanic, tr.toPanic)
		}
	}
	sort.Float64s(toPanic)
	rate, lo, hi := stats.PoissonRate(crashes, exposure/3600, 0.95)
	b.Logf("%d trials: %d crashed in the loop, %d in boot/setup; median start → parsed panic %.1fs (all: %.1f); %.2f loop-hours exposed; crash rate %.0f/loop-hour (95%%: %.0f–%.0f)",
		len(trials), crashes, inSetup, Median(toPanic), toPanic, exposure/3600, rate, lo, hi)
	b.ReportMetric(Median(toPanic), "s-to-parsed-panic")
	// Trials per hour over the wall time they took: a trial that never crashes runs its
	// whole budget, and that is what a campaign pays for it.
	var wall float64
	for _, t := range totals {
		wall += t
	}
	b.ReportMetric(3600*float64(len(totals))/wall, "trials/hour")
	b.ReportMetric(rate, "crashes/loop-hour")
	b.ReportMetric(lo, "rate-lo95")
	b.ReportMetric(hi, "rate-hi95")
	b.ReportMetric(float64(inSetup), "setup-crashes")
	if l, err := hostload.Read(); err == nil {
		b.ReportMetric(l.Load1, "load1")
	}
	b.ReportMetric(0, "ns/op")
}
