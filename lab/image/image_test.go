package image

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/crypto/ssh"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// debianModules returns the unpacked Debian kernel's lib/modules/<version> for arch.
func debianModules(t testing.TB, arch string) string {
	deb := map[string]string{"x86_64": "amd64", "arm64": "arm64"}[arch]
	dirs, _ := filepath.Glob(filepath.Join(DefaultCacheDir(), "debian", deb, "lib", "modules", "*"))
	if len(dirs) == 0 {
		t.Skipf("no Debian %s kernel modules in the cache: run images/debian-kernels.sh", deb)
	}
	return dirs[0]
}

// TestResolveDebian resolves the default module set on Debian's real kernels: every module
// must come after the modules its .modinfo says it depends on, and the list must match the
// golden file kept for that kernel version.
func TestResolveDebian(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			dir := debianModules(t, arch)
			tree, err := openModuleTree(dir)
			if err != nil {
				t.Fatal(err)
			}
			mods, err := tree.resolve(DefaultModules(arch))
			if err != nil {
				t.Fatal(err)
			}
			loaded := map[string]bool{}
			var got strings.Builder
			for _, m := range mods {
				info, err := modinfo(m.data)
				if err != nil {
					t.Fatalf("%s: %v", m.rel, err)
				}
				for _, d := range info["depends"] {
					for _, name := range strings.Split(d, ",") {
						if name != "" && !loaded[normalize(name)] && !tree.builtin[normalize(name)] {
							t.Errorf("%s loads before its dependency %s", m.rel, name)
						}
					}
				}
				loaded[normalize(m.rel)] = true
				fmt.Fprintln(&got, m.rel)
			}
			for _, want := range DefaultModules(arch) {
				if !loaded[normalize(want)] && !tree.builtin[normalize(want)] {
					t.Errorf("%s neither resolved nor built in", want)
				}
			}
			golden(t, filepath.Join("testdata", "modules-"+filepath.Base(dir)+".txt"), got.String())
		})
	}
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		t.Skipf("no golden file %s for this kernel version (go test -update writes it)", file)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", file, got, want)
	}
}

