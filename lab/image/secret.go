package image

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// The guest's SSH host private key lives in the cache and is baked into every base
// initramfs, so both the key and the images are secrets: whoever reads them can pose as
// any guest to the lab. They are kept 0600 in 0700 folders, and caches written before
// that rule are tightened when next used.

// secretDir makes dir (and its missing parents) private to the user, tightening it if it
// already exists.
func secretDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// secretFile tightens an existing cache file that holds a secret.
func secretFile(path string) error {
	return os.Chmod(path, 0o600)
}

// withLock runs f holding an exclusive flock on lockPath: concurrent reprolab processes on
// one cache take turns, and the kernel drops the lock of a holder that dies.
func withLock(lockPath string, f func() error) error {
	fd, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	defer fd.Close()
	if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(fd.Fd()), syscall.LOCK_UN)
	return f()
}

// keysDir is where the host key lives.
func keysDir(cacheDir string) string { return filepath.Join(cacheDir, "keys") }
