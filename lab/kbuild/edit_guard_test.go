package kbuild

import (
	"context"
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
)

// editLab is a pristine minitree and a work tree hard-linked from it, as Build makes them.
func editLab(t *testing.T) (pristine, tree string) {
	t.Helper()
	cache := t.TempDir()
	pristine, tree = filepath.Join(cache, "pristine"), filepath.Join(cache, "tree")
	run(t, ".", "cp", "-a", "testdata/minitree", pristine)
	os.MkdirAll(tree, 0o755)
	run(t, ".", "cp", "-al", pristine, filepath.Join(tree, "src"))
	return pristine, tree
}

// A series whose last patch fails leaves the work tree as it was: the first patches'
// edits never reach it.
func TestFailedSeriesLeavesWorkTree(t *testing.T) {
	pristine, tree := editLab(t)
	series := "From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 1/3] a\n\n--- a/mm/writeback.c\n+++ b/mm/writeback.c\n@@ -1,3 +1,3 @@\n-/* A stand-in for mm/page-writeback.c: the shape of the seed bug's window. */\n+/* patched by 1/3 */\n int end_writeback(struct page *page)\n {\n" +
		"From 2 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 2/3] b\n\ndiff --git a/mm/new.c b/mm/new.c\nnew file mode 100644\n--- /dev/null\n+++ b/mm/new.c\n@@ -0,0 +1 @@\n+int added_by_2;\n" +
		"From 3 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 3/3] c\n\n--- a/mm/writeback.c\n+++ b/mm/writeback.c\n@@ -5,3 +5,3 @@\n \n-\tret = test_clear_writeback(page);\n+\tret = x(page);\n \tif (ret)\n"
	ps, err := patch.Parse("series.mbox", []byte(series))
	if err != nil || len(ps) != 3 {
		t.Fatalf("%d patches, %v", len(ps), err)
	}
	before := digestTree(t, filepath.Join(tree, "src"))
	b := &builder{version: kver.Version{Major: 4, Minor: 11}, patches: ps}
	_, _, err = b.edit(context.Background(), pristine, tree)
	if err == nil || !strings.Contains(err.Error(), "message 3") {
		t.Fatalf("got %v, want patch 3's error", err)
	}
	if after := digestTree(t, filepath.Join(tree, "src")); after != before {
		t.Errorf("the work tree changed although the series failed:\n%s\nwas\n%s", after, before)
	}
}

// A patch path that is fine as text but leads through a symlink in the tree to a file
// outside is refused before the work tree or the file outside is touched.
func TestEditRefusesSymlinkOut(t *testing.T) {
	pristine, tree := editLab(t)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim.c")
	os.WriteFile(victim, []byte("x\n"), 0o644)
	for _, root := range []string{pristine, filepath.Join(tree, "src")} {
		if err := os.Symlink(outside, filepath.Join(root, "mm", "out")); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := patch.Parse("link.diff", []byte("--- a/mm/out/victim.c\n+++ b/mm/out/victim.c\n@@ -1 +1 @@\n-x\n+y\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{version: kver.Version{Major: 4, Minor: 11}, patches: ps}
	_, _, err = b.edit(context.Background(), pristine, tree)
	if !fault.IsInput(err) || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("got %v, want bad input naming the symlink", err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "x\n" {
		t.Errorf("the file outside the tree was edited: %q", data)
	}
}

func digestTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			data, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			b.WriteString(rel + "\n" + string(data) + "\n")
		}
		return nil
	})
	return b.String()
}
