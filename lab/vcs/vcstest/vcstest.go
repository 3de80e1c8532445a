// Package vcstest builds synthetic git repositories for tests: the one helper every test
// that needs a kernel-shaped history uses (lab/vcs, lab/kbuild, lab/kbuild/source, the
// bisection and validation drivers, and the CI history of `make ci-history`).
//
// Commits are made with a fixed author, committer and clock (one minute per commit from a
// fixed epoch), no hooks, no signing and no user configuration, so the same sequence of
// edits gives the same commit ids on every machine.
package vcstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// TB is the part of testing.TB the helper needs; a command can pass its own (Fatalf exits).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Epoch is the date of the first commit; each next commit is one minute later.
var Epoch = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

// Repo is a git repository with a work tree, written by one test.
type Repo struct {
	t   TB
	Dir string
	n   int // commits made, for the clock
}

// New makes an empty repository in dir (a fresh t.TempDir() when dir is "") on branch main.
func New(t TB, dir string) *Repo {
	t.Helper()
	if dir == "" {
		if tt, ok := t.(interface{ TempDir() string }); ok {
			dir = tt.TempDir()
		} else {
			t.Fatalf("vcstest.New: no directory given")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("vcstest: %v", err)
	}
	r := &Repo{t: t, Dir: dir}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Env is the environment every git call gets: fixed identity, no user or system config.
func (r *Repo) env() []string {
	d := Epoch.Add(time.Duration(r.n) * time.Minute).Format(time.RFC3339)
	return append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Repro Lab", "GIT_AUTHOR_EMAIL=lab@reprolab.invalid", "GIT_AUTHOR_DATE="+d,
		"GIT_COMMITTER_NAME=Repro Lab", "GIT_COMMITTER_EMAIL=lab@reprolab.invalid", "GIT_COMMITTER_DATE="+d,
		"LC_ALL=C", "GIT_PAGER=cat", "GIT_EDITOR=true")
}

// Open wraps an existing work tree (a repository made by New, or a worktree of one); the
// clock goes on from the number of commits HEAD has.
func Open(t TB, dir string) *Repo {
	t.Helper()
	r := &Repo{t: t, Dir: dir}
	// No HEAD yet (an empty repository, or a folder used only as a work tree): start at 0.
	if out, err := exec.Command("git", "-C", dir, "rev-list", "--count", "HEAD").Output(); err == nil {
		r.n, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	return r
}

// Git runs git in the work tree and returns its trimmed output; a failure is fatal.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return r.GitEnv(nil, args...)
}

// GitEnv is Git with extra environment variables (GIT_INDEX_FILE, GIT_WORK_TREE...).
func (r *Repo) GitEnv(env []string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false"}, args...)...)
	cmd.Dir = r.Dir
	cmd.Env = append(r.env(), env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("git %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// CopyTree copies the contents of src into the work tree (cp -a, keeping mtimes).
func (r *Repo) CopyTree(src string) {
	r.t.Helper()
	if out, err := exec.Command("cp", "-a", filepath.Clean(src)+"/.", r.Dir).CombinedOutput(); err != nil {
		r.t.Fatalf("copying %s: %v: %s", src, err, out)
	}
}

// Write writes a file of the work tree (creating folders).
func (r *Repo) Write(path, content string) {
	r.t.Helper()
	p := filepath.Join(r.Dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatalf("vcstest: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatalf("vcstest: %v", err)
	}
}

// Read returns a file of the work tree.
func (r *Repo) Read(path string) string {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.Dir, path))
	if err != nil {
		r.t.Fatalf("vcstest: %v", err)
	}
	return string(data)
}

// Edit replaces the one occurrence of old in path by new; a missing or repeated old is fatal
// (a synthetic history must say exactly what it changes).
func (r *Repo) Edit(path, old, new string) {
	r.t.Helper()
	s := r.Read(path)
	if n := strings.Count(s, old); n != 1 {
		r.t.Fatalf("vcstest: %s: %q occurs %d times, want once", path, old, n)
	}
	r.Write(path, strings.Replace(s, old, new, 1))
}

// Commit stages everything and commits it; it returns the new commit's hash.
func (r *Repo) Commit(subject string) string {
	r.t.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", subject)
	r.n++
	return r.Git("rev-parse", "HEAD")
}

// Tick advances the clock by one commit (for commits made with GitEnv's commit-tree).
func (r *Repo) Tick() { r.n++ }

// Tag tags HEAD.
func (r *Repo) Tag(name string) { r.t.Helper(); r.Git("tag", name) }

// Checkout switches the work tree to rev; with branch set, creates that branch there.
func (r *Repo) Checkout(rev, branch string) {
	r.t.Helper()
	if branch != "" {
		r.Git("checkout", "-q", "-b", branch, rev)
		return
	}
	r.Git("checkout", "-q", rev)
}

// Merge merges rev into the current branch with a merge commit and returns its hash.
func (r *Repo) Merge(rev, subject string) string {
	r.t.Helper()
	r.Git("merge", "-q", "--no-ff", "-m", subject, rev)
	r.n++
	return r.Git("rev-parse", "HEAD")
}

// Linear makes n commits on the current branch, commit i writing history/i.txt, and
// returns their hashes oldest first. When bad >= 0, commit bad also writes BUG and every
// later one keeps it: a property a predicate can look for.
func (r *Repo) Linear(n, bad int) []string {
	r.t.Helper()
	var hs []string
	for i := 0; i < n; i++ {
		r.Write(fmt.Sprintf("history/%03d.txt", i), fmt.Sprintf("commit %d\n", i))
		subj := fmt.Sprintf("history: commit %d", i)
		if i == bad {
			r.Write("BUG", "introduced\n")
			subj += " (introduces BUG)"
		}
		hs = append(hs, r.Commit(subj))
	}
	return hs
}

// KernelTree copies a kernel-shaped tree (a top-level Makefile with VERSION lines, Kconfig,
// scripts/kconfig) from src, commits it as "import" and tags it tag when set.
func KernelTree(t TB, src, tag string) *Repo {
	t.Helper()
	r := New(t, "")
	r.CopyTree(src)
	r.Commit("import " + filepath.Base(src))
	if tag != "" {
		r.Tag(tag)
	}
	return r
}
