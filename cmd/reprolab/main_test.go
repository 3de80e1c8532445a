package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The CLI is tested as users run it: a built binary, its exit codes and its processes.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reprolab-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "reprolab")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func debianKernel(t *testing.T, goarch string) (kernel, modules string) {
	t.Helper()
	root := filepath.Join(cacheDir(), "debian", goarch)
	k, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	m, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(k) == 0 || len(m) == 0 {
		t.Skipf("no Debian %s kernel under %s: run images/debian-kernels.sh", goarch, root)
	}
	return k[0], m[0]
}

// exitCode is a finished command's exit status; a command that could not run fails the test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = "../.."
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := exitCode(t, cmd.Run())
	return code, stdout.String(), stderr.String()
}

func TestBadInputExitsTwo(t *testing.T) {
	kernel, _ := debianKernel(t, "amd64")
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "repro.yaml")
	os.WriteFile(unknownKey, []byte("name: x\nrun: true\nbudget: {iterations: 1}\nguest: {cpus: 1, memroy: 256M}\n"), 0o644)
	noSnapshot := filepath.Join(dir, "fresh.yaml")
	os.WriteFile(noSnapshot, []byte("name: x\nrun: \"true\"\nbudget: {iterations: 1}\nsnapshot: false\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"unknown spec key", []string{"run", "--kernel", kernel, "--repro", unknownKey},
			[]string{unknownKey + ":4:", `unknown key "memroy" in guest (did you mean "memory"?)`}},
		{"missing QEMU binary", []string{"run", "--kernel", kernel, "--repro", "memcg-writeback-null", "--qemu", "qemu-system-nonexistent"},
			[]string{"qemu-system-nonexistent", "apt-get install qemu-system-x86"}},
		{"missing kernel", []string{"run", "--kernel", filepath.Join(dir, "nope"), "--repro", "memcg-writeback-null"},
			[]string{"kernel image", "nope"}},
		{"unknown reproducer", []string{"run", "--kernel", kernel, "--repro", "no-such-bug"},
			[]string{`"no-such-bug" not found`, "memcg-writeback-null"}},
		{"unknown arch", []string{"run", "--arch", "riscv", "--kernel", kernel, "--repro", "memcg-writeback-null"},
			[]string{"unknown arch", "x86_64 or arm64"}},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{"--snapshot on a spec that forbids it", []string{"run", "--kernel", kernel, "--repro", noSnapshot, "--snapshot"},
			[]string{"--snapshot", noSnapshot, "snapshot: false"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// startRun starts `reprolab run` on a long loop and waits until the guest is in the loop, so
// an interruption lands mid-run with QEMU up. It returns the command and QEMU's PID.
func startRun(t *testing.T) (*exec.Cmd, int, string) {
	t.Helper()
	kernel, modules := debianKernel(t, "amd64")
	results := t.TempDir()
	spec := filepath.Join(t.TempDir(), "repro.yaml")
	os.WriteFile(spec, []byte("name: loop\nguest: {cpus: 1, memory: 256M}\nrun: sleep 1\nbudget: {duration: 1h}\n"), 0o644)
	cmd := exec.Command(binary, "run", "--kernel", kernel, "--modules", modules, "--repro", spec, "--results", results)
	cmd.Dir = "../.."
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	inLoop := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			// Plain progress lines carry a time stamp: "15:04:05 loop: ...".
			if f := strings.Fields(sc.Text()); len(f) > 0 && (f[0] == "loop:" || len(f) > 1 && f[1] == "loop:") {
				inLoop <- true
			}
		}
		close(inLoop)
	}()
	select {
	case ok := <-inLoop:
		if !ok {
			t.Fatal("reprolab exited before the loop started")
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("the guest never reached the loop")
	}
	qemuPid := childQEMU(t, cmd.Process.Pid)
	scratch := scratchDirs(t, cmd.Process.Pid)
	if len(scratch) != 1 {
		t.Fatalf("scratch dirs of pid %d: %v", cmd.Process.Pid, scratch)
	}
	return cmd, qemuPid, scratch[0]
}

// childQEMU finds the QEMU started by pid through /proc.
func childQEMU(t *testing.T, pid int) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		comm := s[strings.IndexByte(s, '(')+1 : strings.LastIndexByte(s, ')')]
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ppid, _ := strconv.Atoi(fields[1])
		if ppid == pid && strings.HasPrefix(comm, "qemu-system") {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return child
		}
	}
	t.Fatalf("no QEMU child of %d", pid)
	return 0
}

func scratchDirs(t *testing.T, pid int) []string {
	m, _ := filepath.Glob(filepath.Join(os.TempDir(), "reprolab-"+strconv.Itoa(pid)+"-*"))
	return m
}

// gone waits until pid no longer exists (zombies of other parents count as gone).
func gone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func TestCtrlCLeavesNoQEMU(t *testing.T) {
	cmd, qemuPid, scratch := startRun(t)
	cmd.Process.Signal(os.Interrupt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Errorf("reprolab after Ctrl-C: %v, want exit 130", err)
		}
	case <-ctx.Done():
		t.Fatal("reprolab did not exit within a minute of Ctrl-C")
	}
	if !gone(qemuPid, 10*time.Second) {
		t.Errorf("QEMU %d still running after Ctrl-C", qemuPid)
	}
	if _, err := os.Stat(scratch); err == nil {
		t.Errorf("scratch dir %s left behind", scratch)
	}
}

func TestSIGKILLLeavesNoQEMU(t *testing.T) {
	cmd, qemuPid, scratch := startRun(t)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !gone(qemuPid, 10*time.Second) {
		syscall.Kill(qemuPid, syscall.SIGKILL)
		t.Fatalf("QEMU %d outlived a SIGKILLed reprolab", qemuPid)
	}
	// A SIGKILLed process cannot clean up; the next reprolab run sweeps its scratch dir.
	runCLI(t, "run", "--kernel", "/nonexistent", "--repro", "memcg-writeback-null")
	if _, err := os.Stat(scratch); err == nil {
		t.Errorf("scratch dir %s of the killed run was not swept by the next run", scratch)
	}
}
