// Package dmcrypt sets up encrypted swap inside a guest without cryptsetup: it speaks the
// device-mapper ioctl interface directly, writes the swap signature itself and calls swapon.
//
// The guest initramfs has no libc and no cryptsetup, and the reproducers need swap on dm-crypt
// on kernels as old as v4.11, whose dm ioctl interface (major version 4) is the same one newer
// kernels speak; so the few ioctls are spelled out here rather than pulled in from a tool.
package dmcrypt

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// ioctlSize is the size of the buffer handed to every dm ioctl. The kernel copies
// data_size bytes in and may write status back into the same buffer, so it is generous.
const ioctlSize = 16 << 10

// headerSize is sizeof(struct dm_ioctl) on every Linux architecture (it is packed to 8).
const headerSize = 312

// targetSpecSize is sizeof(struct dm_target_spec).
const targetSpecSize = 40

// Version 4.0.0 asks for nothing newer than the first v4 interface: the kernel accepts any
// request whose major matches and whose minor is not above its own, so this works on v4.11
// (4.35) as well as 6.1 (4.47).
var ioctlVersion = [3]uint32{4, 0, 0}

// Flag bits of struct dm_ioctl that this package uses.
const (
	flagSuspend    = 1 << 1  // DM_SUSPEND_FLAG: with DM_DEV_SUSPEND, suspend; without it, resume.
	flagSecureData = 1 << 15 // DM_SECURE_DATA_FLAG: wipe the key from kernel buffers.
)

// Target is one line of a device-mapper table.
type Target struct {
	Start, Length uint64 // in 512-byte sectors
	Type          string // e.g. "crypt"
	Params        string
}

// request encodes struct dm_ioctl plus its targets for name, laid out as the kernel reads it:
// header, then each dm_target_spec followed by its NUL-terminated params, 8-byte aligned.
func request(name string, flags uint32, targets []Target) ([]byte, error) {
	if len(name) == 0 || len(name) >= 128 {
		return nil, fmt.Errorf("dm name %q: must be 1..127 bytes", name)
	}
	buf := make([]byte, ioctlSize)
	le := binary.LittleEndian // every architecture we run (x86_64, arm64) is little-endian
	for i, v := range ioctlVersion {
		le.PutUint32(buf[4*i:], v)
	}
	le.PutUint32(buf[12:], ioctlSize)  // data_size
	le.PutUint32(buf[16:], headerSize) // data_start
	le.PutUint32(buf[20:], uint32(len(targets)))
	le.PutUint32(buf[28:], flags)
	copy(buf[48:48+127], name)
	off := headerSize
	for _, t := range targets {
		if len(t.Type) >= 16 {
			return nil, fmt.Errorf("dm target type %q too long", t.Type)
		}
		n := targetSpecSize + len(t.Params) + 1
		n = (n + 7) &^ 7
		if off+n > len(buf) {
			return nil, errors.New("dm table does not fit the ioctl buffer")
		}
		s := buf[off:]
		le.PutUint64(s[0:], t.Start)
		le.PutUint64(s[8:], t.Length)
		le.PutUint32(s[20:], uint32(n)) // next: offset of the following spec from this one
		copy(s[24:40], t.Type)
		copy(s[40:], t.Params)
		off += n
	}
	return buf, nil
}

// CryptParams is the dm-crypt table line for an aes-xts-plain64 mapping of dev (a "major:minor"
// or a path) keyed with key, which must be 64 bytes (AES-256 in XTS mode).
func CryptParams(key []byte, dev string) (string, error) {
	if len(key) != 64 {
		return "", fmt.Errorf("aes-xts-plain64 key: %d bytes, want 64", len(key))
	}
	return fmt.Sprintf("aes-xts-plain64 %s 0 %s 0", hex.EncodeToString(key), dev), nil
}

// RandomKey returns a fresh 512-bit key. Swap contents never outlive the guest, so the key is
// thrown away too.
func RandomKey() ([]byte, error) {
	k := make([]byte, 64)
	_, err := rand.Read(k)
	return k, err
}

// Swap signature layout (include/linux/swap.h, union swap_header): the magic sits in the last
// ten bytes of the first page, the info block at byte 1024.
const (
	swapMagic      = "SWAPSPACE2"
	swapInfoOffset = 1024
)

// SwapHeader returns the first page of a version-1 swap area of size bytes, as mkswap writes it.
func SwapHeader(size int64, pageSize int, uuid [16]byte, label string) ([]byte, error) {
	if pageSize < 4096 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("page size %d: want a power of two >= 4096", pageSize)
	}
	pages := size / int64(pageSize)
	if pages < 10 {
		return nil, fmt.Errorf("swap area of %d bytes is too small (want at least 10 pages of %d)", size, pageSize)
	}
	if pages-1 > 0xffffffff {
		pages = 0x100000000
	}
	if len(label) > 16 {
		return nil, fmt.Errorf("swap label %q longer than 16 bytes", label)
	}
	p := make([]byte, pageSize)
	le := binary.LittleEndian
	le.PutUint32(p[swapInfoOffset:], 1)                 // version
	le.PutUint32(p[swapInfoOffset+4:], uint32(pages-1)) // last_page
	le.PutUint32(p[swapInfoOffset+8:], 0)               // nr_badpages
	copy(p[swapInfoOffset+12:], uuid[:])                // sws_uuid
	copy(p[swapInfoOffset+28:swapInfoOffset+44], label) // sws_volume
	copy(p[pageSize-len(swapMagic):], swapMagic)
	return p, nil
}

// SwapInfo is what a swap signature says, as parsed by ParseSwapHeader.
type SwapInfo struct {
	Version, LastPage, BadPages uint32
	UUID                        [16]byte
	Label                       string
}

// ParseSwapHeader reads the signature in the first page of a swap area.
func ParseSwapHeader(page []byte) (SwapInfo, error) {
	var si SwapInfo
	if len(page) < 4096 || !bytes.HasSuffix(page, []byte(swapMagic)) {
		return si, errors.New("no SWAPSPACE2 signature at the end of the first page")
	}
	le := binary.LittleEndian
	si.Version = le.Uint32(page[swapInfoOffset:])
	si.LastPage = le.Uint32(page[swapInfoOffset+4:])
	si.BadPages = le.Uint32(page[swapInfoOffset+8:])
	copy(si.UUID[:], page[swapInfoOffset+12:])
	si.Label = string(bytes.TrimRight(page[swapInfoOffset+28:swapInfoOffset+44], "\x00"))
	return si, nil
}
