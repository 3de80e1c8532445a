// Package hostload reads the host's load average and says when the host is busy.
//
// A race's crash rate changes several-fold with host load (the seed: 20 s to a panic on an
// idle host, 111–306 s while a kernel build shared the two cores), so every run records the
// load it ran under, and the drivers that compare rates (matrix, validate, bisect) warn when
// they start on a host whose load is above its cores.
package hostload

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Load is the 1, 5 and 15 minute load averages and the host's usable cores.
type Load struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
	Cores  int     `json:"cores"`
}

// path is /proc/loadavg; a variable so tests can point it at testdata.
var path = "/proc/loadavg"

// Read returns the current load averages.
func Read() (Load, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Load{}, fmt.Errorf("host load: %w", err)
	}
	l, err := Parse(string(b))
	if err != nil {
		return Load{}, fmt.Errorf("host load: %s: %w", path, err)
	}
	l.Cores = runtime.NumCPU()
	return l, nil
}

// Parse reads the first three fields of /proc/loadavg.
func Parse(s string) (Load, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return Load{}, errors.New("want at least three fields (1, 5 and 15 minute averages)")
	}
	var v [3]float64
	for i := range v {
		x, err := strconv.ParseFloat(f[i], 64)
		if err != nil || x < 0 {
			return Load{}, fmt.Errorf("field %d %q is not a load average", i+1, f[i])
		}
		v[i] = x
	}
	return Load{Load1: v[0], Load5: v[1], Load15: v[2]}, nil
}

// Busy says whether more runnable work than cores was waiting over the last minute.
func (l Load) Busy() bool { return l.Cores > 0 && l.Load1 > float64(l.Cores) }

func (l Load) String() string {
	return fmt.Sprintf("load %.2f %.2f %.2f on %d cores", l.Load1, l.Load5, l.Load15, l.Cores)
}

// Warning is the line a driver prints when it starts on a busy host, or "" when the host is
// not busy (or its load cannot be read).
func Warning(what string) string {
	l, err := Read()
	if err != nil || !l.Busy() {
		return ""
	}
	return fmt.Sprintf("warning: %s starts on a busy host (%s): crash rates and timings measured now are not comparable with an idle host's; each run records its load", what, l)
}
