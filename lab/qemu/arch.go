package qemu

import (
	"fmt"
	"runtime"
)

// Arch is a guest architecture in the kernel's own spelling.
type Arch string

// The architectures the lab runs.
const (
	X86_64 Arch = "x86_64"
	ARM64  Arch = "arm64"
)

// ParseArch accepts the kernel's and Debian's spellings (x86_64/amd64, arm64/aarch64).
func ParseArch(s string) (Arch, error) {
	switch s {
	case "x86_64", "amd64", "x86-64":
		return X86_64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", fmt.Errorf("unknown arch %q: use x86_64 or arm64", s)
}

// GOARCH is the Go name of the arch, for building the guest agent.
func (a Arch) GOARCH() string {
	if a == ARM64 {
		return "arm64"
	}
	return "amd64"
}

// Binary is the QEMU system emulator for the arch.
func (a Arch) Binary() string {
	if a == ARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// DebianPackage names the Debian package that provides Binary, for error messages.
func (a Arch) DebianPackage() string {
	if a == ARM64 {
		return "qemu-system-arm"
	}
	return "qemu-system-x86"
}

// Console is the kernel console device of the first serial port QEMU wires to our pipe.
func (a Arch) Console() string {
	if a == ARM64 {
		return "ttyAMA0"
	}
	return "ttyS0"
}

// native reports whether the arch can use KVM on this host at all.
func (a Arch) native() bool {
	return a.GOARCH() == runtime.GOARCH
}

// machineArgs are the board, CPU and panic device for one arch and accelerator.
func (a Arch) machineArgs(accel Accel) []string {
	switch a {
	case ARM64:
		// cortex-a57 rather than max: "-cpu max" advertises FEAT_LPA and friends that
		// arm64 kernels older than 4.19 cannot boot with. There is no KVM for arm64 on
		// an x86 host, so this is always TCG; thread=multi gives one host thread per vCPU,
		// which matters for races between CPUs.
		return []string{"-M", "virt", "-cpu", "cortex-a57",
			"-accel", "tcg,thread=multi", "-device", "pvpanic-pci"}
	default:
		if accel == KVM {
			return []string{"-M", "pc", "-accel", "kvm", "-cpu", "host", "-device", "pvpanic"}
		}
		// qemu64 boots every kernel era; TCG with thread=multi as for arm64.
		return []string{"-M", "pc", "-accel", "tcg,thread=multi", "-cpu", "qemu64", "-device", "pvpanic"}
	}
}
