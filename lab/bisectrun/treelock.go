package bisectrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/reprolab/reprolab/lab/fault"
)

// LockTree takes the kept tree's lock (<dir>.lock) for moving the tree to a commit and
// building from it: two bisections of the same config, or a nightly and a bisection, share
// the tree and must not move it under each other's build. It waits for the holder,
// polling so that ctx stops the wait; the kernel drops the lock when its holder dies.
func LockTree(ctx context.Context, dir string, progress io.Writer) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fault.Infraf("kept tree %s: %v", dir, err)
	}
	f, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fault.Infraf("kept tree lock: %v", err)
	}
	said := false
	for {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return func() { f.Close() }, nil
		}
		if !said && progress != nil {
			fmt.Fprintf(progress, "bisect: waiting for the kept tree %s (another bisection or nightly is building in it)\n", dir)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
