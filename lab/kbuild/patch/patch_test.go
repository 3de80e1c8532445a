package patch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	v411Repo = "/work/.mirror/HCLS+linux-4.11/repo"
	v411     = "93c10f52"
	v413Repo = "/work/.mirror/kinmax+linux-4.13.19/repo"
	v4139    = "54631b0e"
)

func stage(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fromGit stages one real kernel file from a local repository.
func fromGit(t *testing.T, repo, commit, path string) string {
	out, err := exec.Command("git", "-C", repo, "show", commit+":"+path).Output()
	if err != nil {
		t.Skipf("%s not available here: %v", repo, err)
	}
	return stage(t, map[string]string{path: string(out)})
}

func read(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestForms(t *testing.T) {
	orig := read(t, "testdata/tree/lines.txt")
	for _, tc := range []struct {
		file    string
		patches int
		want    string
	}{
		{"testdata/two-messages.mbox", 2, "one\ntwo\nTHREE\nFOUR\nfive\nsix\nseven\n"},
		{"testdata/plain.diff", 1, "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n"},
	} {
		ps, err := Load(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != tc.patches {
			t.Fatalf("%s: %d patches, want %d", tc.file, len(ps), tc.patches)
		}
		dir := stage(t, map[string]string{"lines.txt": orig})
		if err := Apply(context.Background(), dir, ps); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got := read(t, filepath.Join(dir, "lines.txt")); got != tc.want {
			t.Errorf("%s: got %q", tc.file, got)
		}
	}
}

func TestMboxOrderMatters(t *testing.T) {
	ps, err := Load("testdata/two-messages.mbox")
	if err != nil {
		t.Fatal(err)
	}
	dir := stage(t, map[string]string{"lines.txt": read(t, "testdata/tree/lines.txt")})
	err = Apply(context.Background(), dir, []*Patch{ps[1], ps[0]})
	e, ok := err.(*Error)
	if !ok || e.File != "lines.txt" || e.Hunk != "@@ -2,4 +2,4 @@" || !strings.Contains(e.Msg, `first mismatch at line 3: the patch expects "THREE", the file has "three"`) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(e.Patch, "message 2") {
		t.Errorf("patch not named: %s", e.Patch)
	}
}

// stageGit stages real kernel files of one commit from a local repository, or skips.
func stageGit(t *testing.T, repo, commit string, paths ...string) string {
	t.Helper()
	files := map[string]string{}
	for _, p := range paths {
		out, err := exec.Command("git", "-C", repo, "show", commit+":"+p).Output()
		if err != nil {
			t.Skipf("kernel tree %s not available here (%v): the apply half of this test needs it", repo, err)
		}
		files[p] = string(out)
	}
	return stage(t, files)
}

var fixFiles = []string{"include/linux/memcontrol.h", "mm/memcontrol.c", "mm/page-writeback.c"}

// The repository's own mails: the shipped v4.11 fix backport as git format-patch wrote it,
// and a reply to it from a web archive of the thread — prose, quoted text, an inline debug
// diff whose whitespace the archive destroyed, the message on the page twice.
func TestOwnThread(t *testing.T) {
	fix, err := Load("testdata/fix-backport-v4.11.patch")
	if err != nil {
		t.Fatal(err)
	}
	if len(fix) != 1 || fix[0].Mangled || strings.Join(fix[0].Paths(), " ") != strings.Join(fixFiles, " ") ||
		!strings.Contains(fix[0].Subject, "fix NULL pointer crash in") {
		t.Fatalf("fix: want one clean patch of %v, got %d: %+v", fixFiles, len(fix), fix)
	}
	shipped, err := Load("../../../reproducers/memcg-writeback-null/patches/0001-mm-memcontrol-fix-NULL-pointer-crash-in-test_clear_page_writeback-v4.11.patch")
	if err != nil {
		t.Fatal(err)
	}
	if string(shipped[0].Text) != string(fix[0].Text) {
		t.Errorf("testdata/fix-backport-v4.11.patch is not the shipped backport's diff")
	}
	reply, err := Load("testdata/reply-debug-diff.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) != 1 || !reply[0].Mangled || len(reply[0].Files) != 1 || len(reply[0].Files[0].TextFragments) != 1 {
		t.Fatalf("reply: want one mangled patch with one hunk (the second copy dropped), got %d: %+v", len(reply), reply)
	}
	if got := reply[0].Paths(); len(got) != 1 || got[0] != "mm/page-writeback.c" {
		t.Errorf("reply paths %v", got)
	}
	if !strings.HasPrefix(reply[0].Subject, "Re: [PATCH] mm: memcontrol") {
		t.Errorf("reply subject %q", reply[0].Subject)
	}

	t.Run("v4.11", func(t *testing.T) {
		// The fix and the debug diff on top apply to v4.11, and the debug lines land in
		// test_clear_page_writeback(), indented like the line after them (the archive lost
		// the real indentation; C does not mind)...
		dir := stageGit(t, v411Repo, v411, fixFiles...)
		if err := Apply(context.Background(), dir, append(fix, reply...)); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(dir, "mm/page-writeback.c")); !strings.Contains(got, "\tif (ret) {\n\t\tif (memcg && !READ_ONCE(page->mem_cgroup))\n\t\ttrace_printk(") {
			t.Errorf("debug lines not placed at the top of the if (ret) block")
		}
		// ...but the debug diff alone does not: it was written on top of the fix. The
		// error names the file, the hunk, its function and the first line that differs.
		dir = stageGit(t, v411Repo, v411, fixFiles...)
		before := read(t, filepath.Join(dir, "mm/page-writeback.c"))
		err := Apply(context.Background(), dir, append(fix[:0:0], reply...))
		e, ok := err.(*Error)
		if !ok || e.File != "mm/page-writeback.c" || e.Hunk != "@@ -2762,6 +2762,8 @@" || e.Func != "test_clear_page_writeback" ||
			!strings.Contains(e.Msg, `the patch expects "* memcg pinned above instead of page->mem_cgroup."`) {
			t.Fatalf("got %v", err)
		}
		if read(t, filepath.Join(dir, "mm/page-writeback.c")) != before {
			t.Errorf("a failed apply changed the tree")
		}
		t.Log(err)
	})
}

// seedPath is the linux-mm thread the project started from, in ../shared beside the
// repository or $REPROLAB_SHARED (a clone alone does not have it).
func seedPath() string {
	shared := "../../../../shared"
	if d := os.Getenv("REPROLAB_SHARED"); d != "" {
		shared = d
	}
	return filepath.Join(shared, "seeds", "000_8f558342971f30a6.txt")
}

// The seed thread is a web page of a mail thread: its diff lost every leading
// space and tab, and the page holds the message twice.
func TestSeedThread(t *testing.T) {
	seed := seedPath()
	if _, err := os.Stat(seed); err != nil {
		t.Skipf("the seed thread is not here (%v): shared/ is not beside this clone; TestOwnThread covers the same forms", err)
	}
	ps, err := Load(seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !ps[0].Mangled || len(ps[0].Files) != 1 || len(ps[0].Files[0].TextFragments) != 2 {
		t.Fatalf("want one mangled patch with 2 hunks, got %d patches %+v", len(ps), ps)
	}
	if got := ps[0].Paths(); len(got) != 1 || got[0] != "include/linux/memcontrol.h" {
		t.Errorf("paths %v", got)
	}
	if !strings.Contains(ps[0].Subject, "page->mem_cgroup") {
		t.Errorf("subject %q", ps[0].Subject)
	}

	t.Run("v4.13.9", func(t *testing.T) {
		// It was written against v4.13-rc: it applies to v4.13.9...
		dir := stageGit(t, v413Repo, v4139, "include/linux/memcontrol.h")
		if err := Apply(context.Background(), dir, ps); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(read(t, filepath.Join(dir, "include/linux/memcontrol.h")), "VM_BUG_ON_PAGE(!page_count(page), page);"); n != 2 {
			t.Errorf("%d VM_BUG_ON_PAGE lines added, want 2", n)
		}
	})
	t.Run("v4.11", func(t *testing.T) {
		// ...and not to v4.11, which has no __mod_lruvec_page_state(): the error says so,
		// with the file, the hunk and the first line that differs.
		dir := stageGit(t, v411Repo, v411, "include/linux/memcontrol.h")
		err := Apply(context.Background(), dir, ps)
		e, ok := err.(*Error)
		if !ok || e.File != "include/linux/memcontrol.h" || e.Hunk != "@@ -599,5 +599,6 @@" || e.Func != "__mod_lruvec_page_state" ||
			!strings.Contains(e.Msg, `first mismatch at line 600: the patch expects "struct mem_cgroup_per_node *pn;"`) ||
			!strings.Contains(e.Error(), "in __mod_lruvec_page_state()") || !strings.Contains(e.Msg, "this tree has no __mod_lruvec_page_state()") {
			t.Fatalf("got %v", err)
		}
		t.Log(err)
	})
}

func TestBad(t *testing.T) {
	if _, err := Parse("x.txt", []byte("just a mail\nwithout a diff\n")); err == nil || !strings.Contains(err.Error(), "no diff found") {
		t.Errorf("no diff: %v", err)
	}
	if _, err := Parse("cut.diff", []byte("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n")); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: %v", err)
	}
	// Prose that happens to hold a "--- " line above a "+++ " line is not a file diff.
	ps, err := Parse("prose.mail", []byte("Hi,\n--- a/x.c is where it starts\n+++ and this is prose too\n\ndiff --git a/y b/y\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n"))
	if err != nil || len(ps) != 1 || strings.Join(ps[0].Paths(), " ") != "y" {
		t.Errorf("prose header: %v, paths %v", err, ps[0].Paths())
	}
	if _, err := Parse("nohunk.mail", []byte("--- a/x.c\n+++ b/x.c\nno hunk follows\n")); err == nil || !strings.Contains(err.Error(), "no diff found") {
		t.Errorf("header without hunk: %v", err)
	}
	ps, _ = Load("testdata/plain.diff")
	err = Apply(context.Background(), t.TempDir(), ps)
	if e, ok := err.(*Error); !ok || e.File != "lines.txt" || !strings.Contains(e.Msg, "does not exist") {
		t.Errorf("missing file: %v", err)
	}
}

// A series is all or nothing: when patch 3 of 3 does not apply, the changes of patches 1
// and 2 (an edit and a new file) are gone and the error names message 3.
func TestSeriesAtomic(t *testing.T) {
	ps, err := Load("testdata/series-third-fails.mbox")
	if err != nil || len(ps) != 3 {
		t.Fatalf("%d patches, %v", len(ps), err)
	}
	orig := read(t, "testdata/tree/lines.txt")
	for _, mangled := range []bool{false, true} {
		dir := stage(t, map[string]string{"lines.txt": orig})
		ps[2].Mangled = mangled // the loose path (mail-mangled patches) must roll back too
		err := Apply(context.Background(), dir, ps)
		e, ok := err.(*Error)
		if !ok || !strings.Contains(e.Patch, "message 3") || e.File != "lines.txt" || !strings.Contains(e.Msg, `"sixty"`) {
			t.Fatalf("mangled=%v: got %v", mangled, err)
		}
		if got := read(t, filepath.Join(dir, "lines.txt")); got != orig {
			t.Errorf("mangled=%v: lines.txt changed by a failed series:\n%s", mangled, got)
		}
		if _, err := os.Stat(filepath.Join(dir, "notes/new.txt")); err == nil {
			t.Errorf("mangled=%v: notes/new.txt of patch 2 left behind", mangled)
		}
	}
}

// Paths that leave the tree are refused: "../" and absolute paths when the patch is read,
// a symlink in the tree that points outside when it is applied; the file outside is never
// touched, by git apply or by the loose applier for mangled mail.
func TestPathsOutsideTree(t *testing.T) {
	for _, c := range []struct{ name, diff, want string }{
		{"dotdot", "diff --git a/../victim.txt b/../victim.txt\n--- a/../victim.txt\n+++ b/../victim.txt\n@@ -1 +1 @@\n-x\n+y\n", `"../victim.txt" climbs out of the tree`},
		{"traditional", "--- linux.orig/mm/../../victim.txt\n+++ linux/mm/../../victim.txt\n@@ -1 +1 @@\n-x\n+y\n", "climbs out of the tree"},
		{"rename", "diff --git a/lines.txt b/../../victim.txt\nsimilarity index 100%\nrename from lines.txt\nrename to ../../victim.txt\n", `"../../victim.txt" climbs out of the tree`},
	} {
		_, err := Parse(c.name+".diff", []byte(c.diff))
		if e, ok := err.(*Error); !ok || !strings.Contains(e.Error(), c.want) || !strings.Contains(e.Error(), "inside the kernel tree") {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}

	base := t.TempDir()
	tree, outside := filepath.Join(base, "tree"), filepath.Join(base, "outside")
	os.MkdirAll(tree, 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "lines.txt"), []byte(read(t, "testdata/tree/lines.txt")), 0o644)
	if err := os.Symlink(outside, filepath.Join(tree, "mm")); err != nil {
		t.Fatal(err)
	}
	diff := "diff --git a/mm/lines.txt b/mm/lines.txt\n--- a/mm/lines.txt\n+++ b/mm/lines.txt\n@@ -5,3 +5,4 @@\n five\n six\n seven\n+eight\n"
	for _, mangled := range []bool{false, true} {
		ps, err := Parse("link.diff", []byte(diff))
		if err != nil {
			t.Fatal(err)
		}
		ps[0].Mangled = mangled
		err = Apply(context.Background(), tree, ps)
		if err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("mangled=%v: got %v, want a refusal naming the symlink", mangled, err)
		}
		if got := read(t, filepath.Join(outside, "lines.txt")); strings.Contains(got, "eight") {
			t.Errorf("mangled=%v: the file outside the tree was patched", mangled)
		}
	}
}
