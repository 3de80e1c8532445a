package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Under TCG, SeaBIOS spends 0.4–0.8 s of every x86-64 boot before the kernel runs (PCI
// enumeration, option ROM scans, boot menu), on a guest that boots a -kernel image and
// needs none of it. qboot is QEMU's minimal firmware for exactly that case: it sets up
// memory, ACPI/SMBIOS/MP tables from QEMU's fw_cfg and jumps into the Linux boot protocol
// (or the PVH option ROM), measured at 0.2–0.4 s where SeaBIOS took 0.4–0.8 s. Debian ships
// it in qemu-system-data.

// qbootROM is the file name QEMU's packages install qboot under.
const qbootROM = "qboot.rom"

// Firmware returns the -bios file for cfg, or "" for QEMU's default: qboot for an x86-64
// guest booted from -kernel when the installed QEMU ships it. REPROLAB_SEABIOS=1 keeps
// SeaBIOS (to compare, or for a kernel qboot cannot start).
func Firmware(cfg Config) string {
	if cfg.Arch != X86_64 || cfg.Kernel == "" || os.Getenv("REPROLAB_SEABIOS") != "" {
		return ""
	}
	for _, dir := range dataDirs(cfg.Binary) {
		p := filepath.Join(dir, qbootROM)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// dataDirs are where QEMU looks for firmware: next to a relocated binary (../share/qemu)
// and the distribution's directory.
func dataDirs(bin string) []string {
	if bin == "" {
		bin = X86_64.Binary()
	}
	var dirs []string
	if p, err := exec.LookPath(bin); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Join(filepath.Dir(p), "..", "share", "qemu"))
	}
	return append(dirs, "/usr/share/qemu", "/usr/local/share/qemu")
}
