// Package qmp is a QEMU Machine Protocol client over a unix socket that implements
// go-qemu's qmp.Monitor, so the typed commands of github.com/digitalocean/go-qemu/qmp/raw
// work on top of it.
//
// It exists because go-qemu's own SocketMonitor is unfit for a lab that must never hang:
// it fails on any reply longer than 64 KiB (a bufio.Scanner limit; query-qmp-schema and
// human-monitor output exceed it), its event channel is unbuffered so an undrained event
// stalls every later command reply, and Run has no timeout. This monitor reads replies of
// any length, keeps events in a bounded buffer that drops the oldest, and bounds every
// command by a context or a default deadline.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	goqmp "github.com/digitalocean/go-qemu/qmp"
)

// DefaultTimeout bounds commands issued through the context-free qmp.Monitor.Run.
// dump-guest-memory of a few hundred MiB under TCG is the slowest command the lab issues.
const DefaultTimeout = 2 * time.Minute

// eventBuffer is how many events are kept for a slow reader before the oldest are dropped.
const eventBuffer = 256

// Monitor is a QMP connection. The zero value is not usable; use New.
type Monitor struct {
	path string

	mu      sync.Mutex // serialises commands: QMP answers in order
	conn    net.Conn
	replies chan []byte
	closed  chan struct{}
	readErr error

	evMu   sync.Mutex
	evSubs []chan goqmp.Event
	events []goqmp.Event // history, so a late subscriber still sees e.g. GUEST_PANICKED
}

var _ goqmp.Monitor = (*Monitor)(nil)

// New returns a monitor for the QMP unix socket at path; call Connect before use.
func New(path string) *Monitor {
	return &Monitor{path: path}
}

// ErrClosed is returned by commands after the connection ended (QEMU exited).
var ErrClosed = errors.New("qmp: connection closed")

// Connect dials the socket, reads the greeting and negotiates capabilities.
func (m *Monitor) Connect() error {
	return m.ConnectContext(context.Background())
}

// ConnectContext is Connect bounded by ctx; it retries while the socket does not exist yet,
// since QEMU creates it a moment after it starts.
func (m *Monitor) ConnectContext(ctx context.Context) error {
	var d net.Dialer
	var conn net.Conn
	var err error
	for {
		conn, err = d.DialContext(ctx, "unix", m.path)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("qmp: connect %s: %w (last error: %v)", m.path, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	m.conn = conn
	m.replies = make(chan []byte, 1)
	m.closed = make(chan struct{})
	r := bufio.NewReaderSize(conn, 64<<10)
	// The greeting comes before anything else.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	greeting, err := r.ReadBytes('\n')
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return fmt.Errorf("qmp: reading greeting: %w", err)
	}
	var g struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := json.Unmarshal(greeting, &g); err != nil || g.QMP == nil {
		conn.Close()
		return fmt.Errorf("qmp: unexpected greeting %q", greeting)
	}
	go m.readLoop(r)
	if _, err := m.RunContext(ctx, []byte(`{"execute":"qmp_capabilities"}`)); err != nil {
		conn.Close()
		return err
	}
	return nil
}

// readLoop splits the stream into replies and events. Lines have no length limit.
func (m *Monitor) readLoop(r *bufio.Reader) {
	defer close(m.closed)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			m.readErr = err
			return
		}
		var probe struct {
			Event *string `json:"event"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.Event != nil {
			var ev goqmp.Event
			if json.Unmarshal(line, &ev) == nil {
				m.publish(ev)
			}
			continue
		}
		select {
		case m.replies <- line:
		default:
			// A reply nobody waits for (its command timed out): drop it so the
			// next command does not read a stale answer.
		}
	}
}

func (m *Monitor) publish(ev goqmp.Event) {
	m.evMu.Lock()
	defer m.evMu.Unlock()
	m.events = append(m.events, ev)
	if len(m.events) > eventBuffer {
		m.events = m.events[len(m.events)-eventBuffer:]
	}
	for _, ch := range m.evSubs {
		select {
		case ch <- ev:
		default: // subscriber too slow: it loses this event rather than stalling QMP
		}
	}
}

// Disconnect closes the connection.
func (m *Monitor) Disconnect() error {
	if m.conn == nil {
		return nil
	}
	return m.conn.Close()
}

// Run implements qmp.Monitor with DefaultTimeout.
func (m *Monitor) Run(command []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	return m.RunContext(ctx, command)
}

// RunContext sends one command and waits for its reply. A QMP error reply is returned as
// an error carrying QEMU's class and description.
func (m *Monitor) RunContext(ctx context.Context, command []byte) ([]byte, error) {
	if m.conn == nil {
		return nil, ErrClosed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Drain a stale reply left by an earlier timed-out command.
	select {
	case <-m.replies:
	default:
	}
	// Always set (or clear) the write deadline: one left over from an earlier, expired
	// command would fail this one.
	dl, _ := ctx.Deadline()
	_ = m.conn.SetWriteDeadline(dl)
	if _, err := m.conn.Write(append(command, '\n')); err != nil {
		return nil, fmt.Errorf("qmp: send: %w", err)
	}
	select {
	case line := <-m.replies:
		var resp struct {
			Error *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp: bad reply %q: %w", line, err)
		}
		if resp.Error != nil {
			return line, fmt.Errorf("qmp: %s: %s", resp.Error.Class, resp.Error.Desc)
		}
		return line, nil
	case <-m.closed:
		return nil, fmt.Errorf("%w (%v)", ErrClosed, m.readErr)
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp: command %s: %w", truncate(command, 80), ctx.Err())
	}
}

// Execute runs a command by name with optional arguments and decodes its "return" into ret
// (which may be nil).
func (m *Monitor) Execute(ctx context.Context, name string, args any, ret any) error {
	cmd, err := json.Marshal(goqmp.Command{Execute: name, Args: args})
	if err != nil {
		return err
	}
	out, err := m.RunContext(ctx, cmd)
	if err != nil {
		return err
	}
	if ret == nil {
		return nil
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return err
	}
	return json.Unmarshal(resp.Return, ret)
}

// Events implements qmp.Monitor: a buffered channel of events that arrive from now on,
// closed when ctx ends or the connection closes.
func (m *Monitor) Events(ctx context.Context) (<-chan goqmp.Event, error) {
	if m.conn == nil {
		return nil, ErrClosed
	}
	ch := make(chan goqmp.Event, eventBuffer)
	m.evMu.Lock()
	m.evSubs = append(m.evSubs, ch)
	m.evMu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-m.closed:
		}
		m.evMu.Lock()
		defer m.evMu.Unlock()
		for i, c := range m.evSubs {
			if c == ch {
				m.evSubs = append(m.evSubs[:i], m.evSubs[i+1:]...)
				break
			}
		}
		close(ch)
	}()
	return ch, nil
}

// Seen reports whether an event of that name has arrived since Connect.
func (m *Monitor) Seen(name string) bool {
	m.evMu.Lock()
	defer m.evMu.Unlock()
	for _, ev := range m.events {
		if ev.Event == name {
			return true
		}
	}
	return false
}

// Closed is closed when the connection ends.
func (m *Monitor) Closed() <-chan struct{} { return m.closed }

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
