package repro

import (
	"context"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/cache"

	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/spec"
)

// debianKernel finds Debian's prebuilt kernel and modules for arch in the cache
// (images/debian-kernels.sh puts them there; .ci/run runs it).
func debianKernel(t testing.TB, arch qemu.Arch) (kernel, modules string) {
	t.Helper()
	root := filepath.Join(cacheDir(), "debian", arch.GOARCH())
	k, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	m, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(k) == 0 || len(m) == 0 {
		t.Skipf("no Debian %s kernel under %s: run images/debian-kernels.sh", arch, root)
	}
	if _, err := lookPath(arch.Binary()); err != nil {
		t.Skipf("%s not installed: run images/setup-host.sh", arch.Binary())
	}
	return k[0], m[0]
}

func cacheDir() string { return cache.Dir() }

func loadSpec(t testing.TB, path string) *spec.Reproducer {
	t.Helper()
	r, err := spec.LoadReproducer(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runOn(t *testing.T, arch qemu.Arch, specPath string, iterations int) *Result {
	t.Helper()
	kernel, modules := debianKernel(t, arch)
	results := t.TempDir()
	var progress strings.Builder
	res, err := Run(context.Background(), Config{
		Arch: arch, Kernel: kernel, ModulesDir: modules,
		Repro: loadSpec(t, specPath), Iterations: iterations,
		ResultsDir: results, CacheDir: cacheDir(), Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%s: outcome %s after %d iterations, boot %.1fs (kernel /init at %.2fs), accel %s\nprogress:\n%s",
		arch, res.Outcome, res.Iterations, res.BootSeconds, res.KernelToInit, res.Accel, progress.String())
	meta, err := ReadMeta(res.Dir)
	if err != nil {
		t.Fatalf("meta.json: %v", err)
	}
	if meta.Outcome != res.Outcome || meta.Iterations != res.Iterations {
		t.Errorf("meta.json says %s/%d, result %s/%d", meta.Outcome, meta.Iterations, res.Outcome, res.Iterations)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "console.log")); err != nil {
		t.Errorf("console.log: %v", err)
	}
	return res
}

var arches = []qemu.Arch{qemu.X86_64, qemu.ARM64}

// TestSeedShapeSurvives runs the seed reproducer's guest shape on Debian's kernels: dm-crypt
// swap and ext4 are checked from inside the guest on every iteration.
func TestSeedShapeSurvives(t *testing.T) {
	for _, arch := range arches {
		t.Run(string(arch), func(t *testing.T) {
			res := runOn(t, arch, "testdata/check-setup.yaml", 0)
			if res.Outcome != Survived || res.Iterations != 3 {
				t.Fatalf("outcome %s after %d iterations (%s), want survived after 3; console:\n%s",
					res.Outcome, res.Iterations, res.Error, tailFile(res.Dir, "console.log", 30))
			}
			guestLog, _ := os.ReadFile(filepath.Join(res.Dir, "guest.log"))
			if !regexp.MustCompile(`/dev/dm-\d+`).Match(guestLog) {
				t.Errorf("guest.log does not show the dm-crypt device used for swap:\n%s", guestLog)
			}
			if res.KernelToInit <= 0 || res.BootSeconds <= res.KernelToInit {
				t.Errorf("boot figures look wrong: boot %.2fs, kernel reached /init at %.2fs", res.BootSeconds, res.KernelToInit)
			}
		})
	}
}

// TestShippedSeedReproducerSurvivesOnDebian runs the real shipped spec (3 iterations) on
// the Debian x86-64 kernel, which has the fix: it must survive.
func TestShippedSeedReproducerSurvivesOnDebian(t *testing.T) {
	res := runOn(t, qemu.X86_64, "../../reproducers/memcg-writeback-null/repro.yaml", 3)
	if res.Outcome != Survived || res.Iterations != 3 {
		t.Fatalf("outcome %s after %d iterations (%s); console:\n%s", res.Outcome, res.Iterations, res.Error, tailFile(res.Dir, "console.log", 30))
	}
}

func TestSysrqCrashIsCrashed(t *testing.T) {
	for _, arch := range arches {
		t.Run(string(arch), func(t *testing.T) {
			start := time.Now()
			res := runOn(t, arch, "testdata/sysrq-crash.yaml", 0)
			if res.Outcome != Crashed {
				t.Fatalf("outcome %s (%s), want crashed", res.Outcome, res.Error)
			}
			if res.CrashedIter != 1 || res.Iterations != 0 {
				t.Errorf("crash at iteration %d with %d completed, want 1 and 0", res.CrashedIter, res.Iterations)
			}
			if len(res.Crashes) == 0 {
				t.Fatal("no crash report written")
			}
			if !res.Reproduced {
				t.Errorf("title %q does not match the expected sysrq title", res.Crashes[0].Title)
			}
			rep, err := os.ReadFile(filepath.Join(res.Dir, res.Crashes[0].File))
			if err != nil || !strings.Contains(string(rep), "sysrq") {
				t.Errorf("report file %s: %v\n%s", res.Crashes[0].File, err, rep)
			}
			// "Within seconds of the crash": the whole run, boot included, is logged
			// for the benchmark; here only that the loop stopped at the first crash.
			t.Logf("crash detected %.1fs into the loop, run took %s", res.TimeToCrash, time.Since(start))
		})
	}
}

// A file that is no kernel for the arch is bad input, found before anything is built or
// booted: no results folder, no QEMU.
func TestBadKernelImageIsInputError(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a kernel\n", 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	arm := make([]byte, 4096)
	copy(arm[0x38:], "ARM\x64")
	armImage := filepath.Join(dir, "Image")
	if err := os.WriteFile(armImage, arm, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		arch   qemu.Arch
		kernel string
		want   string
	}{
		{qemu.X86_64, garbage, "not an x86-64 kernel image"},
		{qemu.X86_64, armImage, "is an arm64 kernel Image, not an x86-64 bzImage: use --arch arm64"},
		{qemu.ARM64, garbage, "not an arm64 kernel Image"},
	} {
		results := filepath.Join(t.TempDir(), "results")
		res, err := Run(context.Background(), Config{
			Arch: c.arch, Kernel: c.kernel, QEMUBinary: "true",
			Repro: loadSpec(t, "testdata/sysrq-crash.yaml"), ResultsDir: results, CacheDir: t.TempDir(),
		})
		if !fault.IsInput(err) || res != nil {
			t.Fatalf("%s on %s: result %v, error %v; want bad input", c.kernel, c.arch, res, err)
		}
		if !strings.Contains(err.Error(), c.kernel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q does not name the file and say %q", err, c.want)
		}
		if _, err := os.Stat(results); err == nil {
			t.Errorf("a results folder was created for bad input")
		}
	}
}

// TestKernelThatDiesInBootIsBootFailure boots a real kernel that cannot reach the agent:
// Debian's kernel without its modules has no virtio console driver, so the agent never
// answers. It must end as a boot failure carrying the console tail, never as a crash.
func TestKernelWithoutAgentIsBootFailure(t *testing.T) {
	kernel, _ := debianKernel(t, qemu.ARM64)
	res, err := Run(context.Background(), Config{
		Arch: qemu.ARM64, Kernel: kernel, // no ModulesDir: virtio_console is a module there
		Repro: loadSpec(t, "testdata/sysrq-crash.yaml"), ResultsDir: t.TempDir(), CacheDir: cacheDir(),
		BootTimeout: 45 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != BootFailed {
		t.Fatalf("outcome %s (%s), want boot-failed", res.Outcome, res.Error)
	}
	if !strings.Contains(res.Error, "console tail") || !strings.Contains(res.Error, "[") {
		t.Errorf("error carries no console tail: %s", res.Error)
	}
}

func TestSilentIterationIsHung(t *testing.T) {
	res := runOn(t, qemu.X86_64, "testdata/silent-hang.yaml", 0)
	if res.Outcome != Hung {
		t.Fatalf("outcome %s (%s), want hung", res.Outcome, res.Error)
	}
}

func TestMissingQEMUIsInputError(t *testing.T) {
	kernel, _ := debianKernel(t, qemu.X86_64)
	_, err := Run(context.Background(), Config{
		Arch: qemu.X86_64, Kernel: kernel, QEMUBinary: "qemu-system-does-not-exist",
		Repro: loadSpec(t, "testdata/sysrq-crash.yaml"), ResultsDir: t.TempDir(),
	})
	if err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Fatalf("err = %v, want a message naming the binary and how to install it", err)
	}
}

func tailFile(dir, name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// An image failure says "initramfs:" once (lab/image's errors carry the prefix already).
func TestImageErrorNotDoubled(t *testing.T) {
	dir := t.TempDir()
	bz := make([]byte, 4096)
	copy(bz[0x202:], "HdrS")
	kernel := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(kernel, bz, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{
		Arch: qemu.X86_64, Kernel: kernel, QEMUBinary: "true",
		Repro: loadSpec(t, "testdata/sysrq-crash.yaml"), ResultsDir: t.TempDir(), CacheDir: "",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != InfraError || !strings.Contains(res.Error, "initramfs: CacheDir is empty") || strings.Contains(res.Error, "initramfs: initramfs:") {
		t.Fatalf("outcome %s, error %q; want one infra error saying initramfs: once", res.Outcome, res.Error)
	}
}

// A name or run ID that would put the run's folder outside ResultsDir is refused before
// anything is written, however the Config was built.
func TestRunDirStaysInResults(t *testing.T) {
	base := t.TempDir()
	bz := make([]byte, 4096)
	copy(bz[0x202:], "HdrS")
	kernel := filepath.Join(base, "bzImage")
	os.WriteFile(kernel, bz, 0o644)
	results := filepath.Join(base, "results")
	for _, c := range []struct{ name, runID string }{
		{"../../x", ""}, {"a/b", ""}, {"ok", "../escape"}, {"ok", "/tmp/abs"}, {"ok", ".."},
	} {
		r := loadSpec(t, "testdata/sysrq-crash.yaml")
		r.Name = c.name
		_, err := Run(context.Background(), Config{Arch: qemu.X86_64, Kernel: kernel, QEMUBinary: "true", Repro: r,
			ResultsDir: results, RunID: c.runID, CacheDir: t.TempDir()})
		if !fault.IsInput(err) {
			t.Errorf("name %q run id %q: %v, want bad input", c.name, c.runID, err)
		}
	}
	if ents, _ := os.ReadDir(base); len(ents) != 1 {
		t.Errorf("files written next to the kernel: %v", ents)
	}
}
