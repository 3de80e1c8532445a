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
	seed     = "../../../../shared/seeds/000_8f558342971f30a6.txt"
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

// The seed thread is a web page of a mail thread: its diff lost every leading
// space and tab, and the page holds the message twice.
func TestSeedThread(t *testing.T) {
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

	// It was written against v4.13-rc: it applies to v4.13.9...
	dir := fromGit(t, v413Repo, v4139, "include/linux/memcontrol.h")
	if err := Apply(context.Background(), dir, ps); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(read(t, filepath.Join(dir, "include/linux/memcontrol.h")), "VM_BUG_ON_PAGE(!page_count(page), page);"); n != 2 {
		t.Errorf("%d VM_BUG_ON_PAGE lines added, want 2", n)
	}

	// ...and not to v4.11, which has no __mod_lruvec_page_state().
	dir = fromGit(t, v411Repo, v411, "include/linux/memcontrol.h")
	err = Apply(context.Background(), dir, ps)
	e, ok := err.(*Error)
	if !ok || e.File != "include/linux/memcontrol.h" || e.Hunk != "@@ -599,5 +599,6 @@" || !strings.Contains(e.Msg, `first mismatch at line 600: the patch expects "struct mem_cgroup_per_node *pn;"`) {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}

func TestBad(t *testing.T) {
	if _, err := Parse("x.txt", []byte("just a mail\nwithout a diff\n")); err == nil || !strings.Contains(err.Error(), "no diff found") {
		t.Errorf("no diff: %v", err)
	}
	if _, err := Parse("cut.diff", []byte("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n")); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: %v", err)
	}
	ps, _ := Load("testdata/plain.diff")
	err := Apply(context.Background(), t.TempDir(), ps)
	if e, ok := err.(*Error); !ok || e.File != "lines.txt" || !strings.Contains(e.Msg, "does not exist") {
		t.Errorf("missing file: %v", err)
	}
}
