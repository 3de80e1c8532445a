package kbuild

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress reports the build phase and, while compiling, how far make got.
// On a terminal one line is rewritten in place; otherwise plain log lines
// are written at each phase and every 250 files, so CI logs stay short.
type progress struct {
	w     io.Writer
	tty   bool
	name  string
	total int // C files of the last full build of this config, 0 if unknown
	last  time.Time
	n     int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) phase(name, detail string) {
	if p.w == nil || name == p.name && detail == "" {
		return
	}
	p.name = name
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[Kkbuild: %s %s", name, detail)
		return
	}
	if detail != "" {
		detail = ": " + detail
	}
	fmt.Fprintf(p.w, "kbuild: %s%s\n", name, detail)
}

func (p *progress) compiled(n int) {
	if p.w == nil {
		return
	}
	p.n = n
	pct := ""
	if p.total > 0 {
		x := 100 * n / p.total
		if x > 99 {
			x = 99
		}
		pct = fmt.Sprintf(" %d%%", x)
	}
	if p.tty {
		if time.Since(p.last) > 200*time.Millisecond {
			p.last = time.Now()
			fmt.Fprintf(p.w, "\r\033[Kkbuild: compile%s (%d files)", pct, n)
		}
		return
	}
	if n%250 == 0 {
		fmt.Fprintf(p.w, "kbuild: compile%s (%d files)\n", pct, n)
	}
}

func (p *progress) done() {
	if p.w != nil && p.tty {
		fmt.Fprintln(p.w)
	}
}
