package repro

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	"github.com/reprolab/reprolab/lab/qemu"
)

// CheckKernelImage recognises the image formats QEMU boots directly, so that a wrong file
// (a vmlinux instead of a bzImage, an arm64 image for x86, garbage) fails as bad input with
// a message that says what the file is — before anything is built or booted and before a
// results folder exists — instead of as a cryptic QEMU error or a false boot failure.
func CheckKernelImage(path string, arch qemu.Arch) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	isELF := bytes.HasPrefix(head, []byte("\x7fELF"))
	isBz := len(head) > 0x206 && string(head[0x202:0x206]) == "HdrS"
	isArm64 := func(b []byte) bool { return len(b) >= 0x40 && string(b[0x38:0x3c]) == "ARM\x64" }
	switch arch {
	case qemu.X86_64:
		if isBz {
			return nil
		}
		if isArm64(head) {
			return fmt.Errorf("%s is an arm64 kernel Image, not an x86-64 bzImage: use --arch arm64", path)
		}
		if isELF {
			return fmt.Errorf("%s is an ELF file (a vmlinux?): QEMU boots the bzImage (arch/x86/boot/bzImage); pass the vmlinux with --vmlinux", path)
		}
		return fmt.Errorf("%s is not an x86-64 kernel image (no bzImage \"HdrS\" header at 0x202)", path)
	case qemu.ARM64:
		if isArm64(head) {
			return nil
		}
		if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) {
			// Debian ships arm64 kernels as gzip'd Images; QEMU unpacks them.
			if _, err := f.Seek(0, io.SeekStart); err == nil {
				if zr, err := gzip.NewReader(f); err == nil {
					inner := make([]byte, 0x40)
					if _, err := io.ReadFull(zr, inner); err == nil && isArm64(inner) {
						return nil
					}
				}
			}
			return fmt.Errorf("%s is gzip data but not a compressed arm64 Image", path)
		}
		if isBz {
			return fmt.Errorf("%s is an x86 bzImage, not an arm64 Image: use --arch x86_64", path)
		}
		if isELF {
			return fmt.Errorf("%s is an ELF file (a vmlinux?): QEMU boots arch/arm64/boot/Image; pass the vmlinux with --vmlinux", path)
		}
		return fmt.Errorf("%s is not an arm64 kernel Image (no \"ARM\\x64\" magic at 0x38)", path)
	}
	return nil
}
