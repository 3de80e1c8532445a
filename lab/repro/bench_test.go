package repro

import (
	"context"
	"testing"

	"github.com/reprolab/reprolab/lab/qemu"
)

// BenchmarkBoot measures, per arch, QEMU start → the agent answering SSH (boot-to-ready),
// next to the kernel's own timestamp at /init from the console, and the per-iteration
// overhead of a trivial command (`true`) through SSH and the harness.
//
//	go test -run '^$' -bench Boot -benchtime 1x ./lab/repro
func BenchmarkBoot(b *testing.B) {
	type target struct {
		name    string
		arch    qemu.Arch
		kernel  func(b *testing.B) (image, modules string)
		bzImage bool // boot the bzImage even where the PVH entry exists (pvh.go)
	}
	targets := []target{}
	for _, arch := range arches {
		targets = append(targets, target{"debian-" + string(arch), arch, func(b *testing.B) (string, string) { return debianKernel(b, arch) }, false})
	}
	targets = append(targets, target{"debian-x86_64-bzimage", qemu.X86_64, func(b *testing.B) (string, string) { return debianKernel(b, qemu.X86_64) }, true})
	// The kernel `make bench` builds: everything built in, no modules to load.
	targets = append(targets, target{"kbuild-6.1-x86_64", qemu.X86_64, func(b *testing.B) (string, string) {
		k := ciKernel(b)
		return k.Kernel, ""
	}, false})
	for _, tg := range targets {
		arch := tg.arch
		b.Run(tg.name, func(b *testing.B) {
			kernel, modules := tg.kernel(b)
			if tg.bzImage {
				b.Setenv("REPROLAB_NO_PVH", "1")
			}
			spec := loadSpec(b, "testdata/trivial.yaml")
			var boot, init, perIter float64
			for i := 0; i < b.N; i++ {
				res, err := Run(context.Background(), Config{
					Arch: arch, Kernel: kernel, ModulesDir: modules, Repro: spec,
					ResultsDir: b.TempDir(), CacheDir: cacheDir(),
				})
				if err != nil {
					b.Fatal(err)
				}
				if res.Outcome != Survived {
					b.Fatalf("outcome %s: %s", res.Outcome, res.Error)
				}
				boot += res.BootSeconds
				init += res.KernelToInit
				perIter += res.LoopSeconds / float64(res.Iterations)
				b.Logf("%s accel=%s boot-to-ready=%.2fs kernel-to-init=%.2fs per-iteration=%.1fms (%v)\n  split: %s",
					arch, res.Accel, res.BootSeconds, res.KernelToInit, 1000*res.LoopSeconds/float64(res.Iterations), res.HostLoad, res.Timings.Split())
			}
			n := float64(b.N)
			b.ReportMetric(boot/n, "boot-to-ready-s")
			b.ReportMetric(init/n, "kernel-to-init-s")
			b.ReportMetric(perIter/n*1000, "ms/iteration")
			b.ReportMetric(0, "ns/op")
		})
	}
}