// TestResolveWithDepmod checks the .modinfo-based resolution against depmod's own
// modules.dep for the same modules: both paths must give the same load order constraints.
func TestResolveWithDepmod(t *testing.T) {
	depmod, err := exec.LookPath("depmod")
	if err != nil {
		t.Skip("depmod (kmod) not installed")
	}
	src := debianModules(t, "x86_64")
	tree, err := openModuleTree(src)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.resolve(DefaultModules("x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	// A small installed-style tree: the same modules plus depmod's index files.
	base := t.TempDir()
	version := filepath.Base(src)
	dst := filepath.Join(base, "lib", "modules", version)
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
		copyFile(t, filepath.Join(src, f), filepath.Join(dst, f))
	}
	for _, m := range mods {
		copyFile(t, filepath.Join(src, m.rel), filepath.Join(dst, m.rel))
	}
	if out, err := exec.Command(depmod, "-b", base, version).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	tree2, err := openModuleTree(dst)
	if err != nil {
		t.Fatal(err)
	}
	if tree2.dep == nil {
		t.Fatal("modules.dep written by depmod was not picked up")
	}
	mods2, err := tree2.resolve(DefaultModules("x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mods2) != len(mods) {
		t.Fatalf("with modules.dep: %d modules, from .modinfo: %d", len(mods2), len(mods))
	}
	pos := map[string]int{}
	for i, m := range mods2 {
		pos[m.rel] = i
	}
	for _, m := range mods2 {
		for _, d := range tree2.dep[m.rel] {
			if pos[d] > pos[m.rel] {
				t.Errorf("%s before its dependency %s", m.rel, d)
			}
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveErrors(t *testing.T) {
	dir := debianModules(t, "x86_64")
	tree, err := openModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want    []string
		n       int
		errPart string
	}{
		{[]string{"no_such_module"}, 0, `module "no_such_module" is neither built into the kernel nor present`},
		{[]string{"aes_generic"}, 0, ""},              // built in: nothing to load
		{[]string{"dm-crypt"}, 2, ""},                 // dashes and underscores are the same name
		{[]string{"virtio_blk", "virtio-blk"}, 2, ""}, // asked twice, loaded once (virtio_ring, virtio_blk)
	} {
		mods, err := tree.resolve(tc.want)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("resolve(%v) error %v, want %q", tc.want, err, tc.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolve(%v): %v", tc.want, err)
			continue
		}
		var names []string
		for _, m := range mods {
			names = append(names, normalize(m.rel))
		}
		if tc.n != 0 && len(mods) < tc.n || tc.n == 0 && len(mods) != 0 {
			t.Errorf("resolve(%v) = %v", tc.want, names)
		}
	}
	if _, err := openModuleTree(t.TempDir()); err == nil || !strings.Contains(err.Error(), "modules.builtin") {
		t.Errorf("empty dir accepted as a modules tree: %v", err)
	}
}

// TestBusyboxApplets compares the applet table read from the binary with what the host's
// busybox prints itself.
func TestBusyboxApplets(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("compares against the host's x86_64 busybox")
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("no /bin/busybox (apt-get install busybox-static)")
	}
	got, err := busyboxApplets(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(out))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("applets from the binary (%d) differ from busybox --list (%d)", len(got), len(want))
	}
	if _, err := busyboxApplets([]byte("not busybox")); err == nil {
		t.Error("applet table found in garbage")
	}
}

// TestBuildInitramfs builds real base initramfs images and reads them back.
func TestBuildInitramfs(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			mods := debianModules(t, arch)
			cache := DefaultCacheDir()
			var progress bytes.Buffer
			s := InitramfsSpec{Arch: arch, ModulesDir: mods, CacheDir: cache, Progress: &progress}
			a, err := BuildInitramfs(context.Background(), s)
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			b, err := BuildInitramfs(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if a.Path != b.Path || !bytes.Equal(a.HostKey.Marshal(), b.HostKey.Marshal()) {
				t.Errorf("two builds of the same inputs differ: %s vs %s", a.Path, b.Path)
			}
			f, err := os.Open(a.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(f))
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]cpio.Record{}
			for _, r := range recs {
				byName[r.Name] = r
				if r.MTime != 0 || r.UID != 0 {
					t.Errorf("%s: mtime %d uid %d, want 0 for reproducibility", r.Name, r.MTime, r.UID)
				}
			}
			init := byName["init"]
			if init.Mode&0o111 == 0 {
				t.Errorf("/init mode %o not executable", init.Mode)
			}
			ef, err := elf.NewFile(io.NewSectionReader(init.ReaderAt, 0, int64(init.FileSize)))
			if err != nil || ef.Machine != elfMachine[arch] {
				t.Errorf("/init is not an %s ELF: %v", arch, err)
			}
			if c := byName["dev/console"]; c.Mode&cpio.S_IFMT != cpio.S_IFCHR || c.Rmajor != 5 || c.Rminor != 1 {
				t.Errorf("dev/console = %+v", c.Info)
			}
			for _, l := range []string{"bin/sh", "bin/dd", "bin/mkswap", "bin/sync"} {
				if r, ok := byName[l]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFLNK {
					t.Errorf("%s missing or not a symlink", l)
				}
			}
			list := byName["etc/reprolab/modules"]
			lb, _ := io.ReadAll(io.NewSectionReader(list.ReaderAt, 0, int64(list.FileSize)))
			checkModuleList(t, string(lb), a)
			for _, m := range a.Modules {
				if _, ok := byName[strings.TrimPrefix(m, "/")]; !ok {
					t.Errorf("module %s listed but not in the archive", m)
				}
			}
			key := byName["etc/reprolab/ssh_host_ed25519_key"]
			kb, _ := io.ReadAll(io.NewSectionReader(key.ReaderAt, 0, int64(key.FileSize)))
			signer, err := ssh.ParsePrivateKey(kb)
			if err != nil || !bytes.Equal(signer.PublicKey().Marshal(), a.HostKey.Marshal()) {
				t.Errorf("baked-in host key does not match Initramfs.HostKey (%v)", err)
			}
			// GNU cpio must read it too: it is what a developer will reach for.
			if out, err := exec.Command("cpio", "-it", "-F", a.Path).CombinedOutput(); err != nil {
				t.Logf("cpio -it: %v\n%s", err, out)
			}
		})
	}
}

