package kbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/kbuild/kconfig"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
	"github.com/reprolab/reprolab/lab/kbuild/probe"
	"github.com/reprolab/reprolab/lab/kbuild/treepath"
)

// state is what a tree remembers between builds.
type state struct {
	// Touched are the files that differ from the pristine tree.
	Touched []string `json:"touched"`
}

func (b *builder) buildTree(ctx context.Context, pristine, tree, out, key string) (*Result, error) {
	src, obj := filepath.Join(tree, "src"), filepath.Join(tree, "obj")
	t := time.Now()
	var edited map[string]editedFile
	if b.spec.Tree != "" {
		edited = snapshotEdited(tree)
		if err := b.relink(pristine, tree); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(src); err != nil {
		// Hard links: a tree costs inodes, not 1 GiB. Edits replace files
		// (rename), so the pristine copy is never written through a link.
		b.prog.phase("source", "linking work tree")
		os.RemoveAll(src + ".tmp")
		if err := os.MkdirAll(tree, 0o755); err != nil {
			return nil, err
		}
		if out, err := exec.CommandContext(ctx, "cp", "-al", pristine, src+".tmp").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copying %s: %v: %s", pristine, err, out)
		}
		if err := os.Rename(src+".tmp", src); err != nil {
			return nil, err
		}
	}
	b.phase("source", t)

	t = time.Now()
	b.prog.phase("patch", "")
	changed, touched, err := b.edit(ctx, pristine, tree)
	if err != nil {
		return nil, err
	}
	changed -= restoreEdited(src, edited)
	b.phase("patch", t)

	t = time.Now()
	b.prog.phase("config", "")
	if err := b.configure(ctx, src, obj); err != nil {
		return nil, err
	}
	b.phase("config", t)
	if b.spec.ConfigOnly {
		r := b.result(out, key, 0)
		r.Config = filepath.Join(obj, ".config")
		return r, nil
	}

	t = time.Now()
	logPath := filepath.Join(tree, "build.log")
	compiled := 0
	// One kernel build at a time per cache: the 2 cores are shared.
	err = withLockNote(ctx, filepath.Join(b.spec.CacheDir, "kbuild", "make.lock"), func() { b.prog.phase("waiting", "another kernel build is running") }, func() error {
		b.prog.phase("compile", fmt.Sprintf("%d edited file(s) since this tree's last build", changed))
		var err error
		compiled, err = b.make(ctx, src, obj, logPath, touched)
		return err
	})
	b.phase("build", t)
	if err != nil {
		return nil, err
	}

	t = time.Now()
	b.prog.phase("artifacts", out)
	r, err := b.collect(pristine, tree, out, key, logPath, touched, compiled)
	b.phase("artifacts", t)
	return r, err
}

// relink makes a kept tree's src the hard-linked image of the caller's dir again when
// the dir moved to another commit: unchanged files keep their mtimes (the caller's
// checkout does not rewrite them), so make in obj rebuilds only what changed.
func (b *builder) relink(pristine, tree string) error {
	mark := filepath.Join(tree, "source-id")
	if have, err := os.ReadFile(mark); err == nil && string(have) == b.src.ID {
		return nil
	}
	b.prog.phase("source", "relinking kept tree "+b.spec.Tree)
	src := filepath.Join(tree, "src")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(src + ".tmp"); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-al", pristine, src+".tmp").CombinedOutput(); err != nil {
		return fmt.Errorf("linking %s: %v: %s", pristine, err, out)
	}
	// A linked worktree's .git file would make the kernel's setlocalversion ask git.
	if err := os.RemoveAll(filepath.Join(src+".tmp", ".git")); err != nil {
		return err
	}
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	if err := os.Rename(src+".tmp", src); err != nil {
		return err
	}
	// The edits of the last build were made to the old src; there are none now.
	if err := os.RemoveAll(filepath.Join(tree, "state.json")); err != nil {
		return err
	}
	return os.WriteFile(mark, []byte(b.src.ID), 0o644)
}

