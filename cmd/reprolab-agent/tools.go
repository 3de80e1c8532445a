//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/dmcrypt"
	"golang.org/x/sys/unix"
)

// resolveDev turns "serial:NAME" into the /dev node of the virtio disk QEMU was given with
// serial=NAME; any other argument is taken as a device path. Disks may still be probing when
// a setup step runs, so it waits a little before giving up.
func resolveDev(arg string) (string, error) {
	name, ok := strings.CutPrefix(arg, "serial:")
	if !ok {
		if _, err := os.Stat(arg); err != nil {
			return "", err
		}
		return arg, nil
	}
	if name == "" {
		return "", errors.New(`empty serial: want "serial:NAME", NAME being the disk's name in the spec`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var seen []string
		files, _ := filepath.Glob("/sys/block/*/serial")
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			s := strings.TrimSpace(string(b))
			dev := filepath.Base(filepath.Dir(f))
			seen = append(seen, dev+"="+s)
			if s == name {
				return "/dev/" + dev, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no disk with serial %q (disks seen: %s); QEMU needs -device virtio-blk-pci,serial=%s", name, strings.Join(seen, " "), name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cmdDmcryptSwap(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errors.New("usage: dmcrypt-swap <dev|serial:NAME> [dm-name]")
	}
	dev, err := resolveDev(args[0])
	if err != nil {
		return err
	}
	name := "reprolab-swap"
	if len(args) == 2 {
		name = args[1]
	}
	node, err := dmcrypt.SetupSwap(name, dev)
	if err != nil {
		return err
	}
	fmt.Println(node)
	logf("dmcrypt-swap: %s on %s (%s) is swap", node, dev, name)
	return nil
}

func cmdMountExt4(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: mount-ext4 <dev|serial:NAME> <dir>")
	}
	dev, err := resolveDev(args[0])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(args[1], 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, args[1], "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount ext4 %s on %s: %w (is ext4 loaded and the disk formatted?)", dev, args[1], err)
	}
	fmt.Printf("%s on %s\n", dev, args[1])
	return nil
}

func cmdResolve(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: resolve serial:NAME")
	}
	dev, err := resolveDev(args[0])
	if err != nil {
		return err
	}
	fmt.Println(dev)
	return nil
}

func cmdInfo() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	fmt.Printf("kernel: %s %s %s\n", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:]))
	for _, f := range []string{"/proc/swaps", "/proc/mounts"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fmt.Printf("%s:\n%s", f, b)
	}
	return nil
}
