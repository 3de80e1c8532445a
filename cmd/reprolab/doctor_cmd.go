package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/reprolab/reprolab/lab/fault"

	"github.com/reprolab/reprolab/lab/qemu"
)

// check is one host requirement.
type check struct {
	what string
	need string // "required" for running guests, "build" for building kernels, "optional"
	ok   func() (bool, string)
	fix  string
}

func haveCmd(name string) func() (bool, string) {
	return func() (bool, string) {
		p, err := exec.LookPath(name)
		if err != nil {
			return false, name + " not in PATH"
		}
		return true, p
	}
}

func haveFile(paths ...string) func() (bool, string) {
	return func() (bool, string) {
		for _, p := range paths {
			if m, _ := filepath.Glob(p); len(m) > 0 {
				return true, m[0]
			}
		}
		return false, strings.Join(paths, " or ") + " missing"
	}
}

func kvmCheck() (bool, string) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Sprintf("/dev/kvm: %v — guests run under TCG (slower, still correct)", err)
	}
	unix.Close(fd)
	if usable, reason, known := qemu.KVMVerdict(cacheDir(), qemu.X86_64); known && !usable {
		return false, "/dev/kvm opens but a guest did not run under it (" + reason + "): runs use TCG"
	}
	return true, "/dev/kvm opens; 'run --accel auto' still verifies a guest really runs under it and falls back to TCG if not"
}

func doctorChecks() []check {
	c := cacheDir()
	return []check{
		{what: "qemu-system-x86_64", need: "required", ok: haveCmd("qemu-system-x86_64"), fix: "apt-get install qemu-system-x86"},
		{what: "qemu-system-aarch64", need: "required", ok: haveCmd("qemu-system-aarch64"), fix: "apt-get install qemu-system-arm"},
		{what: "KVM", need: "optional", ok: kvmCheck, fix: "modprobe kvm_intel or kvm_amd; add yourself to group kvm"},
		{what: "busybox (x86_64 guest tools)", need: "required", ok: haveFile("/bin/busybox", "/usr/bin/busybox"), fix: "apt-get install busybox-static"},
		{what: "busybox (arm64 guest tools)", need: "required", ok: haveFile(filepath.Join(c, "debian/arm64/bin/busybox")), fix: "images/debian-kernels.sh (fetches busybox-static:arm64 with apt into the cache)"},
		{what: "mkfs.ext4", need: "required", ok: haveCmd("mkfs.ext4"), fix: "apt-get install e2fsprogs"},
		{what: "go (builds the guest agent)", need: "required", ok: haveCmd("go"), fix: "install Go 1.26 (https://go.dev/dl) or use a reprolab built with 'make', which ships the agents"},
		{what: "gcc, make, bison, flex, bc", need: "build", ok: allCmds("gcc", "make", "bison", "flex", "bc"), fix: "apt-get install build-essential bison flex bc"},
		{what: "kernel build headers (libssl, libelf)", need: "build", ok: haveFile("/usr/include/openssl/ssl.h", "/usr/include/gelf.h"), fix: "apt-get install libssl-dev libelf-dev"},
		{what: "aarch64-linux-gnu-gcc (arm64 cross builds)", need: "build", ok: haveCmd("aarch64-linux-gnu-gcc"), fix: "apt-get install gcc-aarch64-linux-gnu"},
		{what: "llvm-symbolizer or addr2line", need: "optional", ok: anyCmd("llvm-symbolizer", "addr2line"), fix: "apt-get install llvm"},
		{what: "crash (vmcore: what every CPU was doing)", need: "optional", ok: haveCmd("crash"), fix: "apt-get install crash"},
		{what: "Debian prebuilt kernels (tests, smoke runs)", need: "optional", ok: haveFile(filepath.Join(c, "debian/amd64/boot/vmlinuz-*")), fix: "images/debian-kernels.sh"},
	}
}

func allCmds(names ...string) func() (bool, string) {
	return func() (bool, string) {
		var missing []string
		for _, n := range names {
			if _, err := exec.LookPath(n); err != nil {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return false, "missing: " + strings.Join(missing, ", ")
		}
		return true, "all present"
	}
}

func anyCmd(names ...string) func() (bool, string) {
	return func() (bool, string) {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return true, p
			}
		}
		return false, "none of " + strings.Join(names, ", ")
	}
}

func newDoctorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "check the host for QEMU, KVM, busybox, mkfs.ext4, cross tools",
		Long:  "Check the host for what running guests and building kernels need. Exit 0 ready, 3 a required item is missing.",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runDoctor(cmd) },
	}
}

func runDoctor(cmd *cobra.Command) error {
	out := cmd.OutOrStdout()
	failed := 0
	for _, c := range doctorChecks() {
		ok, detail := c.ok()
		mark := "ok  "
		if !ok {
			mark = "MISS"
			if c.need == "required" {
				failed++
			}
		}
		fmt.Fprintf(out, "%s %-45s [%s] %s\n", mark, c.what, c.need, detail)
		if !ok {
			fmt.Fprintf(out, "     fix: %s\n", c.fix)
		}
	}
	if failed > 0 {
		return fault.Infraf("%d required item(s) missing; guests cannot run until they are installed", failed)
	}
	fmt.Fprintln(out, "reprolab doctor: ready to run guests")
	return nil
}
