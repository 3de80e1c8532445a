package repro

import (
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

var lookPath = exec.LookPath

// lastLines passes a command's output on to the guest log and keeps the last few KiB for
// error messages, plus when output last came (a command that prints is not hung).
type lastLines struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	when time.Time
}

func (l *lastLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		_, _ = l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	if len(l.buf) > 4096 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	l.when = time.Now()
	return len(p), nil
}

func (l *lastLines) last() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.when
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(string(l.buf))
	if s == "" {
		return "(no output)"
	}
	return s
}

func (r *run) lastGuestOutput() string {
	if r.lastOut == nil {
		return "(no output)"
	}
	return r.lastOut.String()
}
