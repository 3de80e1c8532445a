package image

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"regexp"
	"sort"
)

var appletName = regexp.MustCompile(`^[a-z0-9_.\[\]-]+$`)

// busyboxApplets reads the applet names out of a busybox binary. Running "busybox --list"
// would need the guest's architecture; the names are also stored as one sorted,
// NUL-separated table starting "[\0[[\0", ended by an empty name, which any architecture's
// binary carries the same way.
func busyboxApplets(bin []byte) ([]string, error) {
	i := bytes.Index(bin, []byte("[\x00[[\x00"))
	if i < 0 {
		return nil, fmt.Errorf("no applet table found (not a busybox binary?)")
	}
	var names []string
	for rest := bin[i:]; ; {
		j := bytes.IndexByte(rest, 0)
		if j <= 0 {
			break
		}
		n := string(rest[:j])
		if !appletName.MatchString(n) {
			return nil, fmt.Errorf("applet table holds %q: not an applet name", n)
		}
		names = append(names, n)
		rest = rest[j+1:]
	}
	if len(names) < 10 || !sort.StringsAreSorted(names) {
		return nil, fmt.Errorf("applet table looks wrong (%d names, sorted=%v)", len(names), sort.StringsAreSorted(names))
	}
	return names, nil
}

var elfMachine = map[string]elf.Machine{"x86_64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkStaticELF makes sure a binary going into the initramfs will run there: right
// architecture and no dynamic loader (the initramfs has no libc).
func checkStaticELF(what, path, arch string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s %s: not an ELF binary: %w", what, path, err)
	}
	if f.Machine != elfMachine[arch] {
		return nil, fmt.Errorf("%s %s is built for %v, the guest is %s", what, path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s %s is dynamically linked; the initramfs needs a static binary", what, path)
		}
	}
	return b, nil
}
