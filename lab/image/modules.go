package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// DefaultModules is what a Debian 6.1 kernel needs as modules to run reprolab guests: virtio
// PCI transport, disks and the agent's serial port, dm-crypt with XTS (AES itself is built
// in), ext4 with the crc32c it checksums with, and on x86_64 pvpanic so a panic reaches QEMU.
// Debian's arm64 kernel ships no pvpanic driver at all, so none is asked for there.
func DefaultModules(arch string) []string {
	m := []string{"virtio_pci", "virtio_blk", "virtio_console", "dm_crypt", "xts", "crc32c_generic", "ext4"}
	if arch == "x86_64" {
		m = append(m, "pvpanic_mmio", "pvpanic_pci")
	}
	return m
}

// TransportModules are what the agent needs to answer the host at all: the virtio PCI
// transport and the virtio-serial port it serves SSH on. The guest loads these (and their
// dependencies) first and everything else afterwards, in parallel, while the agent already
// answers; commands wait until all modules are in (cmd/reprolab-agent).
var TransportModules = []string{"virtio_pci", "virtio_console"}

// moduleTree indexes a lib/modules/<version> directory.
type moduleTree struct {
	dir     string
	files   map[string]string   // normalized name → path relative to dir
	builtin map[string]bool     // normalized names of built-in modules
	aliases map[string][]string // alias → normalized module names (modules.alias, builtin aliases)
	dep     map[string][]string // relative path → dependency paths, from modules.dep if present
}

