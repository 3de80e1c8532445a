package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// vmlinuxFor returns Debian's debug vmlinux for the kernel the report came from, or
// skips: it is ~600 MB (linux-image-<ver>-dbg, see testdata/README.md) and not in git.
func vmlinuxFor(t testing.TB, r *Report) string {
	p := DefaultVmlinux(r.Kernel)
	if p == "" {
		t.Skipf("no debug vmlinux for %s in the cache; apt-get download linux-image-%s-dbg and unpack it under $REPROLAB_CACHE/debian/dbg (see testdata/README.md)", r.Kernel, r.Kernel)
	}
	return p
}

func TestSymbolize(t *testing.T) {
	tests := []struct {
		file string
		// want: substrings of "func file:line" for frames that must be resolved
		want []string
	}{
		{"x86-warn", []string{"proc_reg_write fs/proc/inode.c:", "vfs_write fs/read_write.c:", "ksys_write fs/read_write.c:"}},
		{"arm64-warn", []string{"proc_reg_write fs/proc/inode.c:", "vfs_write fs/read_write.c:", "ksys_write fs/read_write.c:"}},
		// pde_write is inlined into proc_reg_write on arm64: an expanded frame.
		{"arm64-warn", []string{"pde_write[inlined] fs/proc/inode.c:", "__do_sys_write[inlined] fs/read_write.c:"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tc := readCase(t, "testdata/linux/"+tt.file+".txt")
			rs := Parse(tc.log)
			if len(rs) == 0 {
				t.Fatal("no report")
			}
			r := rs[0]
			s, err := NewSymbolizer(vmlinuxFor(t, r), r.Arch)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			title, sig, guilty := r.Title, r.Signature, r.Frames[r.Guilty].Func
			if err := s.Symbolize(r); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Frames {
				// Debian builds in debian/build/build_<arch>_none_<flavour>/.
				file := f.File
				if i := strings.Index(file, "_none_"); i >= 0 {
					file = file[i+len("_none_"):]
					file = file[strings.IndexByte(file, '/')+1:]
				}
				inl := ""
				if f.Inlined {
					inl = "[inlined]"
				}
				got = append(got, f.Func+inl+" "+file+":"+strconv.Itoa(f.Line))
			}
			all := strings.Join(got, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("no frame %q in\n%s", w, all)
				}
			}
			if r.Title != title || r.Signature != sig || r.Frames[r.Guilty].Func != guilty {
				t.Errorf("symbolizing changed title/signature/guilty frame")
			}
		})
	}
}

// TestSymbolizeModule resolves frames of rlcrash.ko, the test-data module, built by
// testdata/gen/gen.sh into the cache (skipped when absent).
func TestSymbolizeModule(t *testing.T) {
	tc := readCase(t, "testdata/linux/x86-warn.txt")
	r := Parse(tc.log)[0]
	ko := filepath.Join(cacheDir(), "report-gen/amd64/rlcrash/rlcrash.ko")
	if _, err := os.Stat(ko); err != nil || DefaultVmlinux(r.Kernel) == "" {
		t.Skipf("no rlcrash.ko or vmlinux in the cache: run testdata/gen/gen.sh")
	}
	s, err := NewSymbolizer(vmlinuxFor(t, r), r.Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddModule("rlcrash", ko); err != nil {
		t.Fatal(err)
	}
	if err := s.Symbolize(r); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/gen/rlcrash/rlcrash.c")
	if err != nil {
		t.Fatal(err)
	}
	warnLine := 1 + strings.Count(string(src[:strings.Index(string(src), "WARN(1,")]), "\n")
	g := r.Frames[r.Guilty]
	if g.Func != "rl_warn" || !strings.HasSuffix(g.File, "rlcrash.c") || g.Line != warnLine {
		t.Errorf("guilty frame %s at %s:%d, want rl_warn at rlcrash.c:%d", g.Func, g.File, g.Line, warnLine)
	}
}

// TestSymbolizeV411 resolves a v4.11 oops against the vmlinux lab/kbuild built for it
// (skipped when the kbuild cache holds no v4.11 x86_64 build).
func TestSymbolizeV411(t *testing.T) {
	vmlinux := kbuildVmlinux(t, "4.11.0", "x86_64")
	tc := readCase(t, "testdata/linux/v4.11-x86-sysrq-c.txt")
	r := Parse(tc.log)[0]
	s, err := NewSymbolizer(vmlinux, r.Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Symbolize(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sysrq_handle_crash": "drivers/tty/sysrq.c", "write_sysrq_trigger": "drivers/tty/sysrq.c", "proc_reg_write": "fs/proc/inode.c"}
	for _, f := range r.Frames {
		if file, ok := want[f.Func]; ok {
			if !strings.HasSuffix(f.File, file) || f.Line <= 0 {
				t.Errorf("%s at %s:%d, want %s", f.Func, f.File, f.Line, file)
			}
			delete(want, f.Func)
		}
	}
	if len(want) > 0 {
		t.Errorf("frames not found: %v", want)
	}
}

// kbuildVmlinux finds a vmlinux built by lab/kbuild for version and arch in the cache.
func kbuildVmlinux(t *testing.T, version, arch string) string {
	metas, _ := filepath.Glob(filepath.Join(cacheDir(), "kbuild/out/*/metadata.json"))
	for _, m := range metas {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var meta struct {
			Arch          string `json:"arch"`
			KernelVersion string `json:"kernel_version"`
		}
		if json.Unmarshal(data, &meta) == nil && meta.Arch == arch && meta.KernelVersion == version {
			p := filepath.Join(filepath.Dir(m), "vmlinux")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Skipf("no lab/kbuild %s %s build with vmlinux in %s", version, arch, cacheDir())
	return ""
}

func TestNewSymbolizerBadInput(t *testing.T) {
	if _, err := NewSymbolizer("/nonexistent/vmlinux", "x86_64"); err == nil || !strings.Contains(err.Error(), "/nonexistent/vmlinux") {
		t.Errorf("missing file: %v", err)
	}
	exe, _ := os.Executable()
	if _, err := NewSymbolizer(exe, "sparc"); err == nil || !strings.Contains(err.Error(), "sparc") {
		t.Errorf("bad arch: %v", err)
	}
}
