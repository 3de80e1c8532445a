// Package vcs is the git operations every use of the lab needs — resolving a ref, listing
// the commits between two revisions, reading a commit's kernel version, moving a kept work
// tree between commits, fetching, reverting — and a bisection driver over them.
//
// It runs the git CLI rather than go-git. Kernel repositories are huge (a full clone is
// millions of objects and ~1,000,000 commits): go-git walks them in Go with no commit-graph
// or bitmap support and is many times slower at rev-list/merge-base, it cannot add linked
// worktrees or sparse checkouts (needed to move one kept build tree between commits and to
// leave out folders a snapshot lacks), and the CLI is what kernel developers already have,
// with their clones, alternates, partial-clone promisors and credentials configured for it.
// Every call is one `git -C DIR ...` process; nothing here parses git's files itself.
//
// Errors are classified with lab/fault: an unknown revision, a directory that is not a git
// tree, good == bad or a good that is not an ancestor of bad are fault.Input (exit 2); a git
// that fails for any other reason is fault.Infra.
package vcs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild/kver"
)

// Commit is what the lab records about a commit.
type Commit struct {
	Hash    string    `json:"hash"`
	Subject string    `json:"subject"`
	Author  string    `json:"author"` // "Name <email>"
	Date    time.Time `json:"date"`   // author date
	Parents []string  `json:"parents,omitempty"`
	// Version is VERSION.PATCHLEVEL.SUBLEVEL of the top-level Makefile at this commit;
	// filled by Info (not by Commits: reading a blob per commit of a long range is slow).
	// Zero when the commit has no parseable Makefile.
	Version kver.Version `json:"version"`
}

// Short is the first 12 hex digits of the hash.
func (c Commit) Short() string {
	if len(c.Hash) > 12 {
		return c.Hash[:12]
	}
	return c.Hash
}

// String is "hash12 subject", as `git log --oneline` prints it.
func (c Commit) String() string { return c.Short() + " " + c.Subject }

// History is what Bisect needs of a repository. *Git implements it; a simulation can
// implement it over a synthetic history.
type History interface {
	// Resolve turns a revision (hash, tag, branch, HEAD~3) into a full commit hash.
	Resolve(ctx context.Context, rev string) (string, error)
	// Commits lists from..to (reachable from to, not from from), oldest first.
	Commits(ctx context.Context, from, to string, firstParent bool) ([]Commit, error)
	// IsAncestor reports whether a is an ancestor of b (a commit is its own ancestor).
	IsAncestor(ctx context.Context, a, b string) (bool, error)
	// Info describes one commit, with its kernel version.
	Info(ctx context.Context, rev string) (Commit, error)
}

// Git is a repository driven through the git CLI.
type Git struct {
	dir string
}

var _ History = (*Git)(nil)

// Open checks that dir is a git repository (bare or not). A missing directory or one that
// is not a git tree is bad input.
func Open(ctx context.Context, dir string) (*Git, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fault.Inputf("git tree %s: %v", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fault.Inputf("git tree %s: no such directory (give the path of a kernel git clone)", dir)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fault.Infraf("git is not installed (apt-get install git)")
	}
	out, err := gitOut(ctx, abs, "rev-parse", "--is-bare-repository")
	if err != nil {
		return nil, fault.Inputf("git tree %s: not a git repository (run `git init` there, or point at a kernel clone)", dir)
	}
	g := &Git{dir: abs}
	if strings.TrimSpace(out) == "false" {
		// A path inside a work tree: use its top so relative paths mean the same everywhere.
		if top, err := gitOut(ctx, abs, "rev-parse", "--show-toplevel"); err == nil {
			g.dir = strings.TrimSpace(top)
		}
	}
	return g, nil
}

// Dir is the repository's directory (the work tree's top, or the bare repository).
func (g *Git) Dir() string { return g.dir }

