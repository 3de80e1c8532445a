// Package guest is the host's SSH client to the reprolab agent inside a guest. The transport
// is the QEMU chardev unix socket behind the guest's virtio-serial port; one SSH connection
// over it multiplexes every command session.
//
// A guest that crashes simply stops answering, so the client watches the connection with
// keepalives and reports a dead guest as ErrConnectionLost, which callers tell apart from a
// command's own failure.
package guest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrConnectionLost means the SSH connection to the guest died: the guest crashed, hung or
// was killed. It says nothing about the command that was running.
var ErrConnectionLost = errors.New("guest connection lost")

// Timings. Under TCG a guest deep in swap can stall for tens of seconds (measured: v4.11
// filling tmpfs past RAM onto dm-crypt swap stopped answering for over 30 s), so
// keepalives are tolerant: the connection is declared dead after keepaliveMisses
// consecutive unanswered probes, about a minute. Kernel hangs are the console watcher's
// to report; this only has to notice a guest that is gone.
var (
	keepaliveInterval = 5 * time.Second
	keepaliveTimeout  = 10 * time.Second
	keepaliveMisses   = 6
	handshakeTimeout  = 60 * time.Second
)

// Client is an SSH connection to one guest's agent.
type Client struct {
	conn     *ssh.Client
	interval time.Duration // keepalive timings, fixed at dial time
	timeout  time.Duration
	misses   int
	done     chan struct{}
	doneOnce sync.Once
	mu       sync.Mutex
	cause    error
}

// DialUnix connects to the QEMU chardev socket at path (retrying until it exists or ctx
// ends), does the SSH handshake pinning hostKey, and starts the keepalive ticker. QEMU's
// chardev serves one host connection at a time: while another Client is connected, a new
// DialUnix waits (until ctx ends) for it to close.
func DialUnix(ctx context.Context, path string, hostKey ssh.PublicKey, signer ssh.Signer) (*Client, error) {
	if hostKey == nil || signer == nil {
		return nil, errors.New("guest: DialUnix needs the guest's host key and a client key")
	}
	var nc net.Conn
	var d net.Dialer
	for {
		var err error
		nc, err = d.DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("guest: connect %s: %w (last error: %v)", path, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond): // the socket exists once QEMU has started
		}
	}
	// Waiting for Ready includes the guest's boot, however long ctx allows; only ctx bounds
	// it (closing the socket when ctx ends). The SSH handshake after it gets its own limit.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	if _, err := io.WriteString(nc, Hello); err != nil {
		stop()
		nc.Close()
		return nil, fmt.Errorf("guest: hello to %s: %w", path, err)
	}
	if err := awaitReady(nc); err != nil {
		stop()
		nc.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("guest: waiting for the agent on %s: %w", path, err)
	}
	deadline := time.Now().Add(handshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	config := &ssh.ClientConfig{
		// The guest's CPU model (qemu64, cortex-a57 under TCG) has no usable AES
		// instructions, so AES-GCM runs as slow generic code there; ChaCha20-Poly1305 is
		// the cheap one in software. The client's order decides. The key exchange is plain
		// X25519: x/crypto's default, the ML-KEM-768 hybrid, made the guest's reply take
		// 40 ms instead of 20 under TCG (agent→SSH median 81 → 60 ms over 8 idle boots
		// each), and a unix socket to a local QEMU has no recorded traffic to protect
		// against a future quantum computer.
		Config:          ssh.Config{Ciphers: []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES128GCM, ssh.CipherAES128CTR}, KeyExchanges: []string{ssh.KeyExchangeCurve25519}},
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, "guest", config)
	stopped := stop()
	if err != nil || !stopped {
		nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("guest: SSH handshake over %s: %w", path, err)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &Client{conn: ssh.NewClient(sc, chans, reqs), done: make(chan struct{}),
		interval: keepaliveInterval, timeout: keepaliveTimeout, misses: keepaliveMisses}
	go func() {
		err := c.conn.Wait()
		c.lost(fmt.Errorf("connection closed: %v", err))
	}()
	go c.keepalive()
	return c, nil
}

func (c *Client) lost(cause error) {
	c.doneOnce.Do(func() {
		c.mu.Lock()
		c.cause = cause
		c.mu.Unlock()
		close(c.done)
		c.conn.Close()
	})
}

