//go:build linux

package main

import (
	"fmt"
	"os"
	"sync"
)

// kmsg sends progress lines to the kernel log so they appear on the console interleaved with
// the kernel's own messages and carry its timestamps; the host measures boot phases from them.
var kmsg struct {
	once sync.Once
	f    *os.File
}

// Kernel log levels used: notice for progress (shown unless the console log level is lowered,
// e.g. by "quiet"), err for failures that must not be missed.
const (
	levelNotice = 5
	levelErr    = 3
)

func logf(format string, args ...any)   { logLevel(levelNotice, format, args...) }
func logErr(format string, args ...any) { logLevel(levelErr, format, args...) }

func logLevel(level int, format string, args ...any) {
	kmsg.once.Do(func() {
		kmsg.f, _ = os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	})
	line := fmt.Sprintf("reprolab-agent: "+format, args...)
	if kmsg.f != nil {
		// One write is one record; the kernel parses the <level> prefix.
		if _, err := fmt.Fprintf(kmsg.f, "<%d>%s\n", level, line); err == nil {
			return
		}
	}
	fmt.Fprintln(os.Stderr, line)
}
