package kbuild

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/kbuild/kconfig"
)

// ciSpec is the kernel CI builds once (`reprolab kernel build --spec
// kconfigs/ci-6.1-x86_64.yaml`); with the same cache, this test finds it
// built and the first Build is a cache hit.
func ciSpec(t testing.TB) Spec {
	if _, err := os.Stat("/usr/src/linux-source-6.1.tar.xz"); err != nil {
		t.Skip("linux-source-6.1 not installed (apt-get install linux-source-6.1)")
	}
	s, err := LoadSpec("../../kconfigs/ci-6.1-x86_64.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.FragmentDirs = []string{"../../kconfigs"}
	s.Progress = os.Stderr
	return *s
}

func readMeta(t *testing.T, r *Result) Metadata {
	data, err := os.ReadFile(r.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeProbe(t *testing.T, delay, anchorKey, anchor string) string {
	p := filepath.Join(t.TempDir(), "probe.yaml")
	y := "name: seed\ndelay_us: " + delay + "\nfile: mm/page-writeback.c\nfunction: __folio_end_writeback\n" + anchorKey + ": \"" + anchor + "\"\n"
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBuildDebian61 builds Debian's linux-source-6.1 for x86-64 with the
// guest fragments, debug info and the seed delay probe, then checks the
// cache: identical inputs run no make at all; a rebuild in the kept tree
// compiles nothing; a new default delay recompiles only the generated probe
// file; a moved probe recompiles only the probed file.
func TestBuildDebian61(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a kernel (-short)")
	}
	ctx := context.Background()
	spec := ciSpec(t)
	r, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first build: cached=%v compiled=%d dir=%s", r.Cached, r.Compiled, r.Dir)
	data, err := os.ReadFile(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := kconfig.ParseConfig(data)
	for sym, want := range map[string]string{"DEBUG_VM": "y", "IKCONFIG_PROC": "y", "MEMCG": "y", "DM_CRYPT": "y", "CRYPTO_XTS": "y", "EXT4_FS": "y", "PVPANIC": "y", "VIRTIO_BLK": "y", "DEBUG_INFO": "y", "MODULES": "n"} {
		if got := cfg.Value(sym); got != want {
			t.Errorf("CONFIG_%s=%s, want %s", sym, got, want)
		}
	}
	if strings.Join(r.CmdlineParams, " ") != "reprolab.delay_seed=100" {
		t.Errorf("cmdline params %v", r.CmdlineParams)
	}
	sm, err := os.ReadFile(r.SystemMap)
	if err != nil || !strings.Contains(string(sm), " reprolab_delay_seed\n") || !strings.Contains(string(sm), " __folio_end_writeback\n") {
		t.Errorf("System.map lacks the probe variable: %v", err)
	}
	if fi, err := os.Stat(r.Kernel); err != nil || fi.Size() < 1<<20 {
		t.Errorf("bzImage: %v", err)
	}
	m := readMeta(t, r)
	if m.KernelVersion != "6.1."+strings.Split(m.KernelVersion, ".")[2] || len(m.Probes) != 1 || !strings.HasPrefix(m.Probes[0].Site, "mm/page-writeback.c:") || m.Source["package"] != "linux-source-6.1" {
		t.Errorf("metadata %+v", m)
	}
	ap, _ := os.ReadFile(r.AppliedPatch)
	if !strings.Contains(string(ap), "+++ b/mm/page-writeback.c") || !strings.Contains(string(ap), "+obj-y += reprolab_probes.o") {
		t.Errorf("applied.patch does not show the probe:\n%s", ap)
	}

	// Identical inputs: a cache hit, make never runs.
	r2, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Cached || r2.Dir != r.Dir {
		t.Fatalf("second build not cached: %+v", r2)
	}

	// Without the artifact folder, make runs in the kept tree and compiles
	// nothing (no CC lines in its output). The first run syncs the tree,
	// which an earlier run of this test may have left with a moved probe.
	var r3 *Result
	for i := 0; i < 2; i++ {
		if err := os.RemoveAll(r.Dir); err != nil {
			t.Fatal(err)
		}
		if r3, err = Build(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	if r3.Cached || r3.Compiled != 0 {
		t.Errorf("rebuild with identical inputs: cached=%v compiled=%d, want a make run with 0 CC lines", r3.Cached, r3.Compiled)
	}
	log, _ := os.ReadFile(r3.BuildLog)
	if n := strings.Count(string(log), "\n  CC "); n != 0 {
		t.Errorf("build.log has %d CC lines:\n%s", n, log)
	}

	// A new default delay: only the generated probe file is recompiled.
	s4 := spec
	s4.Probes = []string{writeProbe(t, "250", "before", "lruvec_stat_mod_folio(folio, NR_WRITEBACK, -nr);")}
	r4 := buildUncached(t, ctx, s4)
	if r4.Compiled != 1 || strings.Join(r4.CmdlineParams, " ") != "reprolab.delay_seed=250" {
		t.Errorf("new default delay: compiled %d files (want 1), params %v", r4.Compiled, r4.CmdlineParams)
	}

	// The probe moved: the probed file (and the helper) recompile, no more.
	s5 := spec
	s5.Probes = []string{writeProbe(t, "250", "after", "folio_memcg_lock(folio);")}
	r5 := buildUncached(t, ctx, s5)
	if r5.Compiled < 1 || r5.Compiled > 2 {
		t.Errorf("moved probe: compiled %d files, want 1 (mm/page-writeback.c)", r5.Compiled)
	}
	t.Logf("rebuild: %d CC, new delay: %d CC, moved probe: %d CC", r3.Compiled, r4.Compiled, r5.Compiled)

	// A patch that breaks the build: the error names the file and the
	// compiler's message, and counts as bad input (the patch's fault).
	bad := filepath.Join(t.TempDir(), "break.patch")
	os.WriteFile(bad, []byte("--- a/mm/page-writeback.c\n+++ b/mm/page-writeback.c\n@@ -1,3 +1,4 @@\n // SPDX-License-Identifier: GPL-2.0-only\n+#error reprolab: this patch breaks the build\n /*\n  * mm/page-writeback.c\n"), 0o644)
	s6 := spec
	s6.Patches = []string{bad}
	_, err = Build(ctx, s6)
	var be *BuildError
	if !errors.As(err, &be) || be.Target != "mm/page-writeback.o" || !be.Edited || !fault.IsInput(err) ||
		!strings.Contains(err.Error(), "mm/page-writeback.c:2:2: error: #error reprolab: this patch breaks the build") {
		t.Errorf("broken patch: %v", err)
	}
}

// TestDroppedOptionReal asks the real 6.1 Kconfig for dm-crypt without the
// device-mapper core: olddefconfig drops it and the error says why.
func TestDroppedOptionReal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kconfig on the 6.1 tree (-short)")
	}
	spec := ciSpec(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "no-dm.config"), []byte("# CONFIG_BLK_DEV_DM is not set\n"), 0o644)
	spec.Fragments = append(spec.Fragments, filepath.Join(dir, "no-dm.config"))
	spec.ConfigOnly = true
	_, err := Build(context.Background(), spec)
	var ve *kconfig.VerifyError
	if err == nil || !fault.IsInput(err) || !errorsAs(err, &ve) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "CONFIG_DM_CRYPT: ../../kconfigs/dmcrypt-swap.config:") || !strings.Contains(err.Error(), "depends on BLK_DEV_DM") || !strings.Contains(err.Error(), "BLK_DEV_DM=n") {
		t.Errorf("message does not name the dependency:\n%v", err)
	}
}

// BenchmarkBuild reports the cached rebuild of the CI kernel (always) and a
// full build from an empty cache (only with REPROLAB_BENCH_FULL=1: ~10+ min).
func BenchmarkBuild(b *testing.B) {
	spec := ciSpec(b)
	spec.Progress = nil
	ctx := context.Background()
	if os.Getenv("REPROLAB_BENCH_FULL") == "1" {
		b.Run("full", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := spec
				s.CacheDir = b.TempDir()
				if _, err := Build(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("cached", func(b *testing.B) {
		if _, err := Build(ctx, spec); err != nil { // warm (builds if CI has not)
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r, err := Build(ctx, spec)
			if err != nil || !r.Cached {
				b.Fatalf("not cached: %v", err)
			}
		}
	})
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// buildUncached builds spec in the kept tree even when an earlier run of the test left its
// artifacts: a cache hit compiles nothing and would tell nothing about incremental builds.
func buildUncached(t *testing.T, ctx context.Context, spec Spec) *Result {
	t.Helper()
	r, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Cached {
		return r
	}
	if err := os.RemoveAll(r.Dir); err != nil {
		t.Fatal(err)
	}
	if r, err = Build(ctx, spec); err != nil {
		t.Fatal(err)
	}
	return r
}
