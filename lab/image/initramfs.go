package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/crypto/ssh"
)

// InitramfsSpec says what goes into a base initramfs.
type InitramfsSpec struct {
	Arch       string    // "x86_64" or "arm64"
	ModulesDir string    // optional: a distro kernel's lib/modules/<version> tree
	Modules    []string  // module names wanted from ModulesDir; nil → DefaultModules(arch)
	Busybox    string    // optional override of the busybox binary
	CacheDir   string    // e.g. ~/.cache/reprolab
	Progress   io.Writer // optional human progress lines
}

// Initramfs is a built base initramfs.
type Initramfs struct {
	Path    string        // cached base cpio (newc), content-addressed
	HostKey ssh.PublicKey // public half of the baked-in host key
	Modules []string      // module files included (paths inside the initramfs), in load order
	Early   []string      // those the agent loads before it answers (TransportModules and their dependencies)
}

// BuildInitramfs assembles the base initramfs for s, or finds it in the cache.
func BuildInitramfs(ctx context.Context, s InitramfsSpec) (*Initramfs, error) {
	if _, err := goarch(s.Arch); err != nil {
		return nil, err
	}
	if s.CacheDir == "" {
		return nil, errors.New("initramfs: CacheDir is empty (use image.DefaultCacheDir())")
	}
	if s.ModulesDir == "" && len(s.Modules) > 0 {
		return nil, fmt.Errorf("initramfs: modules %v asked for but no ModulesDir given", s.Modules)
	}
	progress := s.Progress
	if progress == nil {
		progress = io.Discard
	}
	bbPath := s.Busybox
	if bbPath == "" {
		bbPath = defaultBusybox(s.Arch, s.CacheDir)
	}
	bb, err := checkStaticELF("busybox", bbPath, s.Arch)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian's busybox-static; for arm64 run images/debian-kernels.sh)", err)
	}
	applets, err := busyboxApplets(bb)
	if err != nil {
		return nil, fmt.Errorf("busybox %s: %w", bbPath, err)
	}
	agentPath, err := agentBinary(ctx, s.Arch, s.CacheDir, progress)
	if err != nil {
		return nil, err
	}
	agent, err := checkStaticELF("reprolab-agent", agentPath, s.Arch)
	if err != nil {
		return nil, err
	}
	keyPEM, hostPub, err := hostKey(s.CacheDir)
	if err != nil {
		return nil, err
	}

	var mods []resolvedModule
	var version string
	var early map[string]bool
	if s.ModulesDir != "" {
		tree, err := openModuleTree(s.ModulesDir)
		if err != nil {
			return nil, err
		}
		want := s.Modules
		if want == nil {
			want = DefaultModules(s.Arch)
		}
		if mods, err = tree.resolve(want); err != nil {
			return nil, err
		}
		early = closure(mods, tree, TransportModules)
		version = filepath.Base(filepath.Clean(s.ModulesDir))
	}

	files := []file{
		{name: "init", data: agent, mode: 0o755},
		{name: "bin/busybox", data: bb, mode: 0o755},
		{name: "bin/reprolab-agent", link: "/init"},
		{name: "etc/reprolab/ssh_host_ed25519_key", data: keyPEM, mode: 0o600},
		{name: "dev/console", dev: [2]uint64{5, 1}, mode: 0o600},
		{name: "dev/null", dev: [2]uint64{1, 3}, mode: 0o666},
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "mnt", "sbin", "usr/bin", "usr/sbin"} {
		files = append(files, file{name: d, dir: true})
	}
	for _, a := range applets {
		if a != "busybox" {
			files = append(files, file{name: "bin/" + a, link: "busybox"})
		}
	}
	var loadOrder, earlyOrder []string
	for _, m := range mods {
		t := m.target(version)
		files = append(files, file{name: t, data: m.data, mode: 0o644})
		loadOrder = append(loadOrder, "/"+t)
		if early[m.rel] {
			earlyOrder = append(earlyOrder, "/"+t)
		}
	}
	files = append(files, file{name: "etc/reprolab/modules", data: []byte(moduleList(mods, early, version)), mode: 0o644})

	archive, err := writeCpio(files)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(archive)
	out := filepath.Join(s.CacheDir, "initramfs", fmt.Sprintf("%s-%s.cpio", s.Arch, hex.EncodeToString(sum[:12])))
	// The archive holds the host private key: 0600 in a 0700 folder.
	if err := secretDir(filepath.Dir(out)); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if _, err := os.Stat(out); err == nil {
		touch(out)
		if err := secretFile(out); err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
		fmt.Fprintf(progress, "image: initramfs %s (cached)\n", out)
	} else {
		if err := writeFileAtomic(out, archive, 0o600); err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
		fmt.Fprintf(progress, "image: initramfs %s (%d modules, %d KiB)\n", out, len(mods), len(archive)>>10)
		// Every agent or module change makes a new ~10 MB archive and agent binary; drop
		// the ones nobody has used for a while.
		prune(filepath.Dir(out), staleAfter)
		prune(filepath.Dir(agentPath), staleAfter)
	}
	return &Initramfs{Path: out, HostKey: hostPub, Modules: loadOrder, Early: earlyOrder}, nil
}

