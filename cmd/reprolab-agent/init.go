//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// runInit is PID 1. It must never return: the kernel panics when init exits.
func runInit() {
	start := time.Now()
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	os.Setenv("HOME", "/root")
	mountAll()
	logf("init: mounted file systems")
	quietUnknownSyscalls()
	// The reproducers push the guest into memory pressure on purpose; the OOM killer must
	// pick their processes before the agent. -999, not -1000: an unkillable agent turned
	// "nothing left to kill" into a kernel panic on v4.11 (a false crash); a killed server
	// is restarted instead. The server inherits this and undoes it for the commands it runs
	// (see runShim). PID 1 itself is never chosen by the OOM killer.
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-999"), 0); err != nil {
		logErr("init: oom_score_adj: %v", err)
	}
	// The server starts first: its own start is the longest step of the boot's user-space
	// part, and everything else here runs beside it. It finds its port as soon as the
	// transport modules are in, and its key exchange waits in getrandom until the seed below
	// is credited; the rest of the modules load behind it (modules.go).
	go func() {
		_ = unix.Sethostname([]byte("reprolab"))
		seedEntropy(randomSeed)
		loadModules(modulesList)
		logf("init: done in %v", time.Since(start).Round(time.Millisecond))
	}()
	supervise()
}

func mountAll() {
	for _, m := range []struct {
		src, dir, fstype, data string
		flags                  uintptr
	}{
		{"proc", "/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID},
		{"devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=666", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"tmpfs", "/tmp", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/run", "tmpfs", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
	} {
		_ = os.MkdirAll(m.dir, 0o755)
		err := unix.Mount(m.src, m.dir, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			logErr("init: mount %s on %s: %v", m.fstype, m.dir, err)
		}
	}
}

// randomSeed is written by the host into the per-run overlay.
const randomSeed = "/etc/reprolab/random-seed"

// seedEntropy credits the host's random seed to the kernel. An idle TCG guest gathers
// entropy slowly (6.1 took seconds, v4.11 can take minutes), and getrandom, which the SSH
// server's key exchange uses, blocks until the pool is initialized.
func seedEntropy(path string) {
	seed, err := os.ReadFile(path)
	if err != nil || len(seed) < 32 {
		logErr("init: no usable random seed at %s (%v); SSH may wait for kernel entropy", path, err)
		return
	}
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		logErr("init: %v", err)
		return
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	buf := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(buf[0:], uint32(8*len(seed)))
	binary.NativeEndian.PutUint32(buf[4:], uint32(len(seed)))
	copy(buf[8:], seed)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		logErr("init: RNDADDENTROPY: %v", e)
		return
	}
	_ = os.Remove(path) // a seed is used once
}

// supervise starts the SSH server as a child and then only reaps: orphans reparent to PID 1,
// while the server reaps its own commands, so exit statuses are never stolen.
func supervise() {
	var (
		server  int
		started time.Time
		backoff = time.Second
	)
	for {
		if server == 0 {
			cmd := exec.Command("/proc/self/exe", "serve")
			cmd.Args[0] = "/init"
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Start(); err != nil {
				logErr("init: start server: %v", err)
				time.Sleep(time.Second)
				continue
			}
			server, started = cmd.Process.Pid, time.Now()
		}
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err != nil {
			if !errors.Is(err, unix.EINTR) {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		if pid == server {
			// A server that keeps failing at start (say, no authorized_keys) is retried
			// ever more slowly, so its errors do not flood the console.
			if time.Since(started) > 30*time.Second {
				backoff = time.Second
			}
			logErr("init: server exited (%s); restarting in %v", describe(ws), backoff)
			server = 0
			time.Sleep(backoff)
			backoff = min(2*backoff, 30*time.Second)
		}
	}
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + unix.SignalName(ws.Signal())
	}
	return "status " + strconv.Itoa(ws.ExitStatus())
}

// quietUnknownSyscalls stops arm64 kernels from dumping a task's registers for every system
// call they lack. A Go program probes pidfd_open (434) once per process; on v4.11 arm64 each
// probe printed a 20-line "syscall 434" register dump, 400 of them in a 3-minute seed run,
// and that console flood slowed the guest's loop several-fold. x86-64 prints nothing there,
// and its exception trace (user segfaults, one line each) stays on.
func quietUnknownSyscalls() {
	if runtime.GOARCH != "arm64" {
		return
	}
	if err := os.WriteFile("/proc/sys/debug/exception-trace", []byte("0"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		logErr("init: debug.exception-trace: %v", err)
	}
}
