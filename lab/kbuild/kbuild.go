// Package kbuild builds Linux kernels for reproduction runs: one call takes a
// source (git ref, directory, tarball, Debian's linux-source), config
// fragments, patches and delay probes, and returns a boot image, vmlinux,
// System.map and .config, cached by the hash of everything that decides the
// result.
//
// Honesty about what is in the kernel is the point: every option a fragment
// asks for is checked in the final .config, every patch, probe and old-kernel
// compat fix is recorded in metadata.json and in applied.patch (the diff of
// the built tree against the pristine source).
//
// Cache layout under CacheDir/kbuild:
//
//	src/<source-id>/      pristine extracted tree, shared by all builds of that source
//	tree/<tree-key>/src/  hard-linked copy of the pristine tree with the edits applied
//	tree/<tree-key>/obj/  make O= output; kept, so a changed probe rebuilds incrementally
//	out/<build-key>/      artifacts + metadata.json; present = cache hit, no make at all
//
// tree-key = hash(source, arch, compiler, config inputs); build-key adds the
// patches, probes and compat fixes. Edits are written with rename, so the
// pristine tree's hard-linked files are never modified, and only files whose
// content changes get a new mtime — make recompiles exactly what depends on them.
package kbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/reprolab/reprolab/lab/kbuild/kconfig"
	"github.com/reprolab/reprolab/lab/kbuild/kver"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
	"github.com/reprolab/reprolab/lab/kbuild/probe"
	"github.com/reprolab/reprolab/lab/kbuild/source"
)

// Result points at a built kernel's artifacts.
type Result struct {
	Kernel    string // bzImage or Image
	Vmlinux   string
	SystemMap string
	Config    string
	BuildLog  string
	Metadata  string
	// AppliedPatch is the diff of the built tree against the pristine source.
	AppliedPatch string
	// CmdlineParams set each probe's delay to its spec default; pass
	// reprolab.delay_<name>=0 instead to turn a probe off.
	CmdlineParams []string
	Dir           string // the artifact folder
	Cached        bool   // true when nothing was built
	Version       string // kernel version of the tree, e.g. 4.13.9
	Key           string // build key
	// Compiled is the number of C files make compiled (CC lines), not
	// counting the version stamp and boot-image wrapper every relink
	// recompiles.
	Compiled int
	// Warnings: optional fragment options Kconfig dropped, and the like.
	Warnings []string
}

// Build builds (or finds in the cache) the kernel the spec describes.
func Build(ctx context.Context, spec Spec) (*Result, error) {
	b := &builder{spec: spec, t0: time.Now(), durations: map[string]float64{}}
	return b.run(ctx)
}

type builder struct {
	spec      Spec
	ai        archInfo
	t0        time.Time
	durations map[string]float64
	prog      *progress

	src       *source.Resolved
	frags     []*kconfig.Fragment
	patches   []*patch.Patch
	probes    []*probe.Spec
	version   kver.Version
	options   []kconfig.Option
	fixes     []Fix
	applied   []Fix
	sites     []probe.Site
	params    []string
	toolchain map[string]string
	warnings  []string
	// ccache is the ccache binary the tree compiles through ("" for none). It is not
	// part of any key: ccache returns the objects the compiler would have made.
	ccache string
	// ccacheBase is ccache's base_dir: the folder of all work trees (see useCcache).
	ccacheBase string
}

func (b *builder) phase(name string, start time.Time) {
	b.durations[name] += time.Since(start).Seconds()
}