// editedFile is a file the last build of a kept tree had edited (probe, patch, compat fix).
type editedFile struct {
	sum   [32]byte
	mtime time.Time
}

// snapshotEdited remembers the content and mtime of the files the last build edited,
// before relink puts the moved commit's pristine files in their place.
func snapshotEdited(tree string) map[string]editedFile {
	var st state
	if data, err := os.ReadFile(filepath.Join(tree, "state.json")); err != nil || json.Unmarshal(data, &st) != nil {
		return nil
	}
	m := map[string]editedFile{}
	for _, p := range st.Touched {
		f := filepath.Join(tree, "src", p)
		data, err := os.ReadFile(f)
		fi, err2 := os.Stat(f)
		if err == nil && err2 == nil {
			m[p] = editedFile{sha256.Sum256(data), fi.ModTime()}
		}
	}
	return m
}

// restoreEdited gives a re-edited file its old mtime back when its content is what the
// last build compiled: relink and edit rewrote it (the probe's file at every bisection
// step), but make must not recompile what did not change. It returns how many it restored.
func restoreEdited(src string, m map[string]editedFile) int {
	n := 0
	for p, e := range m {
		f := filepath.Join(src, p)
		if data, err := os.ReadFile(f); err == nil && sha256.Sum256(data) == e.sum {
			if fi, err := os.Stat(f); err == nil && !fi.ModTime().Equal(e.mtime) && os.Chtimes(f, e.mtime, e.mtime) == nil {
				n++
			}
		}
	}
	return n
}

// edit brings the work tree to pristine + compat fixes + patches + probes,
// writing only files whose content differs from what the tree holds now.
func (b *builder) edit(ctx context.Context, pristine, tree string) (changed int, touched []string, err error) {
	src := filepath.Join(tree, "src")
	var st state
	if data, err := os.ReadFile(filepath.Join(tree, "state.json")); err == nil {
		json.Unmarshal(data, &st)
	}
	paths := map[string]bool{}
	for _, p := range st.Touched {
		paths[p] = true
	}
	for _, f := range b.fixes {
		paths[f.File] = true
	}
	for _, p := range b.patches {
		for _, f := range p.Paths() {
			paths[f] = true
		}
	}
	pp, err := probe.Paths(b.probes, b.version)
	if err != nil {
		return 0, nil, err
	}
	for _, p := range pp {
		paths[p] = true
	}

	stage := filepath.Join(tree, "stage")
	os.RemoveAll(stage)
	defer os.RemoveAll(stage)
	// Patch and probe paths are user input: each must stay inside the trees it is read
	// from and written to, symlinks followed (lab/kbuild/treepath).
	for _, p := range sortedKeys(paths) {
		for _, root := range []string{pristine, src} {
			if _, err := treepath.Resolve(root, p); err != nil {
				return 0, nil, fault.AsInput(err)
			}
		}
	}
	for p := range paths {
		data, err := os.ReadFile(filepath.Join(pristine, p))
		if err != nil {
			continue // created by a patch or a probe
		}
		if err := writeFile(filepath.Join(stage, p), data); err != nil {
			return 0, nil, err
		}
	}
	os.MkdirAll(stage, 0o755)
	b.applied = nil
	for _, f := range b.fixes {
		p := filepath.Join(stage, f.File)
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if fixed, ok := f.Edit(data); ok {
			if err := writeFile(p, fixed); err != nil {
				return 0, nil, err
			}
			b.applied = append(b.applied, f)
		}
	}
	if err := patch.Apply(ctx, stage, b.patches); err != nil {
		return 0, nil, err
	}
	b.sites, b.params, err = probe.Apply(stage, b.version, b.probes)
	if err != nil {
		return 0, nil, err
	}
	filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(stage, p)
			paths[rel] = true
		}
		return nil
	})

	for _, p := range sortedKeys(paths) {
		want, wErr := os.ReadFile(filepath.Join(stage, p))
		orig, oErr := os.ReadFile(filepath.Join(pristine, p))
		if (wErr == nil) != (oErr == nil) || !bytes.Equal(want, orig) {
			touched = append(touched, p)
		}
		have, hErr := os.ReadFile(filepath.Join(src, p))
		switch {
		case wErr != nil && hErr == nil:
			if err := os.Remove(filepath.Join(src, p)); err != nil {
				return 0, nil, err
			}
			changed++
		case wErr == nil && (hErr != nil || !bytes.Equal(want, have)):
			if err := writeFile(filepath.Join(src, p), want); err != nil {
				return 0, nil, err
			}
			changed++
		}
	}
	data, _ := json.Marshal(state{Touched: touched})
	return changed, touched, writeFile(filepath.Join(tree, "state.json"), data)
}

