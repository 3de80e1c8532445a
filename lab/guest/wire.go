package guest

import (
	"bytes"
	"fmt"
	"io"
)

// The virtio-serial port is one byte stream that outlives SSH connections, and the guest is
// not reliably told when the host side of the chardev goes away (measured: after the host
// closed its socket, the agent kept reading and the next connection's SSH banner landed in
// the dead session). So each connection starts with a resynchronization: the host sends
// Hello, the guest drops whatever it was serving and answers Ready, and the host discards
// anything before Ready (leftovers of the previous connection). Both markers are long
// enough that they cannot turn up by chance in encrypted SSH traffic.
const (
	Hello = "\x00\x00reprolab-agent hello v1 7c3e9a1f5b2d4e68\x00\x00"
	Ready = "\x00\x00reprolab-agent ready v1 e4a7b1c9d0f25836\x00\x00"
)

// maxPreamble bounds the stale bytes the host will skip while waiting for Ready.
const maxPreamble = 16 << 20

// awaitReady reads r one byte at a time (so nothing after the marker is consumed) until
// Ready has been seen.
func awaitReady(r io.Reader) error {
	want := []byte(Ready)
	var window []byte
	b := make([]byte, 1)
	for n := 0; ; n++ {
		if n > maxPreamble {
			return fmt.Errorf("no reply from the agent after %d bytes", n)
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		window = append(window, b[0])
		if len(window) > len(want) {
			window = window[1:]
		}
		if bytes.Equal(window, want) {
			return nil
		}
	}
}