func TestBuildInitramfsErrors(t *testing.T) {
	cache := t.TempDir()
	arm := filepath.Join(DefaultCacheDir(), "debian", "arm64", "bin", "busybox")
	for _, tc := range []struct {
		name string
		s    InitramfsSpec
		want string
	}{
		{"arch", InitramfsSpec{Arch: "riscv64", CacheDir: cache}, `architecture "riscv64"`},
		{"no cache", InitramfsSpec{Arch: "x86_64"}, "CacheDir"},
		{"missing busybox", InitramfsSpec{Arch: "x86_64", CacheDir: cache, Busybox: "/nonexistent/busybox"}, "busybox"},
		{"wrong-arch busybox", InitramfsSpec{Arch: "x86_64", CacheDir: cache, Busybox: arm}, "is built for EM_AARCH64, the guest is x86_64"},
		{"dynamic busybox", InitramfsSpec{Arch: "x86_64", CacheDir: cache, Busybox: "/bin/ls"}, "dynamically linked"},
		{"modules without dir", InitramfsSpec{Arch: "x86_64", CacheDir: cache, Modules: []string{"ext4"}}, "no ModulesDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.s.Busybox == arm {
				if _, err := os.Stat(arm); err != nil {
					t.Skip("no arm64 busybox; run images/debian-kernels.sh")
				}
			}
			_, err := BuildInitramfs(context.Background(), tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestOverlayAndConcat(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519Key()
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ov, err := RunOverlay(dir, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.cpio")
	b, err := writeCpio([]file{{name: "init", data: []byte("#!/bin/sh\n"), mode: 0o755}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(base, b, 0o644)
	out := filepath.Join(dir, "initrd")
	if err := Concat(out, base, ov); err != nil {
		t.Fatal(err)
	}
	all, _ := os.ReadFile(out)
	if len(all)%512 != 0 {
		t.Errorf("concatenation is %d bytes, not padded to 512", len(all))
	}
	// Read the second archive where the first one's padding ends, as the kernel does.
	off := (len(b) + 511) / 512 * 512
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(all[off:])))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range recs {
		if r.Name == "etc/reprolab/authorized_keys" {
			kb, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			k, _, _, _, err := ssh.ParseAuthorizedKey(kb)
			found = err == nil && bytes.Equal(k.Marshal(), signer.PublicKey().Marshal())
		}
	}
	if !found {
		t.Error("overlay lacks the authorized key")
	}
	if _, err := RunOverlay(dir, nil); err == nil {
		t.Error("RunOverlay accepted a nil key")
	}
	if err := Concat(out); err == nil {
		t.Error("Concat with no parts succeeded")
	}
	if err := Concat(out, filepath.Join(dir, "missing")); err == nil {
		t.Error("Concat of a missing part succeeded")
	}
}

func TestMakeDisk(t *testing.T) {
	cache, run := t.TempDir(), t.TempDir()
	ctx := context.Background()
	raw, err := MakeDisk(ctx, cache, run, DiskSpec{Name: "swap", Kind: "raw", SizeMB: 64})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(raw); st.Size() != 64<<20 {
		t.Errorf("raw disk size %d", st.Size())
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	p1, err := MakeDisk(ctx, cache, run, DiskSpec{Name: "data", Kind: "ext4", SizeMB: 256})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p1, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 256<<20 || st.Blocks*512 > 64<<20 {
		t.Errorf("ext4 copy: size %d, allocated %d: want 256 MiB, sparse", st.Size, st.Blocks*512)
	}
	out, err := exec.Command("dumpe2fs", "-h", p1).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	for _, want := range []string{"Filesystem volume name:   reprolab", "has_journal", "extent", "Block count:              65536"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dumpe2fs lacks %q", want)
		}
	}
	if out, err := exec.Command("e2fsck", "-fn", p1).CombinedOutput(); err != nil {
		t.Errorf("e2fsck on the copy: %v\n%s", err, out)
	}
	// A second disk of the same size comes from the cached pristine image.
	pristine, _ := filepath.Glob(filepath.Join(cache, "disks", "ext4-256M-*.img"))
	if len(pristine) != 1 {
		t.Fatalf("pristine images: %v", pristine)
	}
	if _, err := MakeDisk(ctx, cache, t.TempDir(), DiskSpec{Name: "data", Kind: "ext4", SizeMB: 256}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d    DiskSpec
		want string
	}{
		{DiskSpec{Name: "", Kind: "raw", SizeMB: 1}, "disk name"},
		{DiskSpec{Name: "a-name-longer-than-twenty", Kind: "raw", SizeMB: 1}, "disk name"},
		{DiskSpec{Name: "x", Kind: "xfs", SizeMB: 1}, `kind "xfs"`},
		{DiskSpec{Name: "x", Kind: "raw", SizeMB: 0}, "size 0 MB"},
	} {
		if _, err := MakeDisk(ctx, cache, run, tc.d); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("MakeDisk(%+v) = %v, want error with %q", tc.d, err, tc.want)
		}
	}
}

func BenchmarkBuildInitramfs(b *testing.B) {
	mods := debianModules(b, "x86_64")
	b.Run("cached", func(b *testing.B) {
		s := InitramfsSpec{Arch: "x86_64", ModulesDir: mods, CacheDir: DefaultCacheDir()}
		if _, err := BuildInitramfs(context.Background(), s); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := BuildInitramfs(context.Background(), s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		// A fresh cache each time: new host key, agent relinked, archive written.
		for i := 0; i < b.N; i++ {
			s := InitramfsSpec{Arch: "x86_64", ModulesDir: mods, CacheDir: b.TempDir()}
			if _, err := BuildInitramfs(context.Background(), s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func ed25519Key() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// TestCompressedModules packs real modules the way other distributions ship them (.ko.xz
// on Debian 13, .ko.zst on Fedora/Arch, .ko.gz elsewhere) and checks that they resolve,
// with their dependencies read from inside the compressed files, to the original ELF bytes
// under plain .ko names.
func TestCompressedModules(t *testing.T) {
	src := debianModules(t, "x86_64")
	dst := t.TempDir()
	copyFile(t, filepath.Join(src, "modules.builtin"), filepath.Join(dst, "modules.builtin"))
	orig := map[string][]byte{}
	for _, m := range []struct{ rel, tool string }{
		{"kernel/drivers/block/virtio_blk.ko", "xz"},
		{"kernel/drivers/virtio/virtio.ko", "zstd"},
		{"kernel/drivers/virtio/virtio_ring.ko", "gzip"},
	} {
		tool, err := exec.LookPath(m.tool)
		if err != nil {
			t.Skipf("%s not installed", m.tool)
		}
		b, err := os.ReadFile(filepath.Join(src, m.rel))
		if err != nil {
			t.Fatal(err)
		}
		orig[m.rel] = b
		p := filepath.Join(dst, m.rel)
		copyFile(t, filepath.Join(src, m.rel), p)
		if out, err := exec.Command(tool, "-q", p).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", m.tool, err, out)
		}
	}
	tree, err := openModuleTree(dst)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.resolve([]string{"virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 3 || normalize(mods[2].rel) != "virtio_blk" {
		t.Fatalf("resolved %d modules, virtio_blk last expected: %+v", len(mods), mods)
	}
	for _, m := range mods {
		target := m.target("v")
		if !strings.HasSuffix(target, ".ko") {
			t.Errorf("%s goes into the initramfs as %s, want a plain .ko", m.rel, target)
		}
		if !bytes.Equal(m.data, orig[strings.TrimPrefix(target, "lib/modules/v/")]) {
			t.Errorf("%s decompressed to different bytes", m.rel)
		}
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	old, fresh := filepath.Join(dir, "old.cpio"), filepath.Join(dir, "fresh.cpio")
	for _, f := range []string{old, fresh} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-30 * 24 * time.Hour)
	os.Chtimes(old, long, long)
	os.Chtimes(fresh, long, long)
	touch(fresh) // used just now
	prune(dir, staleAfter)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale entry kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("touched entry removed: %v", err)
	}
}

// checkModuleList reads etc/reprolab/modules back: the modules in load order, each after its
// dependencies; the early ones are the agent's transport (virtio_pci, virtio_console) and
// everything they need, nothing else.
func checkModuleList(t *testing.T, list string, a *Initramfs) {
	t.Helper()
	var order, early []string
	seen, isEarly := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || (f[0] != "early" && f[0] != "late") {
			t.Errorf("modules line %q: want early|late PATH [DEP...]", l)
			continue
		}
		for _, d := range f[2:] {
			if !seen[d] {
				t.Errorf("%s listed before its dependency %s", f[1], d)
			}
			if f[0] == "early" && !isEarly[d] {
				t.Errorf("early %s needs %s, which is not early", f[1], d)
			}
		}
		seen[f[1]] = true
		order = append(order, f[1])
		if f[0] == "early" {
			early = append(early, f[1])
			isEarly[f[1]] = true
		}
	}
	if strings.Join(order, " ") != strings.Join(a.Modules, " ") {
		t.Errorf("etc/reprolab/modules %v != Initramfs.Modules %v", order, a.Modules)
	}
	if strings.Join(early, " ") != strings.Join(a.Early, " ") {
		t.Errorf("early modules %v != Initramfs.Early %v", early, a.Early)
	}
	var names []string
	for _, e := range early {
		names = append(names, normalize(e))
	}
	got := strings.Join(names, " ")
	for _, want := range TransportModules {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("early modules %s lack %s", got, want)
		}
	}
	for _, late := range []string{"ext4", "dm_crypt", "virtio_blk"} {
		if strings.Contains(" "+got+" ", " "+late+" ") {
			t.Errorf("early modules %s include %s, which only setup needs", got, late)
		}
	}
}
