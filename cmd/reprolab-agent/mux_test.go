//go:build linux

package main

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/guest"
	"golang.org/x/sys/unix"
)

// TestPortMux drives the connection splitter through a socket pair standing in for the
// virtio-serial port: stale bytes are dropped, each Hello is answered with Ready and starts
// a new connection, and a superseded connection can neither read nor write any more.
func TestPortMux(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	port, host := os.NewFile(uintptr(fds[0]), "port"), os.NewFile(uintptr(fds[1]), "host")
	defer port.Close()
	defer host.Close()
	m := &portMux{f: port}
	conns := make(chan *vconn, 4)
	go m.readLoop(conns)

	next := func() *vconn {
		select {
		case c := <-conns:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection after Hello")
			return nil
		}
	}
	expect := func(r io.Reader, want string) {
		t.Helper()
		b := make([]byte, len(want))
		if _, err := io.ReadFull(r, b); err != nil || string(b) != want {
			t.Fatalf("read %q, %v; want %q", b, err, want)
		}
	}

	host.Write([]byte("stale bytes from before" + guest.Hello + "first"))
	c1 := next()
	expect(host, guest.Ready)
	expect(c1, "first")
	if _, err := c1.Write([]byte("reply1")); err != nil {
		t.Fatal(err)
	}
	expect(host, "reply1")

	// The Hello marker split across two writes must still be found.
	host.Write([]byte(guest.Hello[:10]))
	time.Sleep(50 * time.Millisecond)
	host.Write([]byte(guest.Hello[10:] + "second"))
	c2 := next()
	expect(host, guest.Ready)
	expect(c2, "second")
	if _, err := io.ReadAll(c1); err != nil {
		t.Errorf("old connection did not end cleanly: %v", err)
	}
	if _, err := c1.Write([]byte("late")); err == nil {
		t.Error("superseded connection could still write")
	}
	c2.Write([]byte("reply2"))
	expect(host, "reply2")
}
