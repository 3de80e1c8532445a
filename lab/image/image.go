// Package image assembles what a reprolab guest boots from: the base initramfs (the agent as
// /init, busybox, the kernel modules the guest needs, a baked-in SSH host key), the small
// per-run overlay that authorizes the run's client key, and the virtio disks.
//
// Everything is cached under the reprolab cache directory and addressed by content, so a
// second run with the same agent, busybox and modules reuses the same files byte for byte.
package image

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/cache"
)

// goarch maps the lab-wide architecture names to Go's.
func goarch(arch string) (string, error) {
	switch arch {
	case "x86_64":
		return "amd64", nil
	case "arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("architecture %q: want x86_64 or arm64", arch)
}

// DefaultCacheDir is $REPROLAB_CACHE, or ~/.cache/reprolab.
func DefaultCacheDir() string { return cache.Dir() }

// defaultBusybox is Debian's busybox-static: the host's own for the host architecture, the
// arm64 package unpacked by images/debian-kernels.sh otherwise.
func defaultBusybox(arch, cacheDir string) string {
	if ga, _ := goarch(arch); ga == runtime.GOARCH {
		return "/bin/busybox"
	}
	return filepath.Join(cacheDir, "debian", map[string]string{"x86_64": "amd64", "arm64": "arm64"}[arch], "bin", "busybox")
}

// writeFileAtomic writes b to path via a temporary file and rename, so concurrent builders
// (several engineers, parallel tests) never see a half-written cache entry.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	return atomicfile.Write(path, b, perm)
}