func (b *builder) run(ctx context.Context) (*Result, error) {
	s := &b.spec
	ai, ok := arches[s.Arch]
	if !ok {
		return nil, fault.Inputf("arch %q: want x86_64 or arm64", s.Arch)
	}
	b.ai = ai
	if s.CacheDir == "" {
		s.CacheDir = DefaultCacheDir()
	}
	if s.Jobs <= 0 {
		s.Jobs = 2
	}
	if s.Base == "" {
		s.Base = "tinyconfig"
	}
	if s.Base != "tinyconfig" && s.Base != "defconfig" && s.Base != "allnoconfig" && !strings.HasSuffix(s.Base, "_defconfig") {
		return nil, fault.Inputf("base %q: want tinyconfig, allnoconfig, defconfig or an arch's *_defconfig", s.Base)
	}
	if len(s.Fragments) == 0 {
		s.Fragments = DefaultFragments
	}
	b.prog = newProgress(s.Progress, strings.TrimSpace(s.Name+" "+s.Arch))
	defer b.prog.done()
	kb := filepath.Join(s.CacheDir, "kbuild")

	// Inputs first: every bad-input error comes before any slow step.
	t := time.Now()
	b.prog.phase("inputs", "")
	if err := b.loadInputs(); err != nil {
		return nil, err
	}
	if err := b.readToolchain(ctx); err != nil {
		return nil, err
	}
	b.prog.phase("source", "")
	src, err := source.Resolve(ctx, s.Source, s.CacheDir)
	if err != nil {
		return nil, err
	}
	b.src = src
	pristine := filepath.Join(kb, "src", hash(src.ID)[:20])
	if s.Tree != "" {
		if src.Kind != "dir" {
			return nil, fault.Inputf("kept tree %q: needs a dir source (a work tree the caller moves between commits), not %s", s.Tree, src.Kind)
		}
		pristine = src.Source.Dir
	} else if err := extractPristine(ctx, src, pristine, func() { b.prog.phase("source", "extracting "+src.Kind) }); err != nil {
		return nil, err
	}
	if b.version, err = kver.FromTree(pristine); err != nil {
		return nil, fault.AsInput(err)
	}
	b.phase("source", t)

	// Keys.
	b.options = kconfig.Select(b.frags, b.version, s.Arch)
	if err := compressorTool(b.options); err != nil {
		return nil, err
	}
	b.fixes = fixesFor(b.version, s.Arch)
	treeKey := b.treeKey()
	buildKey := b.buildKey(treeKey)
	out := filepath.Join(kb, "out", buildKey[:20])
	if r, ok := b.cached(out, buildKey); ok && !s.ConfigOnly {
		b.prog.phase("cached", out)
		return r, nil
	}

	tree := filepath.Join(kb, "tree", treeKey[:20])
	b.useCcache(tree, filepath.Join(kb, "tree"))
	var res *Result
	err = withLockNote(ctx, tree+".lock", func() { b.prog.phase("waiting", "another build holds this work tree") }, func() error {
		// Another process may have built the same thing while we waited.
		if r, ok := b.cached(out, buildKey); ok && !s.ConfigOnly {
			res = r
			return nil
		}
		var err error
		res, err = b.buildTree(ctx, pristine, tree, out, buildKey)
		return err
	})
	return res, err
}

// compressors are the host tools the kernel's build runs for its image compression.
var compressors = map[string][2]string{
	"KERNEL_LZ4":  {"lz4c", "lz4"},
	"KERNEL_XZ":   {"xz", "xz-utils"},
	"KERNEL_ZSTD": {"zstd", "zstd"},
	"KERNEL_LZO":  {"lzop", "lzop"},
}

// compressorTool fails early, naming the package, when the options ask for an image
// compression whose host tool is missing: the kernel's own error comes at the very end of
// a long build, as a failed pipe.
func compressorTool(opts []kconfig.Option) error {
	for _, o := range opts {
		if t, ok := compressors[o.Name]; ok && o.Value == "y" {
			if _, err := exec.LookPath(t[0]); err != nil {
				return fmt.Errorf("toolchain: CONFIG_%s=y (%s:%d) needs %s; install it with `apt-get install %s`", o.Name, o.File, o.Line, t[0], t[1])
			}
		}
	}
	return nil
}

