package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// malformedLab is a scratch lab for bad-input runs of the CLI binary: its own working
// folder (results/ in it), cache, TMPDIR and a small kernel tree, so a case that writes
// anything at all is caught.
type malformedLab struct {
	work, cache, tmp, tree, kconfigs string
	files                            map[string]string // name → path of a prepared input
}

func newMalformedLab(t *testing.T) *malformedLab {
	t.Helper()
	base := t.TempDir()
	l := &malformedLab{
		work: filepath.Join(base, "work"), cache: filepath.Join(base, "cache"), tmp: filepath.Join(base, "tmp"),
		tree: filepath.Join(base, "linux"), files: map[string]string{},
	}
	for _, d := range []string{l.work, l.cache, l.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	l.kconfigs = filepath.Join(root, "kconfigs")
	copyTree(t, filepath.Join(root, "lab/kbuild/testdata/minitree"), l.tree)

	bz := make([]byte, 4096)
	copy(bz[0x202:], "HdrS")
	arm := make([]byte, 4096)
	copy(arm[0x38:], "ARM\x64")
	l.put(t, "bzImage", string(bz))
	l.put(t, "Image", string(arm))
	l.put(t, "garbage", strings.Repeat("not a kernel\n", 400))
	l.put(t, "repro.yaml", "name: ok\nrun: \"true\"\nbudget: {iterations: 1}\n")
	return l
}

// put writes an input file and returns its path.
func (l *malformedLab) put(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(l.work, "in", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	l.files[name] = p
	return p
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// digest is every file under dir with its content hash (symlinks by target).
func digest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel+"/"] = ""
		default:
			data, _ := os.ReadFile(p)
			sum := sha256.Sum256(data)
			out[rel] = hex.EncodeToString(sum[:8])
		}
		return nil
	})
	return out
}

func (l *malformedLab) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = l.work
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	cmd.Env = append(os.Environ(), "REPROLAB_CACHE="+l.cache, "TMPDIR="+l.tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	code := exitCode(t, cmd.Run())
	return code, out.String()
}