// Resolve turns rev into a full commit hash; an unknown revision is bad input.
func (g *Git) Resolve(ctx context.Context, rev string) (string, error) {
	if rev == "" {
		return "", fault.Inputf("git tree %s: empty revision", g.dir)
	}
	if strings.HasPrefix(rev, "-") {
		return "", fault.Inputf("git tree %s: revision %q must not start with '-'", g.dir, rev)
	}
	out, err := gitOut(ctx, g.dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fault.Inputf("git tree %s: unknown revision %q (try `git -C %s log --oneline` or `git -C %s tag`)", g.dir, rev, g.dir, g.dir)
	}
	return strings.TrimSpace(out), nil
}

// logFormat is one commit per record: fields split by US, records by RS.
const logFormat = "--format=%H%x1f%P%x1f%an <%ae>%x1f%aI%x1f%s%x1e"

func parseLog(out string) ([]Commit, error) {
	var cs []Commit
	for _, rec := range strings.Split(out, "\x1e") {
		rec = strings.TrimLeft(rec, "\n")
		if rec == "" {
			continue
		}
		f := strings.Split(rec, "\x1f")
		if len(f) != 5 {
			return nil, fault.Infraf("git log: unexpected record %q", rec)
		}
		d, err := time.Parse(time.RFC3339, f[3])
		if err != nil {
			return nil, fault.Infraf("git log: date %q: %v", f[3], err)
		}
		cs = append(cs, Commit{Hash: f[0], Parents: strings.Fields(f[1]), Author: f[2], Date: d, Subject: f[4]})
	}
	return cs, nil
}

// Commits lists from..to, oldest first: the commits reachable from to and not from from.
// With firstParent only the first-parent line is followed (a merged branch is its merge
// commit), which is what a bisection of a maintainer's tree steps through.
func (g *Git) Commits(ctx context.Context, from, to string, firstParent bool) ([]Commit, error) {
	f, err := g.Resolve(ctx, from)
	if err != nil {
		return nil, err
	}
	t, err := g.Resolve(ctx, to)
	if err != nil {
		return nil, err
	}
	args := []string{"log", "--reverse", logFormat}
	if firstParent {
		args = append(args, "--first-parent")
	}
	out, err := gitOut(ctx, g.dir, append(args, f+".."+t, "--")...)
	if err != nil {
		return nil, fault.Infraf("git tree %s: listing %s..%s: %w", g.dir, from, to, err)
	}
	return parseLog(out)
}

// IsAncestor reports whether a is an ancestor of b; a commit is its own ancestor.
func (g *Git) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	ha, err := g.Resolve(ctx, a)
	if err != nil {
		return false, err
	}
	hb, err := g.Resolve(ctx, b)
	if err != nil {
		return false, err
	}
	_, err = gitOut(ctx, g.dir, "merge-base", "--is-ancestor", ha, hb)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false, nil
	}
	return false, fault.Infraf("git tree %s: merge-base --is-ancestor %s %s: %w", g.dir, a, b, err)
}

// MergeBase is the best common ancestor of a and b.
func (g *Git) MergeBase(ctx context.Context, a, b string) (string, error) {
	out, err := gitOut(ctx, g.dir, "merge-base", "--end-of-options", a, b)
	if err != nil {
		return "", fault.Infraf("git tree %s: merge-base %s %s: %w", g.dir, a, b, err)
	}
	return strings.TrimSpace(out), nil
}

// Info describes rev, with the kernel version of its top-level Makefile (zero when the
// commit has none: a synthetic or non-kernel tree).
func (g *Git) Info(ctx context.Context, rev string) (Commit, error) {
	h, err := g.Resolve(ctx, rev)
	if err != nil {
		return Commit{}, err
	}
	out, err := gitOut(ctx, g.dir, "log", "-1", logFormat, h, "--")
	if err != nil {
		return Commit{}, fault.Infraf("git tree %s: reading commit %s: %w", g.dir, rev, err)
	}
	cs, err := parseLog(out)
	if err != nil || len(cs) != 1 {
		return Commit{}, fault.Infraf("git tree %s: reading commit %s: %v", g.dir, rev, err)
	}
	c := cs[0]
	if mk, err := gitOut(ctx, g.dir, "show", h+":Makefile"); err == nil {
		if v, err := kver.FromMakefile([]byte(mk)); err == nil {
			c.Version = v
		}
	}
	return c, nil
}