// extractPristine extracts src into pristine unless another build already did.
func extractPristine(ctx context.Context, src *source.Resolved, pristine string, note func()) error {
	return withLock(ctx, pristine+".lock", func() error {
		if _, err := os.Stat(pristine); err == nil {
			return nil
		}
		note()
		if err := os.MkdirAll(filepath.Dir(pristine), 0o755); err != nil {
			return err
		}
		return src.Extract(ctx, pristine)
	})
}

// PristineTree is the cache's pristine copy of a source, the tree every build of that
// source starts from (extracted now when no build has yet). Tools that need the very tree
// the builds compile (make ci-history commits it into git) read it; nobody writes it.
func PristineTree(ctx context.Context, s source.Source, cacheDir string) (string, *source.Resolved, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	src, err := source.Resolve(ctx, s, cacheDir)
	if err != nil {
		return "", nil, err
	}
	pristine := filepath.Join(cacheDir, "kbuild", "src", hash(src.ID)[:20])
	return pristine, src, extractPristine(ctx, src, pristine, func() {})
}

func (b *builder) loadInputs() error {
	s := &b.spec
	dirs := s.FragmentDirs
	if len(dirs) == 0 {
		dirs = []string{"kconfigs"}
	}
	var errs *multierror.Error
	for _, name := range s.Fragments {
		if name == "arch" {
			name = "arch-" + s.Arch
		}
		f, err := kconfig.LoadFragment(name, dirs)
		if err != nil {
			errs = multierror.Append(errs, fault.AsInput(err))
			continue
		}
		b.frags = append(b.frags, f)
	}
	for _, p := range s.Patches {
		ps, err := patch.Load(p)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		b.patches = append(b.patches, ps...)
	}
	for _, p := range s.Probes {
		ps, err := probe.Load(p)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		b.probes = append(b.probes, ps)
	}
	if errs.ErrorOrNil() != nil {
		errs.ErrorFormat = listErrors
		return fault.AsInput(errs)
	}
	return nil
}

func listErrors(es []error) string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var l []string
	for _, e := range es {
		l = append(l, "  "+e.Error())
	}
	return fmt.Sprintf("%d input errors:\n%s", len(es), strings.Join(l, "\n"))
}

