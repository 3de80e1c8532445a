package vcs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/reprolab/reprolab/lab/fault"
)

// Checkout puts the kept work tree dir at rev. The first call makes dir a linked worktree
// of the repository (`git worktree add --detach`); later calls move it with `git checkout
// --force --detach`, which rewrites only the files that differ between the two commits (and
// any the caller edited), so every other file keeps its mtime and make's incremental build
// recompiles only what the move changed. Files the caller created are removed (`git clean`);
// ignored files stay. exclude are folders left out of the tree with a sparse checkout (a
// snapshot that lacks their objects still checks out); it is fixed when the tree is made.
//
// The repository's own work tree is never touched. It returns the paths that changed
// (nil for a new tree).
func (g *Git) Checkout(ctx context.Context, dir, rev string, exclude []string) ([]string, error) {
	h, err := g.Resolve(ctx, rev)
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fault.Inputf("work tree %s: %v", dir, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		if _, err := gitOut(ctx, dir, "rev-parse", "--git-common-dir"); err != nil && !fi.IsDir() {
			// A linked worktree whose registration is gone (the repository was made
			// again, or pruned): adopt the files instead of rewriting them all.
			return nil, g.adopt(ctx, dir, h)
		}
		return g.move(ctx, dir, h)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fault.Inputf("work tree %s exists and is not a git worktree: remove it or pick another folder", dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fault.Infraf("work tree %s: %v", dir, err)
	}
	os.Remove(dir)
	// A tree deleted by hand leaves a registration that blocks `worktree add` at its path.
	gitOut(ctx, g.dir, "worktree", "prune")
	if _, err := gitOut(ctx, g.dir, "worktree", "add", "--quiet", "--detach", "--no-checkout", dir, h); err != nil {
		return nil, fault.Infraf("git tree %s: worktree add %s: %w", g.dir, dir, err)
	}
	fail := func(err error) ([]string, error) {
		gitOut(ctx, g.dir, "worktree", "remove", "--force", dir)
		os.RemoveAll(dir)
		return nil, err
	}
	if len(exclude) > 0 {
		pats := []string{"sparse-checkout", "set", "--no-cone", "/*"}
		for _, e := range exclude {
			pats = append(pats, "!/"+strings.Trim(e, "/")+"/")
		}
		if _, err := gitOut(ctx, dir, pats...); err != nil {
			return fail(fault.Infraf("work tree %s: sparse checkout: %w", dir, err))
		}
	}
	if _, err := gitOut(ctx, dir, "read-tree", "--reset", "-u", h); err != nil {
		return fail(g.objectsError(dir, h, err))
	}
	return nil, nil
}

func (g *Git) move(ctx context.Context, dir, h string) ([]string, error) {
	common, err := gitOut(ctx, dir, "rev-parse", "--path-format=absolute", "--git-common-dir")
	if err != nil {
		return nil, fault.Inputf("work tree %s: not a usable git worktree: %v", dir, err)
	}
	mine, _ := gitOut(ctx, g.dir, "rev-parse", "--path-format=absolute", "--git-common-dir")
	if strings.TrimSpace(common) != strings.TrimSpace(mine) {
		return nil, fault.Inputf("work tree %s belongs to %s, not to %s", dir, strings.TrimSpace(common), g.dir)
	}
	old, _ := gitOut(ctx, dir, "rev-parse", "HEAD")
	var changed []string
	if o := strings.TrimSpace(old); o != "" && o != h {
		if changed, err = g.Changed(ctx, o, h); err != nil {
			return nil, err
		}
	}
	// A file whose mtime moved but whose content did not (touched, or restored by the
	// caller) would be rewritten by a forced checkout; refreshing the index first keeps it.
	gitOut(ctx, dir, "update-index", "-q", "--refresh")
	if _, err := gitOut(ctx, dir, "checkout", "--quiet", "--force", "--detach", h); err != nil {
		return nil, g.objectsError(dir, h, err)
	}
	if _, err := gitOut(ctx, dir, "clean", "-fdq"); err != nil {
		return nil, fault.Infraf("work tree %s: git clean: %w", dir, err)
	}
	return changed, nil
}

// adopt registers the existing folder dir as a new linked worktree at h without
// rewriting its files: the index is read from h and refreshed against the files, so the
// forced checkout after it rewrites only the files that differ from h and every other file
// keeps its mtime (an orphaned kept build tree stays incremental).
func (g *Git) adopt(ctx context.Context, dir, h string) error {
	parent, err := os.MkdirTemp(filepath.Dir(dir), ".adopt-")
	if err != nil {
		return fault.Infraf("work tree %s: %v", dir, err)
	}
	defer os.RemoveAll(parent)
	tmp := filepath.Join(parent, filepath.Base(dir))
	gitOut(ctx, g.dir, "worktree", "prune")
	if _, err := gitOut(ctx, g.dir, "worktree", "add", "--quiet", "--detach", "--no-checkout", tmp, h); err != nil {
		return fault.Infraf("git tree %s: registering work tree %s: %w", g.dir, dir, err)
	}
	link, err := os.ReadFile(filepath.Join(tmp, ".git"))
	if err != nil {
		return fault.Infraf("work tree %s: %v", dir, err)
	}
	admin := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(link)), "gitdir:"))
	if err := os.Rename(filepath.Join(tmp, ".git"), filepath.Join(dir, ".git")); err != nil {
		return fault.Infraf("work tree %s: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(admin, "gitdir"), []byte(filepath.Join(dir, ".git")+"\n"), 0o644); err != nil {
		return fault.Infraf("work tree %s: %v", dir, err)
	}
	if _, err := gitOut(ctx, dir, "read-tree", h); err != nil {
		return g.objectsError(dir, h, err)
	}
	gitOut(ctx, dir, "update-index", "-q", "--refresh") // exits 1 when files differ: expected
	if _, err := gitOut(ctx, dir, "checkout", "--quiet", "--force", "--detach", h); err != nil {
		return g.objectsError(dir, h, err)
	}
	if _, err := gitOut(ctx, dir, "clean", "-fdq"); err != nil {
		return fault.Infraf("work tree %s: git clean: %w", dir, err)
	}
	return nil
}

