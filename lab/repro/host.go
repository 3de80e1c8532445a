package repro

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// hostMemory is the host's RAM in bytes from /proc/meminfo (0 when unknown): a guest asking
// for more than that cannot run here, whatever the spec says.
func hostMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