// Show is the content of path at rev (`git show REV:PATH`); a missing path is os.ErrNotExist.
func (g *Git) Show(ctx context.Context, rev, path string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", g.dir, "show", rev+":"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "does not exist") || strings.Contains(stderr.String(), "exists on disk, but not in") {
			return nil, fmt.Errorf("%s at %s: %w", path, rev, os.ErrNotExist)
		}
		return nil, fault.Infraf("git show %s:%s: %v: %s", rev, path, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Changed lists the paths that differ between two commits.
func (g *Git) Changed(ctx context.Context, from, to string) ([]string, error) {
	out, err := gitOut(ctx, g.dir, "diff", "--name-only", "--no-renames", "-z", from, to, "--")
	if err != nil {
		return nil, fault.Infraf("git tree %s: diff %s %s: %w", g.dir, from, to, err)
	}
	var paths []string
	for _, p := range strings.Split(out, "\x00") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths, nil
}

// Fetch runs `git fetch` of remote (a configured remote's name, a URL or a path) with the
// given refspecs (none: the remote's configured ones). A local path that does not exist is
// bad input; any other failure (network, server) is infrastructure.
func (g *Git) Fetch(ctx context.Context, remote string, refspecs ...string) error {
	if strings.HasPrefix(remote, "/") || strings.HasPrefix(remote, ".") {
		if _, err := os.Stat(remote); err != nil {
			return fault.Inputf("git fetch %s: no such repository path", remote)
		}
	}
	args := append([]string{"fetch", "--quiet", "--no-tags", "--end-of-options", remote}, refspecs...)
	if _, err := gitOut(ctx, g.dir, args...); err != nil {
		return fault.Infraf("git tree %s: fetch %s %s: %w", g.dir, remote, strings.Join(refspecs, " "), err)
	}
	return nil
}

// ReversePatch is the diff that reverts rev against its first parent, as a unified diff
// a patch applier (lab/kbuild/patch) accepts: a revert to build without touching history.
func (g *Git) ReversePatch(ctx context.Context, rev string) ([]byte, error) {
	c, err := g.Info(ctx, rev)
	if err != nil {
		return nil, err
	}
	if len(c.Parents) == 0 {
		return nil, fault.Inputf("git tree %s: %s is a root commit: there is nothing to revert it to", g.dir, c.Short())
	}
	out, err := gitOut(ctx, g.dir, "diff", "--no-color", "--no-ext-diff", "--full-index", c.Hash, c.Parents[0], "--")
	if err != nil {
		return nil, fault.Infraf("git tree %s: diff for reverting %s: %w", g.dir, c.Short(), err)
	}
	hdr := fmt.Sprintf("From %s Mon Sep 17 00:00:00 2001\nFrom: reprolab <reprolab@localhost>\nSubject: [PATCH] Revert \"%s\"\n\nThis reverts commit %s.\n---\n", c.Hash, c.Subject, c.Hash)
	return append([]byte(hdr), out...), nil
}

// gitOut runs git -C dir args... and returns stdout; a failure carries git's stderr.
func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	// A user's pager, editor or locale must not change what we parse or block a run.
	cmd.Env = append(os.Environ(), "GIT_PAGER=cat", "GIT_EDITOR=true", "LC_ALL=C", "GIT_TERMINAL_PROMPT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 && len(msg) > 2000 {
			msg = msg[i+1:]
		}
		return stdout.String(), &gitError{args: args, err: err, stderr: msg}
	}
	return stdout.String(), nil
}

type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string {
	s := "git " + strings.Join(e.args, " ") + ": " + e.err.Error()
	if e.stderr != "" {
		s += ": " + e.stderr
	}
	return s
}

func (e *gitError) Unwrap() error { return e.err }
