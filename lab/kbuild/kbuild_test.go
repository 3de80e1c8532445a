package kbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
	"github.com/reprolab/reprolab/lab/kbuild/probe"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := exec.Command(args[0], args[1:]...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func mini(t *testing.T) string {
	abs, _ := filepath.Abs("testdata/minitree")
	return abs
}

// Every bad input fails fast, before make runs, with a message naming the
// thing, and is classified as bad input (CLI exit 2).
func TestBadInputs(t *testing.T) {
	ctx := context.Background()
	repo := vcstest.KernelTree(t, "testdata/minitree", "").Dir
	tdir := t.TempDir()
	run(t, ".", "cp", "-a", "testdata/minitree", filepath.Join(tdir, "linux-4.11"))
	tarball := filepath.Join(tdir, "linux-4.11.tar.gz")
	run(t, tdir, "tar", "-czf", tarball, "linux-4.11")
	data, _ := os.ReadFile(tarball)
	sum := sha256.Sum256(data)
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }

	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"unknown fragment", Spec{Source: source.Source{Dir: mini(t)}, Fragments: []string{"base", "dmcrypt"}},
			`unknown config fragment "dmcrypt"`},
		{"unknown arch", Spec{Arch: "riscv64", Source: source.Source{Dir: mini(t)}}, `arch "riscv64": want x86_64 or arm64`},
		{"patch does not apply", Spec{Source: source.Source{Dir: mini(t)}, Patches: []string{abs("testdata/wrong-context.diff")}},
			`mm/writeback.c: hunk @@ -5,6 +5,7 @@ in end_writeback(): does not apply: first mismatch at line 6: the patch expects "\tret = test_clear_writeback(page);", the file has "\tret = clear_writeback(page);"`},
		{"probe anchor not found", Spec{Source: source.Source{Dir: mini(t)}, Probes: []string{abs("testdata/probe-bad-anchor.yaml")}},
			`probe window: anchor before "account(page->memcg)" not found in end_writeback() in mm/writeback.c:2-10 (kernel 4.11.0)`},
		{"tarball with wrong sha256", Spec{Source: source.Source{Tarball: tarball, SHA256: strings.Repeat("ab", 32)}},
			"sha256 is " + hex.EncodeToString(sum[:]) + ", the spec says abab"},
		{"url without sha256", Spec{Source: source.Source{URL: "file://" + tarball}}, "sha256 is required"},
		{"git ref that does not exist", Spec{Source: source.Source{Git: repo, Ref: "v4.11-rc9"}}, `unknown revision "v4.11-rc9"`},
		{"base", Spec{Source: source.Source{Dir: mini(t)}, Base: "everything"}, `base "everything"`},
		{"missing patch file", Spec{Source: source.Source{Dir: mini(t)}, Patches: []string{"nope.patch"}}, "nope.patch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			if s.Arch == "" {
				s.Arch = "x86_64"
			}
			s.FragmentDirs = []string{"../../kconfigs"}
			s.CacheDir = t.TempDir()
			_, err := Build(ctx, s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
			if !fault.IsInput(err) {
				t.Errorf("not classified as bad input: %v", err)
			}
		})
	}
}

