package vcs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild/kver"
	"github.com/reprolab/reprolab/lab/vcs"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

func testdata(t *testing.T, name string) string {
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// kernelRepo: import at 4.11 (tag v4.11), 5 commits, a version bump to 4.12-rc1, 2 more.
func kernelRepo(t *testing.T) (*vcstest.Repo, []string) {
	r := vcstest.New(t, "")
	r.Write("Makefile", testdata(t, "Makefile.4.11"))
	hs := []string{r.Commit("import v4.11")}
	r.Tag("v4.11")
	hs = append(hs, r.Linear(5, -1)...)
	r.Write("Makefile", testdata(t, "Makefile.4.12"))
	hs = append(hs, r.Commit("Linux 4.12-rc1"))
	r.Write("later.txt", "x\n")
	hs = append(hs, r.Commit("later"))
	return r, hs
}

func TestResolveAndInfo(t *testing.T) {
	ctx := context.Background()
	r, hs := kernelRepo(t)
	g, err := vcs.Open(ctx, filepath.Join(r.Dir, "history")) // a subfolder opens its top
	if err != nil {
		t.Fatal(err)
	}
	if g.Dir() != r.Dir {
		t.Errorf("Dir %s, want %s", g.Dir(), r.Dir)
	}
	for _, tc := range []struct {
		rev, want string
		ver       kver.Version
	}{
		{"v4.11", hs[0], kver.Version{Major: 4, Minor: 11}},
		{"HEAD~1", hs[6], kver.Version{Major: 4, Minor: 12}},
		{hs[3][:10], hs[3], kver.Version{Major: 4, Minor: 11}},
		{"main", hs[7], kver.Version{Major: 4, Minor: 12}},
	} {
		h, err := g.Resolve(ctx, tc.rev)
		if err != nil || h != tc.want {
			t.Errorf("Resolve(%s) = %s, %v; want %s", tc.rev, h, err, tc.want)
		}
		c, err := g.Info(ctx, tc.rev)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash != tc.want || c.Version != tc.ver || c.Author != "Repro Lab <lab@reprolab.invalid>" || c.Date.IsZero() {
			t.Errorf("Info(%s) = %+v", tc.rev, c)
		}
	}
	c, _ := g.Info(ctx, "v4.11")
	if !c.Date.Equal(vcstest.Epoch) || c.Subject != "import v4.11" || len(c.Parents) != 0 {
		t.Errorf("first commit %+v, want date %s", c, vcstest.Epoch.Format(time.RFC3339))
	}
}

// Every bad input is fault.Input (exit 2) with a message naming the thing.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	r, hs := kernelRepo(t)
	g, err := vcs.Open(ctx, r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	notGit := t.TempDir()
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"not a git tree", func() error { _, err := vcs.Open(ctx, notGit); return err }, "not a git repository"},
		{"missing dir", func() error { _, err := vcs.Open(ctx, notGit+"/nope"); return err }, "no such directory"},
		{"unknown rev", func() error { _, err := g.Resolve(ctx, "v9.99"); return err }, `unknown revision "v9.99"`},
		{"option as rev", func() error { _, err := g.Resolve(ctx, "--all"); return err }, "must not start with '-'"},
		{"unknown rev in range", func() error { _, err := g.Commits(ctx, "v4.11", "nope", true); return err }, `unknown revision "nope"`},
		{"good == bad", func() error { _, err := vcs.Bisect(ctx, g, "v4.11", hs[0], nil); return err }, "are the same commit"},
		{"good not ancestor", func() error { _, err := vcs.Bisect(ctx, g, hs[5], hs[2], nil); return err }, "is not an ancestor of bad"},
		{"fetch missing path", func() error { return g.Fetch(ctx, "/nonexistent/repo") }, "no such repository path"},
		{"revert root", func() error { _, err := g.ReversePatch(ctx, hs[0]); return err }, "root commit"},
	} {
		err := tc.err()
		if !fault.IsInput(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (kind %v), want input error with %q", tc.name, err, fault.KindOf(err), tc.want)
		}
		if fault.ExitCode(err) != fault.ExitInput {
			t.Errorf("%s: exit %d", tc.name, fault.ExitCode(err))
		}
	}
}