// objectsError names the usual cause of a failed checkout of a snapshot: missing blobs.
func (g *Git) objectsError(dir, h string, err error) error {
	if s := err.Error(); strings.Contains(s, "unable to read") || strings.Contains(s, "invalid object") || strings.Contains(s, "missing blob") {
		return fault.Inputf("git tree %s at %s: the repository lacks objects the checkout needs (leave their folder out with exclude): %w", g.dir, h, err)
	}
	return fault.Infraf("work tree %s: checkout %s: %w", dir, h, err)
}

// RemoveTree deletes a kept work tree and its registration in the repository.
func (g *Git) RemoveTree(ctx context.Context, dir string) error {
	gitOut(ctx, g.dir, "worktree", "remove", "--force", dir)
	if err := os.RemoveAll(dir); err != nil {
		return fault.Infraf("removing work tree %s: %v", dir, err)
	}
	gitOut(ctx, g.dir, "worktree", "prune")
	return nil
}

// Revert reverts rev in the kept work tree dir without committing (`git revert
// --no-commit`; a merge is reverted against its first parent). A revert that does not
// apply is bad input naming the conflicting files, and the tree is put back as it was.
// The next Checkout discards the revert.
func (g *Git) Revert(ctx context.Context, dir, rev string) error {
	c, err := g.Info(ctx, rev)
	if err != nil {
		return err
	}
	args := []string{"revert", "--no-commit", "--no-edit"}
	if len(c.Parents) > 1 {
		args = append(args, "-m", "1")
	}
	if _, err := gitOut(ctx, dir, append(args, c.Hash)...); err != nil {
		conflicts, _ := gitOut(ctx, dir, "diff", "--name-only", "--diff-filter=U")
		gitOut(ctx, dir, "revert", "--abort")
		gitOut(ctx, dir, "reset", "--quiet", "--hard", "HEAD")
		if files := strings.Fields(conflicts); len(files) > 0 {
			return fault.Inputf("reverting %s in %s: conflicts in %s", c, dir, strings.Join(files, ", "))
		}
		return fault.Infraf("reverting %s in %s: %w", c, dir, err)
	}
	return nil
}

// Archive writes the tree of rev into dest (an existing, empty folder) with `git archive`,
// leaving out exclude. A repository that lacks objects the archive needs (a partial clone,
// a snapshot without its largest files) is bad input naming the missing path and the
// exclude that avoids it.
func (g *Git) Archive(ctx context.Context, rev, dest string, exclude []string) error {
	h, err := g.Resolve(ctx, rev)
	if err != nil {
		return err
	}
	args := []string{"-C", g.dir, "archive", "--format=tar", h, "--", "."}
	for _, e := range exclude {
		args = append(args, ":(exclude)"+e)
	}
	archive := exec.CommandContext(ctx, "git", args...)
	untar := exec.CommandContext(ctx, "tar", "-C", dest, "-xf", "-")
	var ea, eb bytes.Buffer
	archive.Stderr, untar.Stderr = &ea, &eb
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return fault.Infraf("git archive: %v", err)
	}
	untar.Stdin = pipe
	if err := untar.Start(); err != nil {
		return fault.Infraf("tar: %v", err)
	}
	errA := archive.Run()
	errB := untar.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errA != nil {
		msg := strings.TrimSpace(ea.String())
		if !regexp.MustCompile(`unable to read|cannot read|invalid object`).MatchString(msg) {
			return fault.Infraf("git archive %s in %s: %v: %s", Short(h), g.dir, errA, msg)
		}
		missing := ""
		if m := regexp.MustCompile(`invalid object [0-7]+ [0-9a-f]+ for '([^']+)'`).FindStringSubmatch(msg); m != nil {
			missing = m[1]
		} else if m := regexp.MustCompile(`([0-9a-f]{40})`).FindStringSubmatch(msg); m != nil {
			if out, e := gitOut(ctx, g.dir, "ls-tree", "-r", h); e == nil {
				for _, l := range strings.Split(out, "\n") {
					if strings.Contains(l, m[1]) {
						_, missing, _ = strings.Cut(l, "\t")
					}
				}
			}
		}
		hint := ""
		if missing != "" {
			hint = fmt.Sprintf(" (missing object is %s; leave its folder out with `exclude: [%s]`)", missing, path.Dir(missing))
		}
		return fault.Inputf("git tree %s at %s: the repository lacks objects git archive needs%s: %s", g.dir, Short(h), hint, msg)
	}
	if errB != nil {
		return fault.Infraf("unpacking git archive into %s: %v: %s", dest, errB, strings.TrimSpace(eb.String()))
	}
	return nil
}
