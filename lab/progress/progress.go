// Package progress is the lab's one progress display, for kernel builds, reproducer loops
// and whole matrices: on a terminal, one bar per task with its phase, percent and ETA
// (vbauerster/mpb) and notices printed above the bars; anywhere else (CI logs, files,
// tests) plain timestamped lines, one per phase change or notice and a throttled count.
//
// A Display is an io.Writer, so it travels through the Progress io.Writer fields of
// lab/kbuild, lab/repro and lab/campaign unchanged: From finds the Display behind a
// writer, and Prefix names what a writer's lines and tasks belong to (a build key, a
// matrix run) without hiding the Display from the code further down.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Display is where one command's progress goes.
type Display struct {
	out io.Writer
	p   *mpb.Progress // nil: plain lines
	now func() time.Time

	mu  sync.Mutex
	buf []byte
}

// New makes a display on w: bars when w is a terminal, plain lines otherwise.
func New(w io.Writer) *Display {
	f, ok := w.(*os.File)
	return newDisplay(w, ok && term.IsTerminal(int(f.Fd())), 0)
}

// newDisplay draws bars on w when bars is set, width columns wide (0: the terminal's).
func newDisplay(w io.Writer, bars bool, width int) *Display {
	d := &Display{out: w, now: time.Now}
	if bars {
		opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(150 * time.Millisecond), mpb.WithAutoRefresh()}
		if width > 0 {
			opts = append(opts, mpb.WithWidth(width))
		}
		d.p = mpb.New(opts...)
	}
	return d
}

// TTY says whether the display draws bars.
func (d *Display) TTY() bool { return d != nil && d.p != nil }

// Write prints complete lines as notices.
func (d *Display) Write(b []byte) (int, error) { return d.write("", b) }

func (d *Display) write(prefix string, b []byte) (int, error) {
	if d == nil {
		return len(b), nil
	}
	d.mu.Lock()
	d.buf = append(d.buf, b...)
	var lines []string
	for {
		i := strings.IndexByte(string(d.buf), '\n')
		if i < 0 {
			break
		}
		lines = append(lines, strings.TrimRight(string(d.buf[:i]), "\r"))
		d.buf = d.buf[i+1:]
	}
	d.mu.Unlock()
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			d.line(prefix + l)
		}
	}
	return len(b), nil
}

// Noticef prints one notice line.
func (d *Display) Noticef(format string, a ...any) {
	if d != nil {
		d.line(fmt.Sprintf(format, a...))
	}
}

// line prints one line: above the bars, or with a timestamp.
func (d *Display) line(s string) {
	if d.p != nil {
		fmt.Fprintln(d.p, s)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "%s %s\n", d.now().Format("15:04:05"), s)
}

// Close stops the bars (a finished command must not leave a redraw running). Plain
// displays have nothing to stop.
func (d *Display) Close() {
	if d != nil && d.p != nil {
		d.p.Shutdown()
	}
}

// prefixed is a writer into a Display whose lines and tasks carry a prefix.
type prefixed struct {
	d      *Display
	prefix string
}

func (p *prefixed) Write(b []byte) (int, error) { return p.d.write(p.prefix, b) }

// From is the Display behind w and the prefix its lines carry: w itself or the Display
// a Prefix writer leads to; for any other writer a new Display on it (owned true: the
// caller closes it). A nil w gives a nil Display, on which every method does nothing.
func From(w io.Writer) (d *Display, prefix string, owned bool) {
	switch v := w.(type) {
	case nil:
		return nil, "", false
	case *Display:
		return v, "", false
	case *prefixed:
		return v.d, v.prefix, false
	}
	return New(w), "", true
}

// Prefix is a writer into w's Display whose lines (and tasks started on it) begin with
// prefix, e.g. "build x86_64_v4.11: ".
func Prefix(w io.Writer, prefix string) io.Writer {
	if w == nil {
		return nil
	}
	d, p, _ := From(w)
	return &prefixed{d: d, prefix: p + prefix}
}

