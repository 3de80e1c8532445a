package repro

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/image"
	"github.com/reprolab/reprolab/lab/qemu"
)

// TestHostDiskFull runs a reproducer that fills the guest disk while the run's scratch dir
// (the disk image, the initramfs copy) sits on a tmpfs with room for only a few MiB of
// writes. The run must end as infra-error "host disk full (<image>)" within seconds of
// the write error, not after the agent's keepalives run out.
func TestHostDiskFull(t *testing.T) {
	kernel, modules := debianKernel(t, qemu.X86_64)
	base, err := image.BuildInitramfs(context.Background(), image.InitramfsSpec{Arch: "x86_64", ModulesDir: modules, CacheDir: cacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(base.Path)
	if err != nil {
		t.Fatal(err)
	}
	// Room for the initramfs copy and 8 MiB of guest writes; the reproducer writes 400.
	mnt := t.TempDir()
	size := st.Size() + 8<<20
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "reprolab-full", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	t.Setenv("TMPDIR", mnt)

	var progress strings.Builder
	start := time.Now()
	res, err := Run(context.Background(), Config{
		Arch: qemu.X86_64, Kernel: kernel, ModulesDir: modules,
		Repro: loadSpec(t, "testdata/disk-full.yaml"), ResultsDir: t.TempDir(), CacheDir: cacheDir(),
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	loop := res.LoopSeconds
	t.Logf("outcome %s after %s (loop %.1fs): %s\n%s", res.Outcome, time.Since(start).Round(time.Second), loop, res.Error, progress.String())
	if res.Outcome != InfraError {
		t.Fatalf("outcome %s (%s), want infra-error", res.Outcome, res.Error)
	}
	if !strings.HasPrefix(res.Error, "host disk full (") || !strings.Contains(res.Error, filepath.Join(mnt, "")) || !strings.Contains(res.Error, "big.raw") {
		t.Errorf("error %q does not say host disk full naming the image under %s", res.Error, mnt)
	}
	// Reported from QEMU's event, not inferred from an agent that stopped answering.
	if strings.Contains(res.Error, "keepalive") || strings.Contains(res.Error, "lost the guest agent") {
		t.Errorf("the full disk was reported as a lost agent: %s", res.Error)
	}
	if res.Reproduced || len(res.Crashes) > 0 {
		t.Errorf("a full host disk counted as a crash: %+v", res.Crashes)
	}
	if left, _ := filepath.Glob(filepath.Join(mnt, "reprolab-*")); len(left) > 0 {
		t.Errorf("scratch left behind: %v", left)
	}
}
