// Package console watches a guest's serial console as it streams: it keeps the whole log
// (in memory and in console.log, flushed as it arrives so a kill loses nothing), notices
// the first crash report the moment it starts, knows when that report is complete, and
// remembers when output last arrived (a silent guest is a hang candidate).
package console

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/reprolab/reprolab/lab/report"
)

// Watcher is an io.Writer fed with console bytes.
type Watcher struct {
	mu         sync.Mutex
	file       *os.File
	buf        []byte
	scanned    int // buf[:scanned] holds only complete lines already checked for a crash
	crashAt    int // offset of the line where the first crash starts, -1 if none
	crash      chan struct{}
	lastOutput time.Time
	// Arrival times, for accounting a run's seconds: the first byte, the crash line and
	// each tracked marker's first line (wall clock, as the bytes reached the host).
	firstOutput time.Time
	crashSeen   time.Time
	markers     map[string]time.Time
}

// New returns a watcher that also appends everything to path (created or truncated).
func New(path string) (*Watcher, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &Watcher{file: f, crashAt: -1, crash: make(chan struct{}), lastOutput: time.Now()}, nil
}

// Write implements io.Writer.
func (w *Watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file != nil {
		// An error here (disk full) must not stop the console pump that QEMU needs;
		// the in-memory copy still has it and Close reports the error.
		_, _ = w.file.Write(p)
	}
	w.buf = append(w.buf, p...)
	w.lastOutput = time.Now()
	if w.firstOutput.IsZero() && len(p) > 0 {
		w.firstOutput = w.lastOutput
	}
	if end := bytes.LastIndexByte(w.buf, '\n'); end >= w.scanned {
		w.stampMarkers(w.buf[w.scanned : end+1])
	}
	if w.crashAt >= 0 {
		if end := bytes.LastIndexByte(w.buf, '\n'); end >= w.scanned {
			w.scanned = end + 1
		}
		return len(p), nil
	}
	// Check only whole new lines: a crash header split across two writes must still
	// match. Back up a few lines so a multi-line header (arm64 prints the "Unable to
	// handle" line before "Internal error") is seen together.
	end := bytes.LastIndexByte(w.buf, '\n')
	if end < w.scanned {
		return len(p), nil
	}
	from := backLines(w.buf, w.scanned, 4)
	if report.ContainsCrash(w.buf[from : end+1]) {
		if rs := report.Parse(w.buf[from : end+1]); len(rs) > 0 {
			w.crashAt = from + rs[0].Start
		} else {
			w.crashAt = from
		}
		w.crashSeen = w.lastOutput
		close(w.crash)
	}
	w.scanned = end + 1
	return len(p), nil
}

func backLines(b []byte, at, n int) int {
	for ; n > 0 && at > 0; n-- {
		i := bytes.LastIndexByte(b[:at-1], '\n')
		at = i + 1
	}
	return at
}

// Track asks the watcher to remember when the first line containing each marker arrives.
func (w *Watcher) Track(markers ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.markers == nil {
		w.markers = map[string]time.Time{}
	}
	for _, m := range markers {
		if _, ok := w.markers[m]; !ok {
			w.markers[m] = time.Time{}
			// A marker tracked late may already be in what was scanned.
			if bytes.Contains(w.buf[:w.scanned], []byte(m)) {
				w.markers[m] = w.lastOutput
			}
		}
	}
}

func (w *Watcher) stampMarkers(lines []byte) {
	for m, at := range w.markers {
		if at.IsZero() && bytes.Contains(lines, []byte(m)) {
			w.markers[m] = w.lastOutput
		}
	}
}

// SeenAt is when the first line containing a tracked marker arrived; zero if not yet.
func (w *Watcher) SeenAt(marker string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.markers[marker]
}

// FirstOutput is when the console's first byte arrived; zero before that.
func (w *Watcher) FirstOutput() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstOutput
}

// CrashSeen is when the line starting the first crash report arrived; zero if none.
func (w *Watcher) CrashSeen() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.crashSeen
}

// Crash is closed when the first crash report starts on the console.
func (w *Watcher) Crash() <-chan struct{} { return w.crash }

// CrashComplete reports whether the first crash report has ended on the console.
func (w *Watcher) CrashComplete() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.crashAt >= 0 && report.Complete(w.buf[w.crashAt:])
}

// Bytes returns a copy of the console so far.
func (w *Watcher) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.buf...)
}

// Len is the number of console bytes so far: a cheap progress marker.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// LastOutput is when the console last produced output.
func (w *Watcher) LastOutput() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOutput
}

// Tail returns the last n lines of the console, for error messages.
func (w *Watcher) Tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := bytes.TrimRight(w.buf, "\n")
	at := len(b)
	for ; n > 0 && at > 0; n-- {
		at = bytes.LastIndexByte(b[:at], '\n')
		if at < 0 {
			at = 0
			break
		}
	}
	return string(bytes.TrimLeft(b[at:], "\n"))
}

// Close syncs and closes the console file.
func (w *Watcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file == nil {
		return nil
	}
	err := w.file.Sync()
	if cerr := w.file.Close(); err == nil {
		err = cerr
	}
	w.file = nil
	return err
}

var stampRe = regexp.MustCompile(`(?m)^\[\s*(\d+\.\d+)\]\s?(.*)$`)

// KernelTime returns the kernel timestamp of the first console line containing marker
// (printk timestamps, seconds since boot), or -1.
func KernelTime(log []byte, marker string) time.Duration {
	for _, m := range stampRe.FindAllSubmatch(log, -1) {
		if bytes.Contains(m[2], []byte(marker)) {
			return stamp(m[1])
		}
	}
	return -1
}

// Where user space starts, by the kernel's clock. 5.x and later kernels print runInit before
// they exec /init. Older ones (v4.11, v4.13) do not; there kernel_init's last lines before the
// exec, free_initmem's and mark_rodata_ro's "Freeing unused kernel ..." memory lines, stand
// in, and failing those the first line of /init itself (the agent's), which is late by
// however long /init takes to say something: a Go program's start, ~0.1–0.2 s under TCG.
const (
	runInit       = "Run /init as init process"
	initMemFreed  = "Freeing unused kernel"
	agentFirstMsg = "reprolab-agent: init"
)

// InitMarkers are lines of user space's start that every successful boot prints (the agent's
// first one at least), for callers that time their arrival on the host.
var InitMarkers = []string{runInit, agentFirstMsg}

// InitStart returns the kernel's timestamp when it started /init and the line it was read
// from (one of the three above), or -1 and "". An init-memory line printed after /init's
// first line is not the kernel's last word before the exec, so it does not count.
func InitStart(log []byte) (time.Duration, string) {
	var freed time.Duration = -1
	for _, m := range stampRe.FindAllSubmatch(log, -1) {
		text := m[2]
		switch {
		case bytes.Contains(text, []byte(runInit)):
			return stamp(m[1]), runInit
		case bytes.Contains(text, []byte(agentFirstMsg)):
			if freed >= 0 {
				return freed, initMemFreed
			}
			return stamp(m[1]), agentFirstMsg
		case bytes.Contains(text, []byte(initMemFreed)):
			freed = stamp(m[1])
		}
	}
	if freed >= 0 {
		return freed, initMemFreed
	}
	return -1, ""
}

func stamp(s []byte) time.Duration {
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}
