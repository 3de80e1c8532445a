package console

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/report"
)

// consoleLogs are the real guest consoles lab/report tests with; the header up to the first
// blank line is that package's expectations, the rest is the console as the guest printed it.
func consoleLogs(t testing.TB) map[string][]byte {
	files, _ := filepath.Glob("../report/testdata/linux/*.txt")
	if len(files) < 20 {
		t.Fatalf("only %d console logs in lab/report/testdata", len(files))
	}
	logs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
			b = b[i+2:]
		}
		logs[filepath.Base(f)] = b
	}
	return logs
}

// TestWatcherFindsCrashAsStreamed feeds each real console in random-size chunks, as QEMU's
// pipe delivers it, and checks the watcher fires exactly when the log holds a crash, at the
// report's first line, and that the log file holds every byte.
func TestWatcherFindsCrashAsStreamed(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for name, log := range consoleLogs(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "console.log")
			w, err := New(path)
			if err != nil {
				t.Fatal(err)
			}
			// A reboot is not the watcher's to see: guests run with -no-reboot, so QEMU
			// exits and the run ends; the report parser names it afterwards.
			var reps []*report.Report
			for _, r := range report.Parse(log) {
				if r.Title != "unexpected kernel reboot" {
					reps = append(reps, r)
				}
			}
			firedAt := -1
			for off := 0; off < len(log); {
				n := 1 + rng.Intn(300)
				if off+n > len(log) {
					n = len(log) - off
				}
				w.Write(log[off : off+n])
				off += n
				select {
				case <-w.Crash():
					if firedAt < 0 {
						firedAt = off
					}
				default:
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, log) {
				t.Fatalf("console.log has %d bytes, fed %d", len(got), len(log))
			}
			if len(reps) == 0 {
				if firedAt >= 0 {
					t.Fatalf("fired at byte %d on a log without a crash", firedAt)
				}
				return
			}
			if firedAt < 0 {
				t.Fatalf("never fired; first report %q at byte %d", reps[0].Title, reps[0].Start)
			}
			// It fires once the report's first line is complete, not later than one
			// chunk after that line's end.
			lineEnd := reps[0].Start + bytes.IndexByte(log[reps[0].Start:], '\n') + 1
			if firedAt < reps[0].Start || firedAt > lineEnd+300+4096 {
				t.Errorf("fired at byte %d, first report's line is %d-%d", firedAt, reps[0].Start, lineEnd)
			}
			if w.crashAt > reps[0].Start {
				t.Errorf("crash recorded at %d, after the report start %d", w.crashAt, reps[0].Start)
			}
		})
	}
}

func TestTailAndKernelTime(t *testing.T) {
	log := consoleLogs(t)["x86-sysrq-c.txt"]
	w, err := New(filepath.Join(t.TempDir(), "c.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(log)
	tail := w.Tail(3)
	if n := strings.Count(tail, "\n"); n != 2 {
		t.Errorf("Tail(3) has %d newlines:\n%s", n, tail)
	}
	if !strings.HasSuffix(string(bytes.TrimRight(log, "\n")), tail) {
		t.Errorf("Tail(3) is not the end of the log:\n%s", tail)
	}
	if d := KernelTime(log, "Linux version"); d != 0 {
		t.Errorf("KernelTime(Linux version) = %v, want 0", d)
	}
	if d := KernelTime(log, "Kernel panic - not syncing"); d <= 0 || d > time.Minute {
		t.Errorf("KernelTime(panic) = %v", d)
	}
	if d := KernelTime(log, "no such line"); d != -1 {
		t.Errorf("KernelTime(missing) = %v, want -1", d)
	}
}

// BenchmarkWatcher measures how fast the watcher takes console output (MB/s), which bounds
// how much a chatty guest can slow the console pump.
func BenchmarkWatcher(b *testing.B) {
	var all []byte
	for _, l := range consoleLogs(b) {
		if !report.ContainsCrash(l) {
			all = append(all, l...)
		}
	}
	all = bytes.Repeat(all, 20) // a long boot's worth, so file set-up does not dominate
	b.SetBytes(int64(len(all)))
	for i := 0; i < b.N; i++ {
		w, _ := New(filepath.Join(b.TempDir(), "c.log"))
		for off := 0; off < len(all); off += 4096 {
			end := min(off+4096, len(all))
			w.Write(all[off:end])
		}
		w.Close()
	}
}

// TestArrivalTimes checks that a marker's arrival is stamped when its line completes (a
// line split across writes counts at its end), and that first output and the crash line
// are stamped too: lab/repro accounts a run's seconds from them.
func TestArrivalTimes(t *testing.T) {
	w, err := New(filepath.Join(t.TempDir(), "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Track("reprolab-agent: ready")
	if !w.FirstOutput().IsZero() || !w.SeenAt("reprolab-agent: ready").IsZero() {
		t.Fatal("stamps before any output")
	}
	_, _ = w.Write([]byte("[    0.000000] Linux version 4.11.0\n[    3.1] reprolab-agent: re"))
	first := w.FirstOutput()
	if first.IsZero() || !w.SeenAt("reprolab-agent: ready").IsZero() {
		t.Fatalf("first output %v, marker %v after half a marker line", first, w.SeenAt("reprolab-agent: ready"))
	}
	time.Sleep(2 * time.Millisecond)
	_, _ = w.Write([]byte("ady\n"))
	at := w.SeenAt("reprolab-agent: ready")
	if !at.After(first) {
		t.Fatalf("marker stamped %v, not after the first output %v", at, first)
	}
	w.Track("Linux version") // tracked after it arrived: stamped from what was scanned
	if w.SeenAt("Linux version").IsZero() {
		t.Fatal("a marker tracked late is not found in earlier output")
	}
	_, _ = w.Write([]byte("[    9.0] BUG: unable to handle kernel NULL pointer dereference at 0000000000000008\n"))
	<-w.Crash()
	if w.CrashSeen().Before(at) {
		t.Fatalf("crash seen at %v, before the marker %v", w.CrashSeen(), at)
	}
}

// TestInitStart reads testdata/init: real boot consoles cut around user space's start, each
// headed by INIT: the kernel timestamp /init started at (or "none") and VIA: the line it is
// read from; "#" lines say what the case is.
func TestInitStart(t *testing.T) {
	files, _ := filepath.Glob("testdata/init/*.txt")
	if len(files) < 5 {
		t.Fatalf("only %d cases in testdata/init", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			head, log, ok := bytes.Cut(data, []byte("\n\n"))
			if !ok {
				t.Fatal("no blank line after the header")
			}
			want, via := time.Duration(-1), ""
			for _, l := range strings.Split(string(head), "\n") {
				switch k, v, _ := strings.Cut(l, ": "); k {
				case "INIT":
					if v != "none" {
						s, err := strconv.ParseFloat(v, 64)
						if err != nil {
							t.Fatalf("INIT %q: %v", v, err)
						}
						want = time.Duration(s * float64(time.Second))
					}
				case "VIA":
					via = v
				}
			}
			got, gotVia := InitStart(log)
			if got != want || gotVia != via {
				t.Errorf("InitStart = %v via %q, want %v via %q", got, gotVia, want, via)
			}
		})
	}
}
