//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Module loading is split so the agent answers the host as early as it can. The list
// (written by lab/image) marks the modules the agent's own transport needs (virtio PCI and
// the virtio-serial port) "early"; PID 1 loads those first, one after another, while the
// server is already starting. The "late" ones (block devices, dm-crypt, ext4, pvpanic...)
// follow once the host's SSH session is up (sessionUp, or after lateModulesAfter at the
// latest), each in its own goroutine as soon as the modules it needs are in, so
// independent ones load side by side. Waiting for the session costs little: the host's
// first command waits for the modules anyway, and the handshake alone takes ~0.1 s. Loading
// alongside the handshake made it 2-3x slower under TCG (0.12 → 0.3-0.4 s measured), as
// every module load changes page protections and so flushes every vCPU's TLB.
// When the last one is in, PID 1 writes modulesDone;
// every command the server runs waits for that file first (runShim), so no setup step or
// reproducer can see a half-loaded guest, and the host times the wait as its own setup
// step (`reprolab-agent modules`).
const (
	// modulesList: one module per line in a valid load order,
	// "early|late PATH [DEP-PATH...]".
	modulesList = "/etc/reprolab/modules"
	// modulesDone holds the summary line once every module has been tried.
	modulesDone = "/run/reprolab/modules.done"
	// sessionUp is created by the server when its first SSH session is up.
	sessionUp = "/run/reprolab/session-up"
	// lateModulesAfter bounds the wait for sessionUp: a guest nobody connects to still
	// gets its modules.
	lateModulesAfter = 2 * time.Second
)

// kmod is one line of the modules list.
type kmod struct {
	path  string
	early bool
	deps  []string
}

func readModuleList(r io.Reader) ([]kmod, error) {
	var out []kmod
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 || (f[0] != "early" && f[0] != "late") {
			return nil, fmt.Errorf("%s:%d: want \"early|late PATH [DEP...]\", got %q", modulesList, n, sc.Text())
		}
		out = append(out, kmod{path: f[1], early: f[0] == "early", deps: f[2:]})
	}
	return out, sc.Err()
}

// loadResult is what loading the list did.
type loadResult struct {
	loaded, failed int
	early          time.Duration // start → the last early module in
	total          time.Duration // start → every module tried
	slowest        string
	slowestTime    time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("loaded %d modules (%d failed) in %v (transport in %v), slowest %s %v",
		r.loaded, r.failed, r.total.Round(time.Millisecond), r.early.Round(time.Millisecond),
		filepath.Base(r.slowest), r.slowestTime.Round(time.Millisecond))
}

// loadAll loads mods with load: the early ones in order, then, once gate returns, the late
// ones concurrently, each once its dependencies have been tried. A failure is reported and
// does not stop the rest (a dependent then fails on its own, naming the missing symbols).
func loadAll(mods []kmod, load func(string) error, gate func()) loadResult {
	var (
		res   loadResult
		mu    sync.Mutex
		start = time.Now()
	)
	one := func(m kmod) {
		t := time.Now()
		err := load(m.path)
		d := time.Since(t)
		mu.Lock()
		defer mu.Unlock()
		if d > res.slowestTime {
			res.slowest, res.slowestTime = m.path, d
		}
		if err != nil {
			res.failed++
			logErr("init: MODULE LOAD FAILED: %s: %v", m.path, err)
			return
		}
		res.loaded++
	}
	done := map[string]chan struct{}{}
	for _, m := range mods {
		done[m.path] = make(chan struct{})
	}
	for _, m := range mods {
		if m.early {
			one(m)
			close(done[m.path])
		}
	}
	res.early = time.Since(start)
	gate()
	var wg sync.WaitGroup
	for _, m := range mods {
		if m.early {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range m.deps {
				if ch, ok := done[d]; ok {
					<-ch
				}
			}
			one(m)
			close(done[m.path])
		}()
	}
	wg.Wait()
	res.total = time.Since(start)
	return res
}

// loadModules loads the list at path and then writes modulesDone. A missing list (a kernel
// with everything built in) is done at once.
func loadModules(path string) {
	var mods []kmod
	f, err := os.Open(path)
	if err == nil {
		mods, err = readModuleList(f)
		f.Close()
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		logErr("init: %v", err)
	}
	summary := "no modules"
	if len(mods) > 0 {
		res := loadAll(mods, loadModule, func() { awaitFile(sessionUp, lateModulesAfter) })
		summary = res.String()
		logf("init: %s", summary)
	}
	_ = os.MkdirAll(filepath.Dir(modulesDone), 0o755)
	if err := os.WriteFile(modulesDone+".tmp", []byte(summary+"\n"), 0o644); err == nil {
		err = os.Rename(modulesDone+".tmp", modulesDone)
	}
	if err != nil {
		logErr("init: %s: %v (commands will wait for modules until their timeout)", modulesDone, err)
	}
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

// awaitFile waits until path exists or limit has passed.
func awaitFile(path string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// markSessionUp tells PID 1 the host is connected (see sessionUp).
func markSessionUp() {
	_ = os.MkdirAll(filepath.Dir(sessionUp), 0o755)
	if f, err := os.Create(sessionUp); err == nil {
		f.Close()
	}
}

// modulesWaitLimit bounds how long a command waits for the modules: a module whose init
// never returns must not keep every command, and the host's view of the guest, stuck.
const modulesWaitLimit = 5 * time.Minute

// waitModules blocks until PID 1 has tried every module, or limit passed, and returns the
// summary. Polling a tmpfs file every few milliseconds costs nothing next to a module load,
// and once the file exists it is a single stat.
func waitModules(limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(modulesDone)
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("modules still loading after %v", limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cmdModules waits for the modules and prints what loading them did: the host runs it as the
// first setup step, so the time modules take after the agent answered is accounted for.
func cmdModules(args []string) error {
	if len(args) != 0 {
		return errors.New("usage: modules")
	}
	s, err := waitModules(modulesWaitLimit)
	if err != nil {
		return err
	}
	fmt.Println(s)
	return nil
}