// Task is one long job: a bar with its phase, percent and ETA on a terminal; on plain
// output a line at each phase change and at most one count line per Every.
type Task struct {
	d      *Display
	owned  bool
	prefix string // of the writer the task started on, for its notices
	name   string
	bar    *mpb.Bar
	start  time.Time
	// Every throttles count lines on plain output (default 30 s).
	Every time.Duration

	mu             sync.Mutex
	phase, detail  string
	status         string
	current, total int64
	lastCount      time.Time
	done           bool
}

// Start begins a task on w's Display, named with w's prefix and name.
func Start(w io.Writer, name string) *Task {
	d, prefix, owned := From(w)
	t := &Task{d: d, owned: owned, prefix: prefix, name: prefix + name, start: time.Now(), Every: 30 * time.Second}
	if d != nil && d.p != nil {
		t.bar = d.p.AddBar(0, mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return t.label() })),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return t.figures() })))
	}
	return t
}

// Phase sets what the task is doing now ("compile", "loop"), with an optional detail.
func (t *Task) Phase(phase, detail string) {
	if t == nil || t.d == nil {
		return
	}
	t.mu.Lock()
	changed := phase != t.phase || detail != t.detail
	t.phase, t.detail = phase, detail
	t.mu.Unlock()
	if changed && t.bar == nil {
		t.d.line(t.label())
	}
}

// Status sets a live detail shown on the bar only ("iteration 12/300 41s"): plain output
// gets it with the next count line instead of a line per change.
func (t *Task) Status(s string) {
	if t == nil || t.d == nil {
		return
	}
	t.mu.Lock()
	t.status = s
	t.mu.Unlock()
}

// Noticef prints a line about the task (prefixed like the writer it started on).
func (t *Task) Noticef(format string, a ...any) {
	if t == nil || t.d == nil {
		return
	}
	t.d.line(t.prefix + fmt.Sprintf(format, a...))
}

// Progress sets how far the task is: current of total (total 0: unknown, no percent).
func (t *Task) Progress(current, total int64) {
	if t == nil || t.d == nil {
		return
	}
	t.mu.Lock()
	t.current, t.total = current, total
	due := t.bar == nil && time.Since(t.lastCount) >= t.Every
	if due {
		t.lastCount = time.Now()
	}
	t.mu.Unlock()
	if t.bar != nil {
		if total > 0 {
			t.bar.SetTotal(total+1, false) // +1: the bar completes at Done, not at 100%
		}
		t.bar.SetCurrent(current)
		return
	}
	if due {
		t.d.line(t.label() + " " + t.figures())
	}
}

// Done ends the task: its bar goes away (a display it made for itself is closed).
func (t *Task) Done() {
	if t == nil || t.d == nil {
		return
	}
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return
	}
	t.done = true
	t.mu.Unlock()
	if t.bar != nil {
		t.bar.SetTotal(-1, true)
		t.bar.Wait()
	}
	if t.owned {
		t.d.Close()
	}
}

func (t *Task) label() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.name
	if t.phase != "" {
		s += ": " + t.phase
	}
	if t.detail != "" {
		s += " " + t.detail
	}
	if t.status != "" {
		s += " " + t.status
	}
	return s
}

// figures is "42% (1234/2900), ETA 3m10s", or the count alone without a total.
func (t *Task) figures() string {
	t.mu.Lock()
	cur, tot := t.current, t.total
	t.mu.Unlock()
	if tot <= 0 {
		if cur == 0 {
			return ""
		}
		return fmt.Sprintf("(%d)", cur)
	}
	pct := min(99, 100*cur/tot)
	s := fmt.Sprintf("%d%% (%d/%d)", pct, cur, tot)
	if cur > 0 && cur < tot {
		el := time.Since(t.start)
		eta := time.Duration(float64(el) * float64(tot-cur) / float64(cur))
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}