func (b *builder) readToolchain(ctx context.Context) error {
	b.toolchain = map[string]string{}
	for _, tool := range []string{b.ai.cross + "gcc", b.ai.cross + "ld", "make"} {
		out, err := exec.CommandContext(ctx, tool, "--version").Output()
		if err != nil {
			pkg := map[string]string{"gcc": "gcc", "ld": "binutils", "make": "make"}[strings.TrimPrefix(tool, b.ai.cross)]
			if b.ai.cross != "" && tool != "make" {
				pkg = "gcc-aarch64-linux-gnu"
			}
			return fmt.Errorf("toolchain: %s not runnable (%v); install it with `apt-get install %s`", tool, err, pkg)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		b.toolchain[strings.TrimPrefix(tool, b.ai.cross)] = first
	}
	for _, tool := range []string{"flex", "bison", "bc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("toolchain: %s is missing; install it with `apt-get install %s`", tool, tool)
		}
	}
	return nil
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// treeKey covers what forces a full rebuild: source, arch, compiler, config.
func (b *builder) treeKey() string {
	id := b.src.ID
	if b.spec.Tree != "" {
		id = "kept:" + b.spec.Tree
	}
	parts := []string{"tree-v1", id, b.spec.Arch, b.toolchain["gcc"], b.toolchain["ld"], b.spec.Base}
	for _, o := range b.options {
		parts = append(parts, o.ConfigLine())
	}
	return hash(parts...)
}

// buildKey adds what is rebuilt incrementally: patches, probes, compat fixes.
func (b *builder) buildKey(treeKey string) string {
	parts := []string{"build-v1", treeKey, "probe-generator-" + probe.GeneratorVersion}
	if b.spec.Tree != "" {
		parts = append(parts, b.src.ID) // a kept tree's key names no commit
	}
	for _, p := range b.patches {
		parts = append(parts, string(p.Text))
	}
	for _, p := range b.probes {
		parts = append(parts, string(p.Raw))
	}
	for _, f := range b.fixes {
		parts = append(parts, f.Name)
	}
	return hash(parts...)
}

// cached returns the artifacts of an earlier identical build.
func (b *builder) cached(out, key string) (*Result, bool) {
	data, err := os.ReadFile(filepath.Join(out, "metadata.json"))
	if err != nil {
		return nil, false
	}
	var m Metadata
	if json.Unmarshal(data, &m) != nil || m.Key != key {
		return nil, false
	}
	// Nothing is compiled by a cache hit, whatever the build that made it compiled.
	r := b.result(out, key, 0)
	for _, p := range []string{r.Kernel, r.Vmlinux, r.SystemMap, r.Config} {
		if _, err := os.Stat(p); err != nil {
			return nil, false
		}
	}
	r.Cached = true
	r.CmdlineParams = m.CmdlineParams
	r.Warnings = m.Warnings
	return r, true
}

func (b *builder) result(out, key string, compiled int) *Result {
	return &Result{
		Kernel:        filepath.Join(out, filepath.Base(b.ai.image)),
		Vmlinux:       filepath.Join(out, "vmlinux"),
		SystemMap:     filepath.Join(out, "System.map"),
		Config:        filepath.Join(out, "config"),
		BuildLog:      filepath.Join(out, "build.log"),
		Metadata:      filepath.Join(out, "metadata.json"),
		AppliedPatch:  filepath.Join(out, "applied.patch"),
		Dir:           out,
		Version:       b.version.String(),
		Key:           key,
		Compiled:      compiled,
		CmdlineParams: b.params,
		Warnings:      b.warnings,
	}
}

// withLock runs f holding an exclusive flock on path (other reprolab
// processes building the same thing wait instead of racing).
func withLock(ctx context.Context, path string, f func() error) error {
	return withLockNote(ctx, path, nil, f)
}

// withLockNote is withLock that calls wait once if it has to wait.
func withLockNote(ctx context.Context, path string, wait func(), f func() error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	fd, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer fd.Close()
	for {
		err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if wait != nil {
			wait()
			wait = nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	defer syscall.Flock(int(fd.Fd()), syscall.LOCK_UN)
	return f()
}

// sortedKeys is a small helper for deterministic output.
func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// useCcache decides whether this build compiles through ccache (installed, and not
// turned off with REPROLAB_NO_CCACHE=1). A kept tree moves back and forth between nearby
// commits (bisection steps) and ccache turns a header that changed and changed back into
// hits; every other tree uses it too from its first build, because with base_dir set to
// the folder of all trees (and the directory left out of the hash) one tree's objects are
// hits in another: a bisection's kept tree after the CI kernel, a second config, costs
// minutes instead of a full compile. The price: a hit's debug info names the source path
// of the tree that compiled it first (same file, same content). A tree built before
// without ccache keeps building without it: switching CC would change every object's
// command line and rebuild it all once.
func (b *builder) useCcache(tree, base string) {
	if os.Getenv("REPROLAB_NO_CCACHE") != "" {
		return
	}
	if _, err := exec.LookPath("ccache"); err != nil {
		return
	}
	marker := filepath.Join(tree, "ccache")
	if b.spec.Tree == "" {
		_, built := os.Stat(filepath.Join(tree, "obj"))
		if _, err := os.Stat(marker); err != nil && built == nil {
			return // built without ccache: keep it so
		}
	}
	if err := os.MkdirAll(tree, 0o755); err == nil {
		_ = os.WriteFile(marker, []byte("this tree compiles through ccache\n"), 0o644)
	}
	b.ccache, b.ccacheBase = "ccache", base
}