func TestCommits(t *testing.T) {
	ctx := context.Background()
	r, hs := kernelRepo(t)
	// A side branch from hs[2] with two commits, merged after hs[7].
	r.Checkout(hs[2], "side")
	s1 := r.Linear(2, -1)
	r.Checkout("main", "")
	m := r.Merge("side", "Merge branch side")
	g, _ := vcs.Open(ctx, r.Dir)
	fp, err := g.Commits(ctx, "v4.11", "main", true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hashes(fp), append(append([]string{}, hs[1:]...), m); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("first-parent %v, want %v", got, want)
	}
	all, _ := g.Commits(ctx, "v4.11", "main", false)
	if len(all) != len(fp)+2 || all[len(all)-1].Hash != m || !contains(hashes(all), s1[0]) || !contains(hashes(all), s1[1]) {
		t.Errorf("full %v", hashes(all))
	}
	// Oldest first: every commit comes after its parents.
	seen := map[string]bool{hs[0]: true}
	for _, c := range all {
		for _, p := range c.Parents {
			if !seen[p] {
				t.Errorf("%s listed before its parent %s", c.Short(), p[:12])
			}
		}
		seen[c.Hash] = true
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{{hs[0], m, true}, {s1[0], m, true}, {s1[0], hs[7], false}, {m, hs[0], false}, {hs[3], hs[3], true}} {
		if got, err := g.IsAncestor(ctx, tc.a, tc.b); err != nil || got != tc.want {
			t.Errorf("IsAncestor(%s, %s) = %v, %v", tc.a[:8], tc.b[:8], got, err)
		}
	}
}

// A kept tree moved between commits rewrites only the files that changed: the others
// keep their mtimes (what make's incremental build relies on).
func TestCheckoutKeepsMtimes(t *testing.T) {
	ctx := context.Background()
	r, hs := kernelRepo(t)
	g, _ := vcs.Open(ctx, r.Dir)
	tree := filepath.Join(t.TempDir(), "kept")
	if _, err := g.Checkout(ctx, tree, hs[1], nil); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{"Makefile", "history/000.txt"} {
		os.Chtimes(filepath.Join(tree, p), old, old)
	}
	// The caller's edits and new files are discarded by the next move.
	os.WriteFile(filepath.Join(tree, "history/000.txt"), []byte("edited\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "created.c"), []byte("x\n"), 0o644)
	changed, err := g.Checkout(ctx, tree, hs[6], nil)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(changed, "Makefile") || !contains(changed, "history/004.txt") || contains(changed, "history/000.txt") {
		t.Errorf("changed %v", changed)
	}
	mt := func(p string) time.Time { fi, _ := os.Stat(filepath.Join(tree, p)); return fi.ModTime() }
	if mt("Makefile").Equal(old) {
		t.Error("Makefile changed between the commits but kept its old mtime")
	}
	if data, _ := os.ReadFile(filepath.Join(tree, "history/000.txt")); string(data) != "commit 0\n" {
		t.Errorf("edit not discarded: %q", data)
	}
	if _, err := os.Stat(filepath.Join(tree, "created.c")); err == nil {
		t.Error("created file not cleaned")
	}
	os.Chtimes(filepath.Join(tree, "history/001.txt"), old, old)
	if _, err := g.Checkout(ctx, tree, hs[7], nil); err != nil {
		t.Fatal(err)
	}
	if !mt("history/001.txt").Equal(old) {
		t.Error("unchanged file rewritten by the move")
	}
	if st := r.Git("status", "--porcelain"); st != "" {
		t.Errorf("the repository's own work tree changed: %s", st)
	}
	// Revert in the kept tree, then the next move discards it.
	if err := g.Revert(ctx, tree, hs[7]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tree, "later.txt")); err == nil {
		t.Error("revert left later.txt")
	}
	if _, err := g.Checkout(ctx, tree, hs[7], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tree, "later.txt")); err != nil {
		t.Error("checkout did not undo the revert")
	}
	// Sparse: an excluded folder is not checked out.
	sparse := filepath.Join(t.TempDir(), "sparse")
	if _, err := g.Checkout(ctx, sparse, hs[7], []string{"history"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sparse, "history")); err == nil {
		t.Error("excluded folder checked out")
	}
	if _, err := os.Stat(filepath.Join(sparse, "Makefile")); err != nil {
		t.Error("sparse tree lacks Makefile")
	}
	if err := g.RemoveTree(ctx, sparse); err != nil {
		t.Fatal(err)
	}
	// The repository lost the tree's registration (made again, or pruned): the tree is
	// adopted, files that did not change keep their mtimes.
	if err := os.RemoveAll(filepath.Join(r.Dir, ".git", "worktrees", "kept")); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(tree, "history/001.txt"), old, old)
	os.WriteFile(filepath.Join(tree, "Makefile"), []byte("stale\n"), 0o644)
	if _, err := g.Checkout(ctx, tree, hs[6], nil); err != nil {
		t.Fatal(err)
	}
	if !mt("history/001.txt").Equal(old) {
		t.Error("adopting an orphaned tree rewrote an unchanged file")
	}
	if data, _ := os.ReadFile(filepath.Join(tree, "Makefile")); string(data) != testdata(t, "Makefile.4.12") {
		t.Errorf("adopted tree's Makefile %q", data)
	}
	if _, err := os.Stat(filepath.Join(tree, "later.txt")); err == nil {
		t.Error("adopted tree kept a file hs[6] does not have")
	}
	if h := r.Git("-C", tree, "rev-parse", "HEAD"); h != hs[6] {
		t.Errorf("adopted tree at %s", h)
	}
	// A folder that is not a worktree is refused, not overwritten.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "mine"), nil, 0o644)
	if _, err := g.Checkout(ctx, other, hs[7], nil); !fault.IsInput(err) {
		t.Errorf("non-worktree folder: %v", err)
	}
}

func TestFetchAndReversePatch(t *testing.T) {
	ctx := context.Background()
	up, hs := kernelRepo(t)
	down := vcstest.New(t, "")
	g, _ := vcs.Open(ctx, down.Dir)
	if err := g.Fetch(ctx, up.Dir, "main:refs/remotes/up/main"); err != nil {
		t.Fatal(err)
	}
	if h, err := g.Resolve(ctx, "up/main"); err != nil || h != hs[7] {
		t.Errorf("fetched up/main = %s, %v", h, err)
	}
	p, err := g.ReversePatch(ctx, hs[7])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p), "Subject: [PATCH] Revert \"later\"") || !strings.Contains(string(p), "-x") || !strings.Contains(string(p), "+++ /dev/null") {
		t.Errorf("reverse patch:\n%s", p)
	}
}

func hashes(cs []vcs.Commit) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Hash)
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
