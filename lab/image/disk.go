package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

// DiskSpec describes one virtio disk of a run. Name becomes the virtio-blk serial, by which
// the agent finds the disk ("serial:NAME").
type DiskSpec struct {
	Name   string
	Kind   string // "ext4" | "raw"
	SizeMB int
}

// virtio-blk serials hold at most 20 bytes (VIRTIO_BLK_ID_BYTES); QEMU truncates longer ones.
var diskName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,20}$`)

// mkfsArgs is how pristine ext4 images are made. Lazy init is off so the guest does not
// spend its first minutes zeroing inode tables in the background (ext4lazyinit would add
// I/O noise to a timing-sensitive reproducer). The default feature set of e2fsprogs 1.47
// (Debian 12) still mounts read-write on v4.11. Block size and usage type are pinned: below
// 512 MiB mke2fs would otherwise pick 1 KiB blocks ("small"), and sub-page blocks take other
// writeback paths (buffer heads) than the 4 KiB blocks of real systems.
var mkfsArgs = []string{"-t", "ext4", "-T", "default", "-b", "4096", "-F", "-q", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0", "-L", "reprolab"}

// MaxDiskMB bounds disk sizes; a larger request is more likely a unit mistake than a need.
const MaxDiskMB = 1 << 20

// MakeDisk returns a fresh writable disk image for d in runDir. A pristine ext4 image is
// made once per (size, mkfs arguments) in cacheDir and copied sparsely for each run, so
// runs never share or dirty each other's file systems.
func MakeDisk(ctx context.Context, cacheDir, runDir string, d DiskSpec) (string, error) {
	if !diskName.MatchString(d.Name) {
		return "", fmt.Errorf("disk name %q: want 1-20 of A-Z a-z 0-9 _ - (it becomes the virtio serial)", d.Name)
	}
	if d.SizeMB <= 0 || d.SizeMB > MaxDiskMB {
		return "", fmt.Errorf("disk %s: size %d MB out of range 1..%d", d.Name, d.SizeMB, MaxDiskMB)
	}
	size := int64(d.SizeMB) << 20
	switch d.Kind {
	case "raw":
		p := filepath.Join(runDir, d.Name+".raw")
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return "", fmt.Errorf("disk %s: %w", d.Name, err)
		}
		err = f.Truncate(size)
		if cerr := f.Close(); cerr != nil {
			err = multierror.Append(err, cerr)
		}
		if err != nil {
			return "", fmt.Errorf("disk %s: %w", d.Name, err)
		}
		return p, nil
	case "ext4":
		pristine, err := pristineExt4(ctx, cacheDir, d.SizeMB)
		if err != nil {
			return "", fmt.Errorf("disk %s: %w", d.Name, err)
		}
		p := filepath.Join(runDir, d.Name+".ext4")
		if err := sparseCopy(p, pristine); err != nil {
			return "", fmt.Errorf("disk %s: %w", d.Name, err)
		}
		return p, nil
	}
	return "", fmt.Errorf("disk %s: kind %q: want ext4 or raw", d.Name, d.Kind)
}

func pristineExt4(ctx context.Context, cacheDir string, sizeMB int) (string, error) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return "", errors.New("mkfs.ext4 not found: apt-get install e2fsprogs")
	}
	h := sha256.Sum256([]byte(strings.Join(mkfsArgs, "\x00")))
	p := filepath.Join(cacheDir, "disks", fmt.Sprintf("ext4-%dM-%s.img", sizeMB, hex.EncodeToString(h[:6])))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-ext4-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Truncate(int64(sizeMB) << 20)
	tmp.Close()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, mkfs, append(append([]string{}, mkfsArgs...), tmp.Name())...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mkfs.ext4 %s: %w\n%s", strings.Join(mkfsArgs, " "), err, out.String())
	}
	return p, os.Rename(tmp.Name(), p)
}

// sparseCopy copies src to dst, writing only the data extents (SEEK_DATA/SEEK_HOLE): a
// 1 GiB pristine file system is a few MB of data, and the copy stays that small.
func sparseCopy(dst, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil {
			err = multierror.Append(err, cerr)
		}
	}()
	size := st.Size()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(in.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return fmt.Errorf("sparse copy %s: SEEK_DATA: %w", src, err)
		}
		hole, err := unix.Seek(int(in.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("sparse copy %s: SEEK_HOLE: %w", src, err)
		}
		if _, err := io.CopyBuffer(io.NewOffsetWriter(out, data), io.NewSectionReader(in, data, hole-data), buf); err != nil {
			return fmt.Errorf("sparse copy %s: %w", src, err)
		}
		off = hole
	}
	return out.Truncate(size)
}

// CopyDisk copies a disk image for one run: a reflink where the file system shares
// extents (btrfs, XFS), else a sparse copy of the data extents.
func CopyDisk(dst, src string) error {
	if err := cloneFile(dst, src); err == nil {
		return nil
	}
	return sparseCopy(dst, src)
}

func cloneFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}