// A compat fix or probe is written into the work tree only when the file's
// content changes, so make rebuilds what depends on it and nothing else, and
// the pristine tree behind the hard links is never modified.
func TestEditsAreIncremental(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	pristine := filepath.Join(cache, "pristine")
	tree := filepath.Join(cache, "tree")
	run(t, ".", "cp", "-a", "testdata/minitree", pristine)
	os.MkdirAll(tree, 0o755)
	run(t, ".", "cp", "-al", pristine, filepath.Join(tree, "src"))
	load := func(delay string, after string) *probe.Spec {
		s, err := probe.Parse("p.yaml", []byte("name: window\ndelay_us: "+delay+"\nfile: mm/writeback.c\nfunction: end_writeback\nafter: \""+after+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	b := &builder{version: kver.Version{Major: 4, Minor: 11}}
	step := func(probes []*probe.Spec, wantChanged int, wantTouched string) {
		t.Helper()
		b.probes = probes
		changed, touched, err := b.edit(ctx, pristine, tree)
		if err != nil {
			t.Fatal(err)
		}
		if changed != wantChanged || strings.Join(touched, " ") != wantTouched {
			t.Errorf("changed %d %v, want %d %q", changed, touched, wantChanged, wantTouched)
		}
	}
	step([]*probe.Spec{load("50", "if (ret)")}, 3, "kernel/Makefile kernel/reprolab_probes.c mm/writeback.c")
	step([]*probe.Spec{load("50", "if (ret)")}, 0, "kernel/Makefile kernel/reprolab_probes.c mm/writeback.c")
	// Only the default delay: only the generated helper changes.
	step([]*probe.Spec{load("250", "if (ret)")}, 1, "kernel/Makefile kernel/reprolab_probes.c mm/writeback.c")
	if got := b.params; len(got) != 1 || got[0] != "reprolab.delay_window=250" {
		t.Errorf("params %v", got)
	}
	// Moving the probe edits the probed file only.
	step([]*probe.Spec{load("250", "int ret;")}, 1, "kernel/Makefile kernel/reprolab_probes.c mm/writeback.c")
	// No probe: everything back to pristine, the generated file removed.
	step(nil, 3, "")
	for _, f := range []string{"mm/writeback.c", "kernel/Makefile"} {
		a, _ := os.ReadFile(filepath.Join(pristine, f))
		bb, _ := os.ReadFile(filepath.Join(tree, "src", f))
		if string(a) != string(bb) {
			t.Errorf("%s not restored", f)
		}
	}
	if _, err := os.Stat(filepath.Join(tree, "src", probe.HelperFile)); err == nil {
		t.Error("generated helper left behind")
	}
	orig, _ := os.ReadFile("testdata/minitree/mm/writeback.c")
	now, _ := os.ReadFile(filepath.Join(pristine, "mm/writeback.c"))
	if string(orig) != string(now) {
		t.Error("pristine tree modified through a hard link")
	}
}

func TestCompatFixes(t *testing.T) {
	v411 := kver.Version{Major: 4, Minor: 11}
	names := func(fs []Fix) (out []string) {
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return
	}
	if got := strings.Join(names(fixesFor(v411, "x86_64")), " "); got != "x86-max-page-size dtc-yylloc-common selinux-genheaders-pf-max" {
		t.Errorf("4.11 x86_64: %s", got)
	}
	if got := names(fixesFor(kver.Version{Major: 6, Minor: 1}, "x86_64")); len(got) != 0 {
		t.Errorf("6.1 needs no fix, got %v", got)
	}
	// Each fix applied to the real file of the old kernel it is for, and
	// applied only once.
	for _, tc := range []struct{ repo, commit string }{
		{"/work/.mirror/HCLS+linux-4.11/repo", "93c10f52"},
		{"/work/.mirror/kinmax+linux-4.13.19/repo", "54631b0e"},
	} {
		for _, f := range Fixes {
			data, err := exec.Command("git", "-C", tc.repo, "show", tc.commit+":"+f.File).Output()
			if err != nil {
				t.Skipf("%s not available", tc.repo)
			}
			fixed, ok := f.Edit(data)
			if !ok {
				t.Errorf("%s: %s does not apply to %s", tc.commit, f.Name, f.File)
				continue
			}
			if _, again := f.Edit(fixed); again {
				t.Errorf("%s applies twice", f.Name)
			}
		}
	}
}

func TestLoadSpec(t *testing.T) {
	s, err := LoadSpec("../../kconfigs/ci-6.1-x86_64.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Arch != "x86_64" || s.Source.Debian != "linux-source-6.1" || len(s.Probes) != 1 {
		t.Errorf("%+v", s)
	}
	if _, err := os.Stat(s.Probes[0]); err != nil {
		t.Errorf("probe path not resolved against the spec's folder: %v", err)
	}
	p := filepath.Join(t.TempDir(), "k.yaml")
	os.WriteFile(p, []byte("arch: x86_64\nsource: {debian: linux-source-6.1}\nfragmets: [base]\n"), 0o644)
	if _, err := LoadSpec(p); err == nil || !fault.IsInput(err) || !strings.Contains(err.Error(), `k.yaml:3: unknown key "fragmets" (did you mean "fragments"?)`) {
		t.Errorf("typo: %v", err)
	}
}

func TestLinkStage(t *testing.T) {
	for obj, want := range map[string]bool{
		"init/version-timestamp.o":        true,
		"init/version.o":                  true,
		"arch/x86/boot/version.o":         true,
		"arch/x86/boot/compressed/misc.o": true,
		"arch/arm64/kernel/setup.o":       false,
		"mm/page-writeback.o":             false,
		"kernel/reprolab_probes.o":        false,
		"arch/x86/kernel/bootflag.o":      false,
	} {
		if linkStage(obj) != want {
			t.Errorf("linkStage(%s) = %v", obj, !want)
		}
	}
}

// A kept tree relinked at the next commit gets the probe's edits again; a file whose
// edited content is what the last build compiled keeps that build's mtime, so the step
// does not recompile the probed file.
func TestKeptTreeKeepsEditedMtimes(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	pristine, tree := filepath.Join(cache, "pristine"), filepath.Join(cache, "tree")
	run(t, ".", "cp", "-a", "testdata/minitree", pristine)
	os.MkdirAll(tree, 0o755)
	run(t, ".", "cp", "-al", pristine, filepath.Join(tree, "src"))
	p, err := probe.Parse("p.yaml", []byte("name: window\ndelay_us: 50\nfile: mm/writeback.c\nfunction: end_writeback\nafter: \"if (ret)\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{version: kver.Version{Major: 4, Minor: 11}, probes: []*probe.Spec{p}}
	if _, _, err := b.edit(ctx, pristine, tree); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	probed := filepath.Join(tree, "src", "mm/writeback.c")
	os.Chtimes(probed, old, old)
	snap := snapshotEdited(tree)
	// What relink does at the next commit: a fresh image of the moved dir, no edits.
	os.RemoveAll(filepath.Join(tree, "src"))
	run(t, ".", "cp", "-al", pristine, filepath.Join(tree, "src"))
	os.Remove(filepath.Join(tree, "state.json"))
	changed, _, err := b.edit(ctx, pristine, tree)
	if err != nil {
		t.Fatal(err)
	}
	if n := restoreEdited(filepath.Join(tree, "src"), snap); n != 3 || changed != 3 {
		t.Errorf("restored %d of %d rewritten files, want all 3", n, changed)
	}
	if fi, _ := os.Stat(probed); !fi.ModTime().Equal(old) {
		t.Errorf("probed file mtime %v, want the last build's %v", fi.ModTime(), old)
	}
	// A file whose edited content changed keeps its new mtime.
	snap = snapshotEdited(tree)
	os.WriteFile(probed, []byte("changed\n"), 0o644)
	restoreEdited(filepath.Join(tree, "src"), map[string]editedFile{"mm/writeback.c": snap["mm/writeback.c"]})
	if fi, _ := os.Stat(probed); fi.ModTime().Equal(old) {
		t.Error("a file with new content got the old mtime back")
	}
}
