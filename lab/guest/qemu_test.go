package guest

// A minimal QEMU launcher for these tests only; lab/qemu is the real one.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type testVM struct {
	cmd     *exec.Cmd
	console string // console log file
	sock    string // agent chardev socket
	exited  chan struct{}
}

type testVMConfig struct {
	arch    string // x86_64 | arm64
	kernel  string
	initrd  string
	disks   map[string]string // serial → image file
	memMB   int
	cmdline string
}

func qemuBinary(arch string) string {
	if arch == "arm64" {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

func startVM(t testing.TB, runDir string, c testVMConfig) *testVM {
	t.Helper()
	vm := &testVM{
		console: filepath.Join(runDir, "console.log"),
		sock:    filepath.Join(runDir, "agent.sock"),
		exited:  make(chan struct{}),
	}
	args := []string{"-accel", "tcg,thread=multi", "-smp", "2", "-m", strconv.Itoa(c.memMB),
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:" + vm.console,
		"-kernel", c.kernel, "-initrd", c.initrd,
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=agent,path=" + vm.sock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=org.reprolab.agent",
	}
	console := "ttyS0"
	if c.arch == "arm64" {
		args = append(args, "-M", "virt", "-cpu", "cortex-a57")
		console = "ttyAMA0"
	} else {
		args = append(args, "-cpu", "qemu64", "-device", "pvpanic")
	}
	args = append(args, "-append", "console="+console+" panic=-1 nokaslr "+c.cmdline)
	for _, serial := range sortedKeys(c.disks) {
		args = append(args,
			"-drive", "file="+c.disks[serial]+",if=none,format=raw,id=d-"+serial,
			"-device", "virtio-blk-pci,drive=d-"+serial+",serial="+serial)
	}
	vm.cmd = exec.Command(qemuBinary(c.arch), args...)
	var stderr bytes.Buffer
	vm.cmd.Stderr = &stderr
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread() // Pdeathsig fires when the starting thread exits
	err := vm.cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("start %s: %v", qemuBinary(c.arch), err)
	}
	go func() {
		vm.cmd.Wait()
		close(vm.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-vm.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("qemu pid %d did not exit after SIGKILL", vm.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("qemu stderr: %s", stderr.String())
			t.Logf("console tail:\n%s", vm.consoleTail(60))
			t.Logf("agent lines:\n%s", grepLines(vm.consoleLog(), "reprolab-agent"))
		}
	})
	return vm
}

func (vm *testVM) consoleLog() string {
	b, _ := os.ReadFile(vm.console)
	return string(b)
}

func (vm *testVM) consoleTail(n int) string {
	lines := strings.Split(vm.consoleLog(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