func (c *Client) keepalive() {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		select {
		case err := <-res:
			if err != nil {
				c.lost(fmt.Errorf("keepalive: %v", err))
				return
			}
			misses = 0
		case <-time.After(c.timeout):
			misses++
			if misses >= c.misses {
				c.lost(fmt.Errorf("%d keepalives unanswered", misses))
				return
			}
		case <-c.done:
			return
		}
	}
}

// Done is closed when the connection is lost (or closed).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the connection was lost; nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// Close closes the connection.
func (c *Client) Close() error {
	c.lost(errors.New("closed by the host"))
	return nil
}

// Run runs cmd through /bin/sh -c in the guest, streaming its output to stdout and stderr
// (either may be nil), and returns its exit code; a command killed by a signal gets the
// shell's 128+N. If the connection dies first the error satisfies
// errors.Is(err, ErrConnectionLost). Cancelling ctx closes the session, which makes the
// agent kill the command's process group.
func (c *Client) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	return c.run(ctx, cmd, nil, stdout, stderr)
}

// RunInput is Run with stdin fed from in.
func (c *Client) RunInput(ctx context.Context, cmd string, in io.Reader, stdout, stderr io.Writer) (int, error) {
	return c.run(ctx, cmd, in, stdout, stderr)
}

// Upload writes r to the file dst in the guest with mode perm (through "cat", so it needs
// no extra protocol), replacing any file there.
func (c *Client) Upload(ctx context.Context, dst string, r io.Reader, perm os.FileMode) error {
	q := "'" + strings.ReplaceAll(dst, "'", `'\''`) + "'"
	var errb bytes.Buffer
	code, err := c.run(ctx, fmt.Sprintf("cat > %s.part && chmod %o %s.part && mv %s.part %s", q, perm.Perm(), q, q, q), r, io.Discard, &errb)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("guest: upload to %s: exit %d: %s", dst, code, strings.TrimSpace(errb.String()))
	}
	return nil
}

func (c *Client) run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	select {
	case <-c.done:
		return -1, c.lostErr()
	default:
	}
	s, err := c.conn.NewSession()
	if err != nil {
		if c.brokenBy(err) {
			return -1, fmt.Errorf("%w: new session: %v", ErrConnectionLost, err)
		}
		return -1, fmt.Errorf("guest: new session: %w", err)
	}
	defer s.Close()
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// The ssh package copies stdout and stderr from two goroutines; callers often pass one
	// writer for both (a log file), so writes are serialized.
	var mu sync.Mutex
	s.Stdout, s.Stderr = &lockedWriter{mu: &mu, w: stdout}, &lockedWriter{mu: &mu, w: stderr}
	s.Stdin = stdin // nil: the command reads end-of-file
	if err := s.Start(cmd); err != nil {
		if c.brokenBy(err) {
			return -1, fmt.Errorf("%w: start %q: %v", ErrConnectionLost, cmd, err)
		}
		return -1, fmt.Errorf("guest: start %q: %w", cmd, err)
	}
	res := make(chan error, 1)
	go func() { res <- s.Wait() }()
	select {
	case err = <-res:
	case <-ctx.Done():
		s.Close()
		return -1, ctx.Err()
	case <-c.done:
		// The guest is gone; the session's Wait may never return on its own.
		return -1, c.lostErr()
	}
	if err == nil {
		return 0, nil
	}
	var exitErr *ssh.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitStatus(), nil
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) || errors.Is(err, io.EOF) || c.isLost() {
		// The channel closed without an exit status: the guest died under the command.
		c.waitLost(time.Second)
		return -1, fmt.Errorf("%w: %q got no exit status (%v)", ErrConnectionLost, cmd, err)
	}
	return -1, fmt.Errorf("guest: %q: %w", cmd, err)
}

// brokenBy says whether err from opening or starting a session means the connection is
// gone: an end-of-file there comes from a dead transport, possibly before the watcher has
// noticed, so it gets a moment to agree.
func (c *Client) brokenBy(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		c.waitLost(time.Second)
		return true
	}
	return c.isLost()
}

func (c *Client) isLost() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitLost gives the connection watcher a moment to notice a dead connection, so Err and
// Done agree with the error Run returns.
func (c *Client) waitLost(d time.Duration) {
	select {
	case <-c.done:
	case <-time.After(d):
	}
}

func (c *Client) lostErr() error {
	return fmt.Errorf("%w: %v", ErrConnectionLost, c.Err())
}

// NewKey returns a fresh ed25519 client key for one run.
func NewKey() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
