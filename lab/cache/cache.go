// Package cache names the one folder where reprolab keeps everything it fetches or
// builds — kernel sources and builds, initramfs and disk images, the guest agent, the KVM
// verdict — outside the repository, so that nothing fetched or built is ever committed.
package cache

import (
	"os"
	"path/filepath"
)

// Dir is $REPROLAB_CACHE, else ~/.cache/reprolab (a temp folder when there is no home).
func Dir() string {
	if d := os.Getenv("REPROLAB_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "reprolab-cache")
	}
	return filepath.Join(home, ".cache", "reprolab")
}