// file is one entry of an archive: a regular file, directory, symlink or device node.
type file struct {
	name string
	data []byte
	mode uint64
	link string
	dir  bool
	dev  [2]uint64
}

// writeCpio writes files as a reproducible newc archive: parents before children, names
// sorted, zero mtimes and owners, and inode numbers from the position so equal inputs give
// equal bytes.
func writeCpio(files []file) ([]byte, error) {
	byName := map[string]file{}
	for _, f := range files {
		f.name = path.Clean(strings.TrimPrefix(f.name, "/"))
		if old, dup := byName[f.name]; dup && !(old.dir && f.dir) {
			return nil, fmt.Errorf("initramfs: %s added twice", f.name)
		}
		byName[f.name] = f
		for d := path.Dir(f.name); d != "."; d = path.Dir(d) {
			if _, ok := byName[d]; !ok {
				byName[d] = file{name: d, dir: true}
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	// Sorting full paths puts every directory before its contents.
	sort.Strings(names)
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for i, n := range names {
		f := byName[n]
		var r cpio.Record
		switch {
		case f.dir:
			r = cpio.Directory(n, 0o755)
		case f.link != "":
			r = cpio.Symlink(n, f.link)
		case f.dev != [2]uint64{}:
			r = cpio.CharDev(n, f.mode, f.dev[0], f.dev[1])
		default:
			r = cpio.StaticFile(n, string(f.data), f.mode)
		}
		r = cpio.MakeReproducible(r)
		r.Ino = uint64(i + 1)
		r.NLink = 1
		if f.dir {
			r.NLink = 2
		}
		if err := w.WriteRecord(r); err != nil {
			return nil, fmt.Errorf("initramfs: %s: %w", n, err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RunOverlay writes a small cpio holding /etc/reprolab/authorized_keys to dir and returns its
// path. Appended to the base initramfs, it authorizes this run's ephemeral client key. It
// also carries a fresh random seed that the agent credits to the guest kernel's entropy
// pool, so key exchange does not wait for an idle guest to gather entropy.
func RunOverlay(dir string, authorized ssh.PublicKey) (string, error) {
	if authorized == nil {
		return "", errors.New("run overlay: no authorized key given")
	}
	seed := make([]byte, 64)
	if _, err := rand.Read(seed); err != nil {
		return "", err
	}
	b, err := writeCpio([]file{
		{name: "etc/reprolab/authorized_keys", data: ssh.MarshalAuthorizedKey(authorized), mode: 0o600},
		{name: "etc/reprolab/random-seed", data: seed, mode: 0o600},
	})
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "overlay.cpio")
	if err := writeFileAtomic(p, b, 0o644); err != nil {
		return "", fmt.Errorf("run overlay: %w", err)
	}
	return p, nil
}

// Concat writes the concatenation of parts to dst. The kernel unpacks concatenated newc
// archives in order, later files replacing earlier ones; each part is padded to 512 bytes so
// every archive starts aligned, as the unpacker requires.
func Concat(dst string, parts ...string) (err error) {
	if len(parts) == 0 {
		return errors.New("concat: no parts")
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil {
			err = multierror.Append(err, cerr)
		}
	}()
	var n int64
	for _, p := range parts {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("concat: %w", err)
		}
		m, err := io.Copy(out, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("concat %s: %w", p, err)
		}
		n += m
		if pad := (512 - n%512) % 512; pad > 0 {
			if _, err := out.Write(make([]byte, pad)); err != nil {
				return err
			}
			n += pad
		}
	}
	return nil
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

// staleAfter is how long an unused cache entry is kept. Entries are touched on every use,
// so a run that has just picked one up never loses it.
const staleAfter = 7 * 24 * time.Hour

func touch(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// prune removes regular files in dir not modified for longer than age.
func prune(dir string, age time.Duration) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
