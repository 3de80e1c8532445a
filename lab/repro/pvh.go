package repro

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/qemu"
)

// Under TCG a compressed x86-64 kernel spends seconds before its own clock starts: the
// real-mode setup, then decompressing itself (Debian's XZ kernel: ~4–8 s on an idle host,
// about as long as the kernel then takes to reach /init). A kernel built with CONFIG_PVH
// has an ELF note that lets QEMU enter the uncompressed vmlinux directly (its pvh.bin
// option ROM), skipping both. pvhKernel unpacks such a bzImage's payload once, with the
// host's xz/gzip/zstd, and caches the ELF by the bzImage's hash.

// payloadMagic are the bzImage payload formats the host's tools unpack.
var payloadMagic = []struct {
	magic []byte
	tool  string
}{
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz"},
	{[]byte{0x1f, 0x8b}, "gzip"},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
}

// pvhKernel returns the uncompressed PVH-bootable vmlinux for an x86-64 bzImage, or ""
// when the kernel cannot boot that way (no CONFIG_PVH, an unknown payload format, not
// x86-64, no cache): then the bzImage boots as before.
func (r *run) pvhKernel(ctx context.Context) string {
	// REPROLAB_NO_PVH=1 boots the bzImage as before.
	if r.cfg.Arch != qemu.X86_64 || r.cfg.CacheDir == "" || r.res.KernelSHA == "" || os.Getenv("REPROLAB_NO_PVH") != "" {
		return ""
	}
	path := filepath.Join(r.cfg.CacheDir, "pvh", r.res.KernelSHA[:24]+".vmlinux")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if _, err := os.Stat(path + ".none"); err == nil {
		return "" // looked before: not a PVH kernel
	}
	elfData, err := unpackBzImage(ctx, r.cfg.Kernel)
	if err == nil && !hasPVHNote(elfData) {
		err = errors.New("no PVH entry note (kernel built without CONFIG_PVH)")
	}
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	if err != nil {
		_ = os.WriteFile(path+".none", []byte(err.Error()+"\n"), 0o644)
		return ""
	}
	if err := atomicfile.Write(path, elfData, 0o644); err != nil {
		return ""
	}
	return path
}

// unpackBzImage decompresses a bzImage's payload (boot protocol 2.08+: payload_offset
// and payload_length in the setup header) into the kernel's ELF vmlinux.
func unpackBzImage(ctx context.Context, bz string) ([]byte, error) {
	data, err := os.ReadFile(bz)
	if err != nil {
		return nil, err
	}
	if len(data) < 0x250 || string(data[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(data[0x206:]) < 0x208 {
		return nil, errors.New("not a bzImage with boot protocol 2.08+")
	}
	setup := int(data[0x1f1])
	if setup == 0 {
		setup = 4
	}
	off := (setup+1)*512 + int(binary.LittleEndian.Uint32(data[0x248:]))
	n := int(binary.LittleEndian.Uint32(data[0x24c:]))
	if off <= 0 || n <= 0 || off+n > len(data) {
		return nil, errors.New("bzImage payload out of range")
	}
	payload := data[off : off+n]
	for _, m := range payloadMagic {
		if !bytes.HasPrefix(payload, m.magic) {
			continue
		}
		cmd := exec.CommandContext(ctx, m.tool, "-dc")
		cmd.Stdin = bytes.NewReader(payload)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		// The payload may carry trailing bytes the tool complains about after a complete
		// stream; what it wrote is the kernel when it is a whole ELF.
		runErr := cmd.Run()
		if out.Len() > 4 && bytes.HasPrefix(out.Bytes(), []byte("\x7fELF")) {
			return out.Bytes(), nil
		}
		return nil, fmt.Errorf("%s -dc: %v %s", m.tool, runErr, errb.String())
	}
	return nil, errors.New("bzImage payload in a format this host does not unpack")
}

// hasPVHNote looks for XEN_ELFNOTE_PHYS32_ENTRY (type 18, owner "Xen"), QEMU's sign that
// an ELF kernel has a PVH entry point.
func hasPVHNote(data []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return false
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			continue
		}
		for len(b) >= 12 {
			nsz, dsz, typ := f.ByteOrder.Uint32(b), f.ByteOrder.Uint32(b[4:]), f.ByteOrder.Uint32(b[8:])
			name := b[12:min(len(b), 12+int(nsz))]
			if typ == 18 && bytes.HasPrefix(name, []byte("Xen")) {
				return true
			}
			adv := 12 + align4(int(nsz)) + align4(int(dsz))
			if adv > len(b) || adv <= 12 {
				break
			}
			b = b[adv:]
		}
	}
	return false
}

func align4(n int) int { return (n + 3) &^ 3 }
