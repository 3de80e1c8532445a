package repro

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/qemu"
)

// TestSnapshotRestore prepares a snapshot (boot, dm-crypt swap, ext4, a filled tmpfs) and
// restores it twice: each restored trial must loop with swap, mount and fill intact, over
// an SSH connection authenticated by a key made after the restore, and must read other
// random bytes than the other trials (the guest was reseeded).
func TestSnapshotRestore(t *testing.T) {
	for _, arch := range arches {
		t.Run(string(arch), func(t *testing.T) { snapshotRestore(t, arch) })
	}
}

func snapshotRestore(t *testing.T, arch qemu.Arch) {
	kernel, modules := debianKernel(t, arch)
	spec := loadSpec(t, "testdata/snapshot.yaml")
	// A command-line word of its own makes this test's snapshot new every time.
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	cmdline := []string{"reprolab.test=" + hex.EncodeToString(tag)}
	var urandom []string
	var snapDir string
	for i, want := range []string{"prepared", "restored", "restored"} {
		var progress strings.Builder
		res, err := Run(context.Background(), Config{
			Arch: arch, Kernel: kernel, ModulesDir: modules, Repro: spec, Cmdline: cmdline,
			ResultsDir: t.TempDir(), CacheDir: cacheDir(), Progress: &progress, Snapshot: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if snapDir == "" && res.SnapshotDir != "" {
			// Registered at once, so a failing trial does not leave the snapshot behind.
			snapDir = res.SnapshotDir
			t.Cleanup(func() { _ = os.RemoveAll(snapDir); _ = os.Remove(snapDir + ".lock") })
		}
		t.Logf("trial %d: %s, %s\n%s", i+1, res.Snapshot, res.Timings.Split(), progress.String())
		if res.Outcome != Survived || res.Iterations != 2 || res.Snapshot != want {
			t.Fatalf("trial %d: outcome %s after %d iterations (%s), snapshot %q; want survived after 2, %q; console:\n%s",
				i+1, res.Outcome, res.Iterations, res.Error, res.Snapshot, want, tailFile(res.Dir, "console.log", 30))
		}
		if want == "restored" {
			if !strings.Contains(res.Reseed, "client key replaced") || res.Timings.RestoreSeconds <= 0 {
				t.Errorf("trial %d: reseed %q, restore %.2fs", i+1, res.Reseed, res.Timings.RestoreSeconds)
			}
			if !strings.Contains(res.Reseed, "CRNG reseeded") {
				t.Errorf("trial %d: a 6.1 kernel has RNDRESEEDCRNG, yet: %q", i+1, res.Reseed)
			}
		}
		log, _ := os.ReadFile(filepath.Join(res.Dir, "guest.log"))
		for _, m := range regexp.MustCompile(`urandom ([0-9a-f]{32})`).FindAllSubmatch(log, -1) {
			urandom = append(urandom, string(m[1]))
		}
	}
	seen := map[string]bool{}
	for _, u := range urandom {
		if seen[u] {
			t.Errorf("two iterations read the same random bytes %s: a restored guest replays the snapshot's randomness", u)
		}
		seen[u] = true
	}
	if len(urandom) != 6 {
		t.Errorf("%d urandom lines in the guest logs, want 6 (2 per trial)", len(urandom))
	}
}
