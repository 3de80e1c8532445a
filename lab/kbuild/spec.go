package kbuild

import (
	"github.com/reprolab/reprolab/lab/fault"
	"io"
	"os"
	"path/filepath"

	"github.com/reprolab/reprolab/lab/cache"

	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/strictyaml"
)

// Spec is everything that decides a kernel build. A YAML kernel spec file
// maps onto the fields with yaml tags; the others are run-time settings.
type Spec struct {
	Name   string        `yaml:"name"`
	Arch   string        `yaml:"arch"` // x86_64 or arm64
	Source source.Source `yaml:"source"`
	// Base is the make target that starts the .config: tinyconfig (default;
	// the kconfigs/base fragment makes it a bootable guest and it builds in
	// a fraction of defconfig's time), defconfig, allnoconfig or any
	// *_defconfig of the arch.
	Base string `yaml:"base,omitempty"`
	// Fragments are names in FragmentDirs (kconfigs/NAME.config) or paths;
	// "arch" stands for arch-<Arch>.
	Fragments []string `yaml:"fragments"`
	// Patches and probes are paths, applied in order (patches first).
	Patches []string `yaml:"patches,omitempty"`
	Probes  []string `yaml:"probes,omitempty"`

	// Run-time settings, not part of the spec file.
	FragmentDirs []string  `yaml:"-"`
	CacheDir     string    `yaml:"-"` // default $REPROLAB_CACHE or ~/.cache/reprolab
	Jobs         int       `yaml:"-"` // make -j, default 2
	Progress     io.Writer `yaml:"-"` // phase/percent lines; a terminal gets one updating line
	// ConfigOnly stops after the verified .config (no compiler run).
	ConfigOnly bool `yaml:"-"`
	// Tree names a kept work tree (a bisection's, per arch and config): with a Dir
	// source the caller moves between commits (lab/vcs keeps unchanged files' mtimes),
	// the build tree and its objects are keyed by this name instead of the source, so a
	// build at the next commit recompiles only what the commits changed. The dir is
	// used in place, never copied into the cache.
	Tree string `yaml:"-"`
}

// LoadSpec reads a YAML kernel spec; relative paths (source paths, patches,
// probes, fragment paths) are taken relative to the spec file's folder.
// Unknown keys are errors naming the line.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.Inputf("kernel spec: %v", err)
	}
	var s Spec
	if err := strictyaml.Decode(path, data, &s); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	rel(&s.Source.Git)
	rel(&s.Source.Dir)
	rel(&s.Source.Tarball)
	for i := range s.Patches {
		rel(&s.Patches[i])
	}
	for i := range s.Probes {
		rel(&s.Probes[i])
	}
	for i, f := range s.Fragments {
		if filepath.Ext(f) == ".config" {
			rel(&s.Fragments[i])
		}
	}
	return &s, nil
}

// DefaultCacheDir is $REPROLAB_CACHE, else ~/.cache/reprolab.
func DefaultCacheDir() string { return cache.Dir() }

// DefaultFragments is what a reproducer guest needs for the seed bug.
var DefaultFragments = []string{"base", "arch", "virtio-guest", "memcg", "debug-vm", "dmcrypt-swap", "ext4", "pvpanic", "debug-info"}

// archInfo is what differs per architecture.
type archInfo struct {
	make   string // ARCH= (x86_64 rather than x86 forces 64BIT even under tinyconfig)
	karch  string // arch/ folder
	cross  string // CROSS_COMPILE=
	target string // make target of the boot image
	image  string // path of the boot image in the object tree
}

var arches = map[string]archInfo{
	"x86_64": {"x86_64", "x86", "", "bzImage", "arch/x86/boot/bzImage"},
	"arm64":  {"arm64", "arm64", "aarch64-linux-gnu-", "Image", "arch/arm64/boot/Image"},
}