// normalize maps a module name the way the kernel does: '-' and '_' are the same.
func normalize(name string) string {
	name = path.Base(name)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		name = strings.TrimSuffix(name, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}

func isModuleFile(name string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func openModuleTree(dir string) (*moduleTree, error) {
	t := &moduleTree{dir: dir, files: map[string]string{}, builtin: map[string]bool{}, aliases: map[string][]string{}}
	if _, err := os.Stat(filepath.Join(dir, "modules.builtin")); err != nil {
		return nil, fmt.Errorf("modules dir %s: no modules.builtin (want a kernel's lib/modules/<version> tree): %w", dir, err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isModuleFile(d.Name()) {
			rel, _ := filepath.Rel(dir, p)
			t.files[normalize(d.Name())] = filepath.ToSlash(rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modules dir %s: %w", dir, err)
	}
	if err := eachLine(filepath.Join(dir, "modules.builtin"), func(l string) {
		t.builtin[normalize(l)] = true
	}); err != nil {
		return nil, err
	}
	// modules.builtin.modinfo: NUL-separated "module.key=value"; its aliases let a request
	// for e.g. "aes" be recognised as built in.
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin.modinfo")); err == nil {
		for _, f := range bytes.Split(b, []byte{0}) {
			mod, kv, ok := strings.Cut(string(f), ".")
			if v, isAlias := strings.CutPrefix(kv, "alias="); ok && isAlias {
				t.aliases[v] = append(t.aliases[v], normalize(mod))
			}
		}
	}
	// Installed trees have depmod's files; Debian's unpacked packages do not (depmod runs at
	// install time), in which case dependencies come from each module's .modinfo.
	_ = eachLine(filepath.Join(dir, "modules.alias"), func(l string) {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "alias" {
			t.aliases[f[1]] = append(t.aliases[f[1]], normalize(f[2]))
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "modules.dep")); err == nil {
		t.dep = map[string][]string{}
		if err := eachLine(filepath.Join(dir, "modules.dep"), func(l string) {
			mod, deps, ok := strings.Cut(l, ":")
			if ok {
				t.dep[mod] = strings.Fields(deps)
			}
		}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func eachLine(file string, fn func(string)) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			fn(l)
		}
	}
	return sc.Err()
}

// lookup finds the module file for name: by name, then through aliases. It reports built-in
// modules with builtin=true and an empty path.
func (t *moduleTree) lookup(name string) (rel string, builtin bool, err error) {
	n := normalize(name)
	if t.builtin[n] {
		return "", true, nil
	}
	if rel, ok := t.files[n]; ok {
		return rel, false, nil
	}
	for _, a := range append(t.aliases[name], t.aliases[n]...) {
		if t.builtin[a] {
			return "", true, nil
		}
		if rel, ok := t.files[a]; ok {
			return rel, false, nil
		}
	}
	return "", false, fmt.Errorf("module %q is neither built into the kernel nor present in %s", name, t.dir)
}

// readModule returns the module's ELF image, decompressed: the agent loads plain .ko files
// with finit_module, so decompression happens here once rather than in every guest.
func readModule(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(file, ".xz"):
		if r, err = xz.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	case strings.HasSuffix(file, ".zst"):
		d, err := zstd.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		defer d.Close()
		r = d
	case strings.HasSuffix(file, ".gz"):
		if r, err = gzip.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return b, nil
}

// modinfo returns the key=value pairs of a module's .modinfo section.
func modinfo(ko []byte) (map[string][]string, error) {
	ef, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	s := ef.Section(".modinfo")
	if s == nil {
		return nil, errors.New("no .modinfo section")
	}
	b, err := s.Data()
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, f := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(f), "="); ok {
			m[k] = append(m[k], v)
		}
	}
	return m, nil
}

// resolvedModule is one module to put in the initramfs.
type resolvedModule struct {
	rel  string   // path relative to the modules dir, as found (maybe compressed)
	data []byte   // decompressed ELF
	deps []string // rel of the modules it needs loaded first (hard and soft pre-dependencies)
}

// target is where the decompressed module lives in the initramfs.
func (m resolvedModule) target(version string) string { return moduleTarget(m.rel, version) }

func moduleTarget(rel, version string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		rel = strings.TrimSuffix(rel, ext)
	}
	return path.Join("lib/modules", version, rel)
}

// moduleList renders etc/reprolab/modules for the agent: one module per line in load order,
// "early" or "late", its path in the initramfs, then the paths of the modules it needs
// first. early marks the transport modules and their dependencies (rel paths).
func moduleList(mods []resolvedModule, early map[string]bool, version string) string {
	var b strings.Builder
	for _, m := range mods {
		phase := "late"
		if early[m.rel] {
			phase = "early"
		}
		b.WriteString(phase + " /" + m.target(version))
		for _, d := range m.deps {
			b.WriteString(" /" + moduleTarget(d, version))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// closure is the set of modules (rel paths) names need, themselves included.
func closure(mods []resolvedModule, t *moduleTree, names []string) map[string]bool {
	deps := map[string][]string{}
	for _, m := range mods {
		deps[m.rel] = m.deps
	}
	out := map[string]bool{}
	var add func(rel string)
	add = func(rel string) {
		if out[rel] {
			return
		}
		out[rel] = true
		for _, d := range deps[rel] {
			add(d)
		}
	}
	for _, n := range names {
		if rel, builtin, err := t.lookup(n); err == nil && !builtin {
			add(rel)
		}
	}
	return out
}

// resolve returns the wanted modules and their dependencies in load order (dependencies
// first). Built-in modules are skipped; soft pre-dependencies are added when present.
func (t *moduleTree) resolve(want []string) ([]resolvedModule, error) {
	var (
		out   []resolvedModule
		state = map[string]int{} // rel → 1 visiting, 2 done
	)
	var visit func(rel string, chain []string) error
	visit = func(rel string, chain []string) error {
		switch state[rel] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, rel), " → "))
		case 2:
			return nil
		}
		state[rel] = 1
		data, err := readModule(filepath.Join(t.dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		info, err := modinfo(data)
		if err != nil {
			return fmt.Errorf("module %s: %w", rel, err)
		}
		var deps []string
		if t.dep != nil {
			deps = append(deps, t.dep[rel]...)
		} else {
			for _, d := range info["depends"] {
				for _, name := range strings.Split(d, ",") {
					if name == "" {
						continue
					}
					r, builtin, err := t.lookup(name)
					if err != nil {
						return fmt.Errorf("%s depends on it: %w", rel, err)
					}
					if !builtin {
						deps = append(deps, r)
					}
				}
			}
		}
		// softdep "pre: a b" (xts on ecb, ext4 on crc32c) is not in modules.dep; modprobe
		// loads those first when they exist, and so does the agent.
		for _, sd := range info["softdep"] {
			pre, _, _ := strings.Cut(sd, "post:")
			for _, name := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(pre), "pre:")) {
				if r, builtin, err := t.lookup(name); err == nil && !builtin {
					deps = append(deps, r)
				}
			}
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, append(chain, rel)); err != nil {
				return err
			}
		}
		state[rel] = 2
		out = append(out, resolvedModule{rel: rel, data: data, deps: deps})
		return nil
	}
	for _, name := range want {
		rel, builtin, err := t.lookup(name)
		if err != nil {
			return nil, err
		}
		if builtin {
			continue
		}
		if err := visit(rel, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}
