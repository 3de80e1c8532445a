package qmp

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp/raw"
)

// startQEMU runs a real, never-started (-S) QEMU with a QMP socket: no guest needed to talk
// to the monitor.
func startQEMU(t *testing.T) *Monitor {
	t.Helper()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed: apt-get install qemu-system-x86")
	}
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command(bin, "-S", "-nodefaults", "-display", "none", "-M", "pc", "-accel", "tcg",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	m := New(sock)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.ConnectContext(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Disconnect() })
	return m
}

func TestCommandsEventsAndErrors(t *testing.T) {
	m := startQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// go-qemu's typed commands run on this monitor.
	st, err := raw.NewMonitor(m).QueryStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != raw.RunStatePrelaunch {
		t.Errorf("status %v, want prelaunch", st.Status)
	}

	// A reply far over go-qemu's 64 KiB line limit.
	out, err := m.RunContext(ctx, []byte(`{"execute":"query-qmp-schema"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 64<<10 {
		t.Errorf("schema reply is only %d bytes; the test needs one over 64 KiB", len(out))
	}

	// Events arrive on a subscription and are remembered for late readers, even when
	// nobody drains them while commands run.
	events, err := m.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := m.Execute(ctx, "cont", nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Execute(ctx, "stop", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	timeout := time.After(5 * time.Second)
	for got["STOP"] < 3 {
		select {
		case ev := <-events:
			got[ev.Event]++
		case <-timeout:
			t.Fatalf("events after 3 cont/stop: %v", got)
		}
	}
	if got["RESUME"] != 3 || !m.Seen("STOP") {
		t.Errorf("events %v", got)
	}

	// A QMP error names QEMU's class and description.
	err = m.Execute(ctx, "no-such-command", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("unknown command: %v", err)
	}

	// A command bounded by an expired context returns instead of hanging.
	expired, cancel2 := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel2()
	time.Sleep(time.Millisecond)
	if err := m.Execute(expired, "query-status", nil, nil); err == nil {
		t.Error("command with an expired context succeeded")
	}
	// ... and the monitor still answers afterwards, never with the stale reply.
	var status struct {
		Status string `json:"status"`
	}
	if err := m.Execute(context.Background(), "query-status", nil, &status); err != nil || status.Status != "paused" {
		t.Errorf("after a timed-out command: %+v, %v", status, err)
	}

	// quit closes the connection; later commands fail fast with ErrClosed.
	_ = m.Execute(ctx, "quit", nil, nil)
	select {
	case <-m.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed after quit")
	}
	if err := m.Execute(ctx, "query-status", nil, nil); err == nil {
		t.Error("command after quit succeeded")
	}
}
