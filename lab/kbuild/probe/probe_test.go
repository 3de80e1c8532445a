package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
)

const (
	probes   = "../../../reproducers/memcg-writeback-null/probes/"
	backport = "../../../reproducers/memcg-writeback-null/patches/0001-mm-memcontrol-fix-NULL-pointer-crash-in-test_clear_page_writeback-v4.11.patch"
)

var trees = map[string][2]string{
	"4.11.0": {"/work/.mirror/HCLS+linux-4.11/repo", "93c10f52"},
	"4.13.9": {"/work/.mirror/kinmax+linux-4.13.19/repo", "54631b0e"},
}

// stage copies the real kernel files a probe touches from a local git tree.
func stage(t *testing.T, ver string) (string, kver.Version) {
	t.Helper()
	tr := trees[ver]
	dir := t.TempDir()
	for _, f := range []string{"include/linux/memcontrol.h", "mm/page-writeback.c", "mm/memcontrol.c", "kernel/Makefile"} {
		out, err := exec.Command("git", "-C", tr[0], "show", tr[1]+":"+f).Output()
		if err != nil {
			t.Skipf("kernel tree %s not available: %v", tr[0], err)
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), out, 0o644)
	}
	v, _ := kver.Parse(ver)
	return dir, v
}

func load(t *testing.T, name string) *Spec {
	s, err := Load(probes + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func read(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSeedProbe(t *testing.T) {
	for _, tc := range []struct {
		ver, file string
		want      []string // consecutive lines after the edit (trimmed)
	}{
		{"4.11.0", "include/linux/memcontrol.h", []string{
			"if (page->mem_cgroup) { /* braces added by reprolab */",
			`{ /* reprolab probe "seed": delay from reprolab.delay_seed (us, 0 = off) */`,
			"extern unsigned int reprolab_delay_seed;",
			"extern void reprolab_delay(unsigned int us);",
			"unsigned int __reprolab_us = READ_ONCE(reprolab_delay_seed);",
			"",
			"if (unlikely(__reprolab_us))",
			"reprolab_delay(__reprolab_us);",
			"}",
			"this_cpu_add(page->mem_cgroup->stat->count[idx], val);",
			"}",
			"}",
		}},
		{"4.13.9", "mm/page-writeback.c", []string{
			"if (ret) {",
			`{ /* reprolab probe "seed": delay from reprolab.delay_seed (us, 0 = off) */`,
			"extern unsigned int reprolab_delay_seed;",
			"extern void reprolab_delay(unsigned int us);",
			"unsigned int __reprolab_us = READ_ONCE(reprolab_delay_seed);",
			"",
			"if (unlikely(__reprolab_us))",
			"reprolab_delay(__reprolab_us);",
			"}",
			"dec_lruvec_state(lruvec, NR_WRITEBACK);",
		}},
	} {
		t.Run(tc.ver, func(t *testing.T) {
			dir, v := stage(t, tc.ver)
			s := load(t, "seed.yaml")
			sites, params, err := Apply(dir, v, []*Spec{s})
			if err != nil {
				t.Fatal(err)
			}
			if len(params) != 1 || params[0] != "reprolab.delay_seed=100" {
				t.Errorf("params %v", params)
			}
			if len(sites) != 1 || sites[0].File != tc.file {
				t.Fatalf("sites %+v", sites)
			}
			got := strings.Split(read(t, filepath.Join(dir, tc.file)), "\n")
			i := strings.Index(strings.Join(got, "\n"), tc.want[1])
			if i < 0 {
				t.Fatalf("%q not in result", tc.want[1])
			}
			start := strings.Count(strings.Join(got, "\n")[:i], "\n") - 1
			for k, w := range tc.want {
				if g := strings.TrimSpace(got[start+k]); g != w {
					t.Errorf("line %d: got %q, want %q", start+k+1, g, w)
				}
			}
			if sites[0].Line != start+2 {
				t.Errorf("site line %d, want %d", sites[0].Line, start+2)
			}
			h := read(t, filepath.Join(dir, HelperFile))
			for _, w := range []string{`#define MODULE_PARAM_PREFIX "reprolab."`, "unsigned int reprolab_delay_seed = 100;", "module_param_named(delay_seed, reprolab_delay_seed, uint, 0644);", "#include <linux/delay.h>"} {
				if !strings.Contains(h, w) {
					t.Errorf("helper lacks %q", w)
				}
			}
			if !strings.HasSuffix(read(t, filepath.Join(dir, MakefileKB)), "obj-y += reprolab_probes.o\n") {
				t.Error("kernel/Makefile does not build the helper")
			}
		})
	}
}

// The wb_stat probe's anchor exists only once the v4.11 backport is applied.
func TestAnchorNeedsBackport(t *testing.T) {
	dir, v := stage(t, "4.11.0")
	s := load(t, "writeback-stat-fixed.yaml")
	_, _, err := Apply(dir, v, []*Spec{s})
	if e, ok := err.(*Error); !ok || !strings.Contains(e.Msg, `anchor before "mem_cgroup_update_stat(memcg, MEM_CGROUP_STAT_WRITEBACK, -1);" not found in test_clear_page_writeback() in mm/page-writeback.c:2723-2764 (kernel 4.11.0)`) {
		t.Fatalf("got %v", err)
	}
	ps, err := patch.Load(backport)
	if err != nil {
		t.Fatal(err)
	}
	if err := patch.Apply(context.Background(), dir, ps); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Apply(dir, v, []*Spec{s}); err != nil {
		t.Fatal(err)
	}
	c := read(t, filepath.Join(dir, "mm/page-writeback.c"))
	if !strings.Contains(c, "reprolab_delay(__reprolab_us);\n\t\t}\n\t\tmem_cgroup_update_stat(memcg, MEM_CGROUP_STAT_WRITEBACK, -1);") {
		t.Error("probe not just before the pinned-memcg update")
	}
}

func TestBadSpecs(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"name: x\ndelay_us: 1\nfile: a.c\nfunction: f\nafter: y\ncolour: red\n", `t.yaml:6: unknown key "colour"`},
		{"name: X-1\ndelay_us: 1\nfile: a.c\nfunction: f\nafter: y\n", "lower-case"},
		{"name: x\ndelay_us: 1\nfile: a.c\nfunction: f\n", "exactly one of after and before"},
		{"name: x\ndelay_us: 1\nvariants:\n  - versions: 4.11\n    file: a.c\n    function: f\n    after: y\n", "versions \"4.11\""},
		{"name: x\ndelay_us: -5\nfile: a.c\nfunction: f\nafter: y\n", `t.yaml:2: "-5" is a whole number, want a whole number ≥ 0`},
		{"name: x\ndelay_us: 1\nfile: ../outside.c\nfunction: f\nafter: y\n", `file: path "../outside.c" climbs out of the tree`},
		{"name: x\ndelay_us: 1\nfile: /etc/passwd\nfunction: f\nafter: y\n", `file: path "/etc/passwd" is absolute`},
		{"name: x\ndelay_us: 1\nvariants:\n  - versions: \">=4.11\"\n    file: mm/../../x.c\n    function: f\n    after: y\n", "climbs out of the tree"},
		{"name: x\ndelay_us: 1.5\nfile: a.c\nfunction: f\nafter: y\n", `delay_us (line 2): "1.5" is not a whole number`},
	} {
		if _, err := Parse("t.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	s := load(t, "seed.yaml")
	if _, err := s.For(kver.Version{Major: 5, Minor: 4}); err == nil || !strings.Contains(err.Error(), "no location for kernel 5.4.0") {
		t.Errorf("5.4: %v", err)
	}
}

// A probe file reached through a symlink that leaves the tree is refused before anything
// is written, and the file outside stays as it was.
func TestSymlinkOutOfTree(t *testing.T) {
	base := t.TempDir()
	tree, outside := filepath.Join(base, "tree"), filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(tree, "kernel"), 0o755)
	os.MkdirAll(outside, 0o755)
	victim := "static void f(void)\n{\n\ty();\n}\n"
	os.WriteFile(filepath.Join(outside, "a.c"), []byte(victim), 0o644)
	os.WriteFile(filepath.Join(tree, "kernel/Makefile"), []byte("obj-y += x.o\n"), 0o644)
	if err := os.Symlink(outside, filepath.Join(tree, "mm")); err != nil {
		t.Fatal(err)
	}
	s, err := Parse("t.yaml", []byte("name: x\ndelay_us: 1\nfile: mm/a.c\nfunction: f\nafter: y();\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Apply(tree, kver.Version{Major: 4, Minor: 11}, []*Spec{s})
	if err == nil || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), "inside the kernel tree") {
		t.Fatalf("got %v, want a refusal naming the symlink", err)
	}
	if got := read(t, filepath.Join(outside, "a.c")); got != victim {
		t.Errorf("the file outside the tree was edited:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(tree, HelperFile)); err == nil {
		t.Errorf("the helper was written although the probe was refused")
	}
}

func TestInsertEdgeCases(t *testing.T) {
	src := `static int f(int a)
{
	int x = 0;

	if (a)
		x = g(a,
		      a + 1);
	else
		x = 2;
	return x;
}
`
	spec := func(after, before string) *Spec {
		return &Spec{Name: "t", DelayUS: 5, Location: Location{File: "f.c", Function: "f", After: after, Before: before}}
	}
	v := kver.Version{Major: 6, Minor: 1}
	// Before the multi-line body of an if: the body is braced whole.
	out, _, err := insert(src, spec("", "x = g(a,"), spec("", "x = g(a,").Location, v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "if (a) { /* braces added by reprolab */") || !strings.Contains(out, "a + 1);\n\t}\n\telse") {
		t.Errorf("multi-line body not braced:\n%s", out)
	}
	// After a declaration: plain insertion, no braces.
	out, _, err = insert(src, spec("int x = 0;", ""), spec("int x = 0;", "").Location, v)
	if err != nil || strings.Contains(out, "braces added") || !strings.Contains(out, "int x = 0;\n\n\t{ /* reprolab probe") {
		t.Errorf("after declaration: %v\n%s", err, out)
	}
	// Ambiguous anchor.
	if _, _, err := insert(src, spec("x", ""), spec("x", "").Location, v); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous: %v", err)
	}
	// Unknown function: a prototype is not a definition.
	if _, _, err := insert("int h(void);\n", spec("x", ""), Location{File: "f.c", Function: "h", After: "x"}, v); err == nil || !strings.Contains(err.Error(), "h() is not defined") {
		t.Errorf("prototype: %v", err)
	}
}