// TestMalformedInputs feeds the CLI binary bad reproducer, matrix, kernel and probe specs,
// patches and flags, as a new user would: each must exit 2 with a message that names the
// thing, and leave nothing in results/, the cache, the temp folder or the kernel tree.
func TestMalformedInputs(t *testing.T) {
	l := newMalformedLab(t)
	f := l.files
	repro := func(name, yaml string) []string {
		return []string{"run", "--kernel", f["bzImage"], "--qemu", "true", "--repro", l.put(t, name, yaml)}
	}
	runWith := func(extra ...string) []string {
		return append([]string{"run", "--kernel", f["bzImage"], "--qemu", "true", "--repro", f["repro.yaml"]}, extra...)
	}
	// A matrix on prebuilt kernels unless it says otherwise; never --dry-run: the checks
	// must come before the real run opens its database.
	matrixHead := "name: m\nreproducer: repro.yaml\nbudget: {runs: 1}\n"
	prebuilt := "  kernel: [{name: k, prebuilt: {x86_64: {image: " + f["bzImage"] + "}}}]\n"
	matrix := func(name, yaml string) []string {
		return []string{"matrix", l.put(t, name, yaml)}
	}
	fromTree := "  kernel: [{name: k, source: {dir: " + l.tree + "}}]\n"
	kernel := func(extra ...string) []string {
		return append([]string{"kernel", "config", "--dir", l.tree, "--fragment-dir", l.kconfigs}, extra...)
	}
	probe := func(name, yaml string) string { return l.put(t, name, yaml) }
	escape := l.put(t, "escape.diff", "--- a/mm/../../victim.c\n+++ b/mm/../../victim.c\n@@ -1 +1 @@\n-x\n+y\n")

	cases := []struct {
		name string
		args []string
		want []string
	}{
		// Reproducer specs.
		{"repro name escapes results", repro("r1.yaml", "name: ../../../../tmp/x\nrun: \"true\"\nbudget: {iterations: 1}\n"), []string{"r1.yaml", `name "../../../../tmp/x"`}},
		{"repro name nests folders", repro("r2.yaml", "name: a/b\nrun: \"true\"\nbudget: {iterations: 1}\n"), []string{`name "a/b"`}},
		{"cpus 0", repro("r3.yaml", "name: r\nrun: \"true\"\nguest: {cpus: 0}\nbudget: {iterations: 1}\n"), []string{"r3.yaml", "guest.cpus (line 3): 0"}},
		{"cpus negative", repro("r4.yaml", "name: r\nrun: \"true\"\nguest: {cpus: -2}\nbudget: {iterations: 1}\n"), []string{"guest.cpus (line 3): -2"}},
		{"cpus 4096", repro("r5.yaml", "name: r\nrun: \"true\"\nguest: {cpus: 4096}\nbudget: {iterations: 1}\n"), []string{"guest.cpus (line 3): 4096: give 1 to 64"}},
		{"cpus fractional", repro("r6.yaml", "name: r\nrun: \"true\"\nguest: {cpus: 1.5}\nbudget: {iterations: 1}\n"), []string{`guest.cpus (line 3): "1.5" is not a whole number`}},
		{"memory 0", repro("r7.yaml", "name: r\nrun: \"true\"\nguest: {memory: 0}\nbudget: {iterations: 1}\n"), []string{"guest.memory (line 3): 0 is too small"}},
		{"memory overflows", repro("r8.yaml", "name: r\nrun: \"true\"\nguest: {memory: 9999999999999G}\nbudget: {iterations: 1}\n"), []string{"r8.yaml:3:", `bad size "9999999999999G": too large`}},
		{"memory 95 TiB", repro("r9.yaml", "name: r\nrun: \"true\"\nguest: {memory: 95T}\nbudget: {iterations: 1}\n"), []string{"guest.memory (line 3): 95T is absurd"}},
		{"memory beyond host RAM", repro("r10.yaml", "name: r\nrun: \"true\"\nguest: {memory: 1000G}\nbudget: {iterations: 1}\n"), []string{"r10.yaml", "guest.memory 1000G is more than this host's"}},
		{"iterations fractional", repro("r11.yaml", "name: r\nrun: \"true\"\nbudget: {iterations: 1.5}\n"), []string{`budget.iterations (line 3): "1.5" is not a whole number`}},
		{"iteration_timeout negative", repro("r12.yaml", "name: r\nrun: \"true\"\nbudget: {iterations: 3, iteration_timeout: -1s}\n"), []string{"budget.iteration_timeout (line 3): -1s: must be a positive duration"}},
		{"duration zero", repro("r13.yaml", "name: r\nrun: \"true\"\nbudget: {duration: 0s}\n"), []string{"budget.duration (line 3): 0s"}},
		{"empty spec", repro("r14.yaml", "# nothing yet\n\n"), []string{"r14.yaml", "is empty"}},
		{"binary spec", repro("r15.yaml", "\x7fELF\x02\x01\x01\x00\x00\x00"), []string{"r15.yaml:1: binary data (byte 0x02"}},
		{"unknown key", repro("r16.yaml", "name: r\nrun: \"true\"\nbudget: {iterations: 1}\nguest: {memroy: 256M}\n"), []string{"r16.yaml:4:", `unknown key "memroy" in guest (did you mean "memory"?)`}},
		{"unknown key in a step", repro("r17.yaml", "name: r\nrun: \"true\"\nbudget: {iterations: 1}\nsetup:\n  - tmpfs_fill: {path: /f, sise: 1M}\n"), []string{"r17.yaml:5:", `unknown key "sise" in setup[0].tmpfs_fill (did you mean "size"?)`}},
		{"disk kind", repro("r18.yaml", "name: r\nrun: \"true\"\nbudget: {iterations: 1}\ndisks: [{name: d, kind: xfs, size: 1M}]\n"), []string{`disk "d": kind "xfs"`}},
		{"two documents", repro("r19.yaml", "name: r\nrun: \"true\"\nbudget: {iterations: 1}\n---\nname: s\n"), []string{"more than one YAML document"}},
		{"expect regexp", repro("r20.yaml", "name: r\nrun: \"true\"\nbudget: {iterations: 1}\nexpect: {titles: [\"in (x\"]}\n"), []string{`expect.titles: "in (x"`}},

		// run's flags and files.
		{"--boot-timeout negative", runWith("--boot-timeout", "-1s"), []string{"--boot-timeout -1s: must be a positive duration"}},
		{"--duration zero", runWith("--duration", "0s"), []string{"--duration 0s"}},
		{"--iterations negative", runWith("--iterations", "-3"), []string{"--iterations -3"}},
		{"--iterations fractional", runWith("--iterations", "1.5"), []string{`"1.5"`, "--iterations"}},
		{"--arch unknown", runWith("--arch", "riscv"), []string{"riscv", "x86_64 or arm64"}},
		{"--accel unknown", runWith("--accel", "xen"), []string{"xen"}},
		{"garbage kernel", []string{"run", "--kernel", f["garbage"], "--qemu", "true", "--repro", f["repro.yaml"]}, []string{f["garbage"], "not an x86-64 kernel image"}},
		{"wrong-arch kernel", []string{"run", "--kernel", f["Image"], "--qemu", "true", "--repro", f["repro.yaml"]}, []string{f["Image"], "use --arch arm64"}},
		{"x86 kernel for arm64", []string{"run", "--arch", "arm64", "--kernel", f["bzImage"], "--qemu", "true", "--repro", f["repro.yaml"]}, []string{"is an x86 bzImage", "use --arch x86_64"}},
		{"missing kernel", []string{"run", "--kernel", filepath.Join(l.work, "nope"), "--qemu", "true", "--repro", f["repro.yaml"]}, []string{"kernel image", "nope"}},
		{"--modules not a modules tree", runWith("--modules", filepath.Join(l.work, "in")), []string{"--modules", "lib/modules/<version>"}},
		{"--vmlinux missing", runWith("--vmlinux", filepath.Join(l.work, "vmlinux")), []string{"--vmlinux", "vmlinux"}},
		{"unknown reproducer", []string{"run", "--kernel", f["bzImage"], "--repro", "no-such-bug"}, []string{`"no-such-bug" not found`}},
		{"unknown flag", runWith("--frobnicate"), []string{"frobnicate"}},

		// Matrix specs: checked before the database and the lock exist.
		{"expect_crash value typo", matrix("m1.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+prebuilt+"  probe: [0, 100]\nexpect_crash:\n  - {kernel: k, probe: 1000}\n"), []string{"m1.yaml", `expect_crash[0]: probe "1000" is not on the probe axis (did you mean "100"?)`}},
		{"exclude value typo", matrix("m2.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+prebuilt+"exclude:\n  - {kernel: kk}\n"), []string{`exclude[0]: kernel "kk" is not on the kernel axis (did you mean "k"?)`}},
		{"matrix runs fractional", matrix("m3.yaml", "name: m\nreproducer: repro.yaml\nbudget: {runs: 1.5}\naxes:\n  arch: [x86_64]\n"+prebuilt), []string{`budget.runs (line 3): "1.5" is not a whole number`}},
		{"empty matrix", matrix("m4.yaml", "\n# todo\n"), []string{"m4.yaml", "is empty"}},
		{"binary matrix", matrix("m5.yaml", "name: m\n\x00\x01"), []string{"m5.yaml:2: binary data"}},
		{"two sources", matrix("m6.yaml", matrixHead+"axes:\n  arch: [x86_64]\n  kernel: [{name: k, source: {dir: "+l.tree+", debian: linux-source-6.1}}]\n"), []string{"kernel k", "exactly one of git, dir, tarball"}},
		{"bad tarball sha256", matrix("m7.yaml", matrixHead+"axes:\n  arch: [x86_64]\n  kernel: [{name: k, source: {tarball: "+f["garbage"]+", sha256: "+strings.Repeat("ab", 32)+"}}]\n"), []string{"kernel k", "sha256 is", "the spec says abab"}},
		{"malformed url sha256", matrix("m8.yaml", matrixHead+"axes:\n  arch: [x86_64]\n  kernel: [{name: k, source: {url: \"https://example.org/l.tar.xz\", sha256: xyz}}]\n"), []string{`sha256 "xyz" is not 64 hex digits`}},
		{"unknown fragment", matrix("m9.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+fromTree+"  config: [{name: c, fragments: [nosuch]}]\n"), []string{`axes.config "c"`, `unknown config fragment "nosuch"`}},
		{"prebuilt glob matches nothing", matrix("m10.yaml", matrixHead+"axes:\n  arch: [x86_64]\n  kernel: [{name: k, prebuilt: {x86_64: {image: "+l.work+"/boot/vmlinuz-*}}}]\n"), []string{"kernel k (x86_64): image", "vmlinuz-*: no such file"}},
		{"prebuilt garbage image", matrix("m11.yaml", matrixHead+"axes:\n  arch: [x86_64]\n  kernel: [{name: k, prebuilt: {x86_64: {image: "+f["garbage"]+"}}}]\n"), []string{"kernel k (x86_64)", "not an x86-64 kernel image"}},
		{"missing patch", matrix("m12.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+fromTree+"  patches: [{name: p, files: [no-such.patch]}]\n"), []string{`axes.patches "p"`, "no-such.patch"}},
		{"patch climbs out of the tree", matrix("m13.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+fromTree+"  patches: [{name: p, files: ["+escape+"]}]\n"), []string{`axes.patches "p"`, `"mm/../../victim.c" climbs out of the tree`}},
		{"probe file climbs out", matrix("m14.yaml", matrixHead+"probes: ["+probe("p1.yaml", "name: p\ndelay_us: 1\nfile: ../victim.c\nfunction: f\nafter: x\n")+"]\naxes:\n  arch: [x86_64]\n"+fromTree), []string{"p1.yaml", `path "../victim.c" climbs out of the tree`}},
		{"--only unknown axis", append(matrix("m15.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+prebuilt), "--only", "colour=red"), []string{"--only", "colour=red"}},
		{"--kernel-source unknown kernel", append(matrix("m16.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+prebuilt), "--kernel-source", "v5=dir:/x"), []string{`no kernel "v5"`, "(it has: k)"}},
		{"matrix --duration negative", append(matrix("m17.yaml", matrixHead+"axes:\n  arch: [x86_64]\n"+prebuilt), "--duration", "-1m"), []string{"--duration -1m0s"}},

		// Kernel specs, patches and probes for kernel config/build.
		{"kernel spec empty", kernel("--spec", l.put(t, "k1.yaml", "")), []string{"k1.yaml", "is empty"}},
		{"kernel spec binary", kernel("--spec", l.put(t, "k2.yaml", "arch: x86_64\n\xff\xfe")), []string{"k2.yaml:2: binary data (byte 0xff"}},
		{"kernel spec unknown key", kernel("--spec", l.put(t, "k3.yaml", "arch: x86_64\nfragmnets: [base]\n")), []string{"k3.yaml", "fragmnets"}},
		{"patch climbs out", kernel("--patch", escape), []string{"escape.diff", "climbs out of the tree"}},
		{"patch without a diff", kernel("--patch", l.put(t, "prose.txt", "Hi,\n\nplease try the fix.\n")), []string{"prose.txt", "no diff found"}},
		{"patch truncated", kernel("--patch", l.put(t, "cut.diff", "--- a/mm/writeback.c\n+++ b/mm/writeback.c\n@@ -1,3 +1,3 @@\n a\n-b\n")), []string{"cut.diff", "truncated"}},
		{"probe absolute file", kernel("--probe", probe("p2.yaml", "name: p\ndelay_us: 1\nfile: /etc/passwd\nfunction: f\nafter: x\n")), []string{"p2.yaml", `"/etc/passwd" is absolute`}},
		{"probe empty", kernel("--probe", probe("p3.yaml", "# a probe\n")), []string{"p3.yaml", "is empty"}},
		{"probe delay fractional", kernel("--probe", probe("p4.yaml", "name: p\ndelay_us: 2.5\nfile: mm/writeback.c\nfunction: f\nafter: x\n")), []string{"p4.yaml", `delay_us (line 2): "2.5" is not a whole number`}},
		{"probe binary", kernel("--probe", probe("p5.yaml", "\x00\x00")), []string{"p5.yaml", "binary data"}},
		{"unknown fragment for kernel", kernel("--fragments", "nosuch"), []string{`unknown config fragment "nosuch"`}},
		{"unknown base", kernel("--base", "bestconfig"), []string{`base "bestconfig"`}},
		{"--make-jobs 0", kernel("--make-jobs", "0"), []string{"--make-jobs 0"}},
		{"kernel dir not a tree", []string{"kernel", "config", "--dir", l.work, "--fragment-dir", l.kconfigs}, []string{l.work, "is not a Linux source tree"}},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d malformed inputs", len(cases))
	}
	tree := digest(t, l.tree)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := l.run(t, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; output:\n%s", code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			for what, dir := range map[string]string{"results": filepath.Join(l.work, "results"), "cache": l.cache, "temp folder": l.tmp} {
				if left := digest(t, dir); len(left) > 0 {
					t.Errorf("files left in the %s: %v", what, left)
					os.RemoveAll(dir)
					os.MkdirAll(dir, 0o755)
				}
			}
			if now := digest(t, l.tree); !sameDigest(now, tree) {
				t.Errorf("the kernel tree changed: %v", now)
				os.RemoveAll(l.tree)
				copyTree(t, "../../lab/kbuild/testdata/minitree", l.tree)
			}
		})
	}
}

func sameDigest(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