// writeFile replaces path atomically with a new inode (never writing
// through a hard link into the pristine tree) and a fresh mtime.
func writeFile(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	return atomicfile.Write(path, data, mode)
}

func (b *builder) makeArgs(src, obj string, targets ...string) []string {
	args := []string{"-C", src, "O=" + obj, "ARCH=" + b.ai.make}
	if b.ai.cross != "" {
		args = append(args, "CROSS_COMPILE="+b.ai.cross)
	}
	if b.ccache != "" {
		args = append(args, "CC="+b.ccache+" "+b.ai.cross+"gcc")
	}
	return append(args, targets...)
}

// configure makes the base config, merges the fragments, runs olddefconfig
// once per tree, and verifies the result on every build.
func (b *builder) configure(ctx context.Context, src, obj string) error {
	done := filepath.Join(obj, ".reprolab-config-done")
	cfgPath := filepath.Join(obj, ".config")
	if _, err := os.Stat(done); err != nil {
		if err := os.MkdirAll(obj, 0o755); err != nil {
			return err
		}
		if out, err := b.quietMake(ctx, src, obj, b.spec.Base); err != nil {
			return fmt.Errorf("make %s: %v\n%s", b.spec.Base, err, tail(out, 20))
		}
		base, err := os.ReadFile(cfgPath)
		if err != nil {
			return err
		}
		sib, err := kconfig.ChoiceSiblings(b.options, src, b.ai.karch)
		if err != nil {
			return fmt.Errorf("reading Kconfig: %w", err)
		}
		merged := kconfig.Merge(base, append(append([]kconfig.Option{}, b.options...), sib...))
		if err := os.WriteFile(filepath.Join(obj, "reprolab-merged.config"), merged, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(cfgPath, merged, 0o644); err != nil {
			return err
		}
		if out, err := b.quietMake(ctx, src, obj, "olddefconfig"); err != nil {
			return fmt.Errorf("make olddefconfig: %v\n%s", err, tail(out, 20))
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	dropped, err := kconfig.Verify(b.options, kconfig.ParseConfig(data), src, b.ai.karch)
	b.warnings = nil
	for _, d := range dropped {
		b.warnings = append(b.warnings, "optional option dropped: "+d.String())
	}
	return err
}

func (b *builder) quietMake(ctx context.Context, src, obj string, targets ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "make", b.makeArgs(src, obj, targets...)...)
	cmd.Env = b.makeEnv()
	return cmd.CombinedOutput()
}

func (b *builder) makeEnv() []string {
	// Fixed user and host keep `uname -v` and the cache free of who built it.
	env := append(os.Environ(), "KBUILD_BUILD_USER=reprolab", "KBUILD_BUILD_HOST=reprolab", "LC_ALL=C")
	if b.ccache != "" {
		// Paths under the trees' folder are hashed relative to the build directory, so
		// identical sources in two trees hit (useCcache).
		env = append(env, "CCACHE_BASEDIR="+b.ccacheBase, "CCACHE_NOHASHDIR=true")
	}
	return env
}

func tail(b []byte, n int) string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
