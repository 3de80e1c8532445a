package repro

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/qemu"
)

// ciKernel returns the kernel that `make test` builds once with lab/kbuild from Debian's
// linux-source-6.1 (kconfigs/ci-6.1-x86_64.yaml: the seed's fragments, debug info, the
// seed probe, everything built in). The Makefile records the build result as JSON in
// $REPROLAB_CI_KERNEL_JSON; outside `make test` these tests skip.
func ciKernel(t testing.TB) *kbuild.Result {
	t.Helper()
	p := os.Getenv("REPROLAB_CI_KERNEL_JSON")
	if p == "" {
		t.Skip("REPROLAB_CI_KERNEL_JSON not set: run through `make test`, which builds the CI kernel")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("CI kernel build result: %v", err)
	}
	var res kbuild.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if _, err := os.Stat(res.Kernel); err != nil {
		t.Fatalf("CI kernel: %v", err)
	}
	return &res
}

// TestCIKernelHasItsConfig boots the builder's kernel and checks from inside the guest that
// CONFIG_DEBUG_VM and MEMCG are on, dm-crypt swap works with built-in drivers and the probe's
// delay parameter reached the kernel.
func TestCIKernelHasItsConfig(t *testing.T) {
	k := ciKernel(t)
	res, err := Run(context.Background(), Config{
		Arch: qemu.X86_64, Kernel: k.Kernel, Vmlinux: k.Vmlinux,
		Repro: loadSpec(t, "testdata/ci-kernel-config.yaml"), Cmdline: k.CmdlineParams,
		ResultsDir: t.TempDir(), CacheDir: cacheDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Survived {
		t.Fatalf("outcome %s: %s\nguest.log:\n%s", res.Outcome, res.Error, tailFile(res.Dir, "guest.log", 30))
	}
	guestLog, _ := os.ReadFile(filepath.Join(res.Dir, "guest.log"))
	for _, want := range []string{"CONFIG_DEBUG_VM=y", "CONFIG_MEMCG=y", "reprolab.delay_"} {
		if !strings.Contains(string(guestLog), want) {
			t.Errorf("guest.log lacks %q", want)
		}
	}
}

// TestCIKernelCrashReport crashes the debug-info kernel and checks the whole report chain:
// file:line on the top frames, a vmcore, and crash(8)'s bt -a naming every CPU.
func TestCIKernelCrashReport(t *testing.T) {
	k := ciKernel(t)
	if _, err := lookPath("crash"); err != nil {
		t.Skip("crash(8) not installed: apt-get install crash")
	}
	res, err := Run(context.Background(), Config{
		Arch: qemu.X86_64, Kernel: k.Kernel, Vmlinux: k.Vmlinux,
		Repro: loadSpec(t, "testdata/sysrq-crash.yaml"), Cmdline: k.CmdlineParams,
		ResultsDir: t.TempDir(), CacheDir: cacheDir(), DumpVmcore: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Crashed || len(res.Crashes) == 0 {
		t.Fatalf("outcome %s (%s), want crashed with a report", res.Outcome, res.Error)
	}
	rep, err := os.ReadFile(filepath.Join(res.Dir, res.Crashes[0].File))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`sysrq\.c:\d+`).Match(rep) {
		t.Errorf("report has no file:line for the sysrq frames:\n%s", rep)
	}
	if st, err := os.Stat(filepath.Join(res.Dir, "vmcore")); err != nil || st.Size() < 64<<20 {
		t.Fatalf("vmcore missing or too small: %v", err)
	}
	bt, err := os.ReadFile(filepath.Join(res.Dir, "bt-a.txt"))
	if err != nil {
		t.Fatalf("no bt -a output: %v", err)
	}
	for cpu := 0; cpu < res.CPUs; cpu++ {
		if !regexp.MustCompile(`CPU: ` + string(rune('0'+cpu)) + `\b`).Match(bt) {
			t.Errorf("bt -a does not name CPU %d:\n%s", cpu, bt)
		}
	}
	t.Logf("report:\n%s\nbt -a:\n%s", rep, bt)
}
