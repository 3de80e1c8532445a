package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes.Buffer safe for mpb's render goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPlainLines(t *testing.T) {
	var out syncBuf
	d := New(&out) // not a terminal: plain lines
	d.now = func() time.Time { return time.Date(2026, 12, 2, 14, 5, 9, 0, time.UTC) }
	if d.TTY() {
		t.Fatal("a buffer is no terminal")
	}
	w := Prefix(Prefix(d, "matrix m: "), "run r1: ")
	task := Start(w, "kbuild")
	task.Every = 0
	task.Phase("compile", "")
	task.Phase("compile", "")  // unchanged: no second line
	task.Status("mm/vmscan.o") // bar only: no line of its own
	task.Progress(50, 200)
	task.Noticef("warning: %s", "x")
	io := w.(*prefixed)
	io.Write([]byte("boot: agent answered\n\npartial "))
	io.Write([]byte("line\r\n"))
	task.Done()
	want := strings.Join([]string{
		"14:05:09 matrix m: run r1: kbuild: compile",
		"14:05:09 matrix m: run r1: kbuild: compile mm/vmscan.o 25% (50/200), ETA ",
	}, "\n")
	got := out.String()
	if !strings.HasPrefix(got, want) {
		t.Fatalf("got:\n%s\nwant it to start with:\n%s", got, want)
	}
	for _, l := range []string{"14:05:09 matrix m: run r1: boot: agent answered\n", "14:05:09 matrix m: run r1: partial line\n", "14:05:09 matrix m: run r1: warning: x\n"} {
		if !strings.Contains(got, l) {
			t.Errorf("lacks %q:\n%s", l, got)
		}
	}
	if strings.Contains(got, "\033") || strings.Contains(got, "\r") {
		t.Errorf("plain output holds terminal escapes: %q", got)
	}
	if strings.Count(got, "\n") != 5 {
		t.Errorf("want 5 lines (phase, count, 3 notices):\n%s", got)
	}
}

// On a terminal the task is a bar with its phase, percent and ETA, and notices go above it.
func TestBars(t *testing.T) {
	var out syncBuf
	d := newDisplay(&out, true, 160)
	task := Start(Prefix(d, "x86_64: "), "kbuild")
	task.Phase("compile", "mm/")
	task.Progress(30, 120)
	d.Noticef("cached tree reused")
	time.Sleep(400 * time.Millisecond) // a few refreshes
	task.Done()
	d.Close()
	got := out.String()
	for _, want := range []string{"x86_64: kbuild: compile mm/", "25% (30/120), ETA", "cached tree reused"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar output lacks %q:\n%q", want, got)
		}
	}
}

func TestNilSafe(t *testing.T) {
	var task *Task
	task.Phase("x", "")
	task.Progress(1, 2)
	task.Done()
	nt := Start(nil, "n")
	nt.Phase("p", "")
	nt.Done()
	if Prefix(nil, "p") != nil {
		t.Fatal("Prefix(nil) must stay nil")
	}
}
