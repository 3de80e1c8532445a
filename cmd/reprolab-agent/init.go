//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// modulesList names the kernel modules to load, one path per line, in dependency order.
const modulesList = "/etc/reprolab/modules"

// runInit is PID 1. It must never return: the kernel panics when init exits.
func runInit() {
	start := time.Now()
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	os.Setenv("HOME", "/root")
	mountAll()
	logf("init: mounted file systems")
	// The reproducers push the guest into memory pressure on purpose; the OOM killer must
	// pick their processes before the agent. -999, not -1000: an unkillable agent turned
	// "nothing left to kill" into a kernel panic on v4.11 (a false crash); a killed server
	// is restarted instead. The server inherits this and undoes it for the commands it runs
	// (see runShim). PID 1 itself is never chosen by the OOM killer.
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-999"), 0); err != nil {
		logErr("init: oom_score_adj: %v", err)
	}
	_ = unix.Sethostname([]byte("reprolab"))
	seedEntropy(randomSeed)
	mstart := time.Now()
	n, failed, slowest, slowestTime := loadModules(modulesList)
	if n+failed > 0 {
		logf("init: loaded %d modules (%d failed) in %v, slowest %s %v", n, failed,
			time.Since(mstart).Round(time.Millisecond), filepath.Base(slowest), slowestTime.Round(time.Millisecond))
	}
	logf("init: done in %v", time.Since(start).Round(time.Millisecond))
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

// loadModules loads every module listed in path. A module already present (built in, or
// loaded as a dependency) is fine; anything else is reported loudly but does not stop the
// boot, so the host can still connect and see what is missing.
func loadModules(path string) (loaded, failed int, slowest string, slowestTime time.Duration) {
	f, err := os.Open(path)
	if err != nil {
		if !os.IsNotExist(err) {
			logErr("init: %v", err)
		}
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		t := time.Now()
		err := loadModule(p)
		if d := time.Since(t); d > slowestTime {
			slowest, slowestTime = p, d
		}
		if err != nil {
			failed++
			logErr("init: MODULE LOAD FAILED: %s: %v", p, err)
			continue
		}
		loaded++
	}
	return loaded, failed, slowest, slowestTime
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.ENOSYS) {
		// Kernels before 3.8 have only init_module.
		var b []byte
		if b, err = os.ReadFile(path); err == nil {
			err = unix.InitModule(b, "")
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
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
