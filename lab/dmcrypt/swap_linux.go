package dmcrypt

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

// controlPath is the device-mapper control node devtmpfs creates once dm-mod is loaded.
const controlPath = "/dev/mapper/control"

func dmIoctl(ctl *os.File, req uintptr, buf []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), req, uintptr(unsafe.Pointer(&buf[0])))
	if e != 0 {
		return e
	}
	return nil
}

func openControl() (*os.File, error) {
	f, err := os.OpenFile(controlPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s (is dm-mod loaded / CONFIG_BLK_DEV_DM set?): %w", controlPath, err)
	}
	return f, nil
}

// CreateCrypt maps dev (a block device path) through dm-crypt aes-xts-plain64 with key as the
// device-mapper device name, activates it and returns its node (/dev/dm-N).
func CreateCrypt(name, dev string, key []byte) (node string, err error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", fmt.Errorf("dm-crypt backing device: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("dm-crypt backing device %s is not a block device", dev)
	}
	sectors, err := blockSectors(dev)
	if err != nil {
		return "", err
	}
	params, err := CryptParams(key, fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	if err != nil {
		return "", err
	}
	ctl, err := openControl()
	if err != nil {
		return "", err
	}
	defer ctl.Close()

	buf, err := request(name, 0, nil)
	if err != nil {
		return "", err
	}
	if err := dmIoctl(ctl, unix.DM_DEV_CREATE, buf); err != nil {
		return "", fmt.Errorf("DM_DEV_CREATE %s: %w", name, err)
	}
	// struct dm_ioctl.dev holds the new device's number (huge_encode_dev).
	devno := *(*uint64)(unsafe.Pointer(&buf[40]))
	defer func() {
		if err != nil {
			if rb, e := request(name, 0, nil); e == nil {
				if e := dmIoctl(ctl, unix.DM_DEV_REMOVE, rb); e != nil {
					err = multierror.Append(err, fmt.Errorf("DM_DEV_REMOVE %s: %w", name, e))
				}
			}
		}
	}()

	buf, err = request(name, flagSecureData, []Target{{Start: 0, Length: sectors, Type: "crypt", Params: params}})
	if err != nil {
		return "", err
	}
	if err := dmIoctl(ctl, unix.DM_TABLE_LOAD, buf); err != nil {
		return "", fmt.Errorf("DM_TABLE_LOAD %s (crypt aes-xts-plain64 on %s; are dm-crypt, xts and aes available?): %w", name, dev, err)
	}
	clear(buf)
	// DM_DEV_SUSPEND without DM_SUSPEND_FLAG resumes the device, which swaps in the loaded table.
	buf, err = request(name, 0, nil)
	if err != nil {
		return "", err
	}
	if err := dmIoctl(ctl, unix.DM_DEV_SUSPEND, buf); err != nil {
		return "", fmt.Errorf("DM_DEV_SUSPEND (resume) %s: %w", name, err)
	}
	node = fmt.Sprintf("/dev/dm-%d", unix.Minor(devno))
	if err := waitNode(node, unix.Major(devno), unix.Minor(devno)); err != nil {
		return "", err
	}
	return node, nil
}

// waitNode waits for devtmpfs to publish node; if there is no devtmpfs it makes the node.
func waitNode(node string, major, minor uint32) error {
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(node); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		return fmt.Errorf("device node %s did not appear and mknod failed: %w", node, err)
	}
	return nil
}

func blockSectors(dev string) (uint64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var size uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
		return 0, fmt.Errorf("BLKGETSIZE64 %s: %w", dev, e)
	}
	if size < 512 {
		return 0, fmt.Errorf("block device %s is empty", dev)
	}
	return size / 512, nil
}

// MakeSwap writes a swap signature covering the whole of dev.
func MakeSwap(dev string) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("size of %s: %w", dev, err)
	}
	var uuid [16]byte
	_, _ = rand.Read(uuid[:])
	uuid[6] = uuid[6]&0x0f | 0x40 // RFC 4122 version 4, as mkswap does
	uuid[8] = uuid[8]&0x3f | 0x80
	page, err := SwapHeader(size, unix.Getpagesize(), uuid, "reprolab")
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	if _, err := f.WriteAt(page, 0); err != nil {
		return fmt.Errorf("write swap header to %s: %w", dev, err)
	}
	return f.Sync()
}

// Swapon enables swap on dev.
func Swapon(dev string) error {
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		return fmt.Errorf("swapon %s: %w", dev, e)
	}
	return nil
}

// SetupSwap maps dev through dm-crypt with a random key under name, writes a swap signature
// to the mapping and enables it. It returns the dm device node.
func SetupSwap(name, dev string) (string, error) {
	key, err := RandomKey()
	if err != nil {
		return "", err
	}
	node, err := CreateCrypt(name, dev, key)
	clear(key)
	if err != nil {
		return "", err
	}
	if err := MakeSwap(node); err != nil {
		return node, err
	}
	if err := Swapon(node); err != nil {
		return node, err
	}
	// Check what the kernel says rather than trusting the syscall alone.
	b, err := os.ReadFile("/proc/swaps")
	if err == nil && !strings.Contains(string(b), node) {
		return node, fmt.Errorf("swapon %s succeeded but /proc/swaps does not list it:\n%s", node, b)
	}
	return node, nil
}
