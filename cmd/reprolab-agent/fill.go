//go:build linux

package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// cmdFillTmpfs mounts a tmpfs of tmpfsMB at dir and fills it with sizeMB files of one MiB
// (fill.0 … fill.N-1), all from this one process: the shell loop it replaces started a dd
// per MiB, 200 process starts under TCG. The data is incompressible (ChaCha8 keyed from
// the kernel's RNG), as /dev/urandom's was, so swap sees the same pages it did.
func cmdFillTmpfs(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: fill-tmpfs DIR SIZE_MB TMPFS_MB")
	}
	dir := args[0]
	size, err1 := strconv.Atoi(args[1])
	tsize, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || size < 1 || tsize < size {
		return fmt.Errorf("fill-tmpfs: sizes %q %q: want SIZE_MB ≥ 1 and TMPFS_MB ≥ SIZE_MB", args[1], args[2])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dM", tsize)); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	src := mrand.NewChaCha8(seed)
	buf := make([]byte, 1<<20)
	start := time.Now()
	for i := 0; i < size; i++ {
		_, _ = src.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, "fill."+strconv.Itoa(i)), buf, 0o644); err != nil {
			return fmt.Errorf("fill %s after %d MiB: %w", dir, i, err)
		}
	}
	logf("fill-tmpfs: %d MiB in %s in %v", size, dir, time.Since(start).Round(time.Millisecond))
	return nil
}
