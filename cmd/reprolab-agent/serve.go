//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reprolab/reprolab/lab/guest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

const (
	portName           = "org.reprolab.agent"
	hostKeyPath        = "/etc/reprolab/ssh_host_ed25519_key"
	authorizedKeysPath = "/etc/reprolab/authorized_keys"
)

// serve runs the SSH server over the virtio-serial port for ever. Each host connection
// starts with guest.Hello; seeing it ends whatever connection was being served and starts a
// fresh SSH server connection (see lab/guest/wire.go for why the stream is resynchronized
// rather than trusting end-of-file).
func serve() error {
	// The port may need modules still loading; memory is locked and the keys are parsed
	// meanwhile. (Locking later, beside the handshake, slowed it: mlockall holds the
	// address space's lock while it walks every mapping.)
	type found struct {
		dev string
		err error
	}
	port := make(chan found, 1)
	go func() {
		dev, err := findPort(portName)
		port <- found{dev, err}
	}()
	lockMemory()
	config, err := serverConfig()
	if err != nil {
		return err
	}
	p := <-port
	if p.err != nil {
		return p.err
	}
	dev := p.dev
	logf("serve: port %s is %s", portName, dev)
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	logf("ready")
	m := &portMux{f: f}
	conns := make(chan *vconn)
	go func() {
		for c := range conns {
			go func() {
				err := serveConn(c, config)
				logf("serve: connection %d ended: %v", c.gen, err)
			}()
		}
	}()
	return m.readLoop(conns)
}

// lockMemory keeps the server's pages in RAM. Reproducers drive the guest deep into swap
// on purpose; a server whose own pages are swapped out (through dm-crypt, under TCG) stops
// answering keepalives for tens of seconds, and the host would take a slow guest for a
// dead one. MCL_ONFAULT (Linux 4.4+) locks pages as they are touched instead of populating
// every mapping up front, which matters for the Go runtime's large reservations. Locks are
// not inherited by the commands the server starts.
func lockMemory() {
	err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mlockall(unix.MCL_CURRENT) // before 4.4: at least what is mapped now
	}
	if err != nil {
		logErr("serve: mlockall: %v (the server may be swapped out under memory pressure)", err)
	}
}

// portMux splits the port's byte stream into successive connections.
type portMux struct {
	f   *os.File
	wmu sync.Mutex
	gen int // generation of the connection allowed to write
}

func (m *portMux) readLoop(conns chan<- *vconn) error {
	magic := []byte(guest.Hello)
	buf := make([]byte, 64<<10)
	var (
		tail []byte // last bytes seen, to find a marker split across reads
		cur  *vconn
	)
	for {
		n, err := m.f.Read(buf)
		if n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read %s: %w", m.f.Name(), err)
			}
			// End of file: no host is connected right now. Poll briefly: at boot the
			// host's Hello is already waiting in QEMU, and every millisecond here is one
			// the boot waits.
			if cur != nil {
				cur.closeRead()
				cur = nil
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		data := buf[:n]
		window := append(tail, data...)
		if i := bytes.LastIndex(window, magic); i >= 0 {
			if cur != nil {
				cur.closeRead()
			}
			m.wmu.Lock()
			m.gen++
			cur = newVconn(m, m.gen)
			_, werr := io.WriteString(m.f, guest.Ready)
			m.wmu.Unlock()
			if werr != nil {
				logErr("serve: reply to hello: %v", werr)
			}
			logf("serve: host said hello (connection %d)", cur.gen)
			conns <- cur
			rest := window[i+len(magic):]
			window = rest
			data = rest
		}
		if cur != nil && len(data) > 0 {
			// Never blocks: a connection that stopped reading must not keep the loop from
			// seeing the next Hello.
			cur.deliver(data)
		}
		if k := len(magic) - 1; len(window) > k {
			window = window[len(window)-k:]
		}
		tail = append([]byte(nil), window...)
	}
}

// vconn is one connection's view of the port, as the net.Conn the ssh package wants. Bytes
// from the port are queued (SSH flow control bounds the queue) so the read loop never waits
// for a connection.
type vconn struct {
	m    *portMux
	gen  int
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	eof  bool // no more bytes will come: superseded, host gone, or closed
}

func newVconn(m *portMux, gen int) *vconn {
	c := &vconn{m: m, gen: gen}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *vconn) deliver(b []byte) {
	c.mu.Lock()
	if !c.eof {
		c.buf = append(c.buf, b...)
	}
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *vconn) closeRead() {
	c.mu.Lock()
	c.eof = true
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *vconn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.buf) == 0 && !c.eof {
		c.cond.Wait()
	}
	if len(c.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.buf)
	c.buf = c.buf[n:]
	if len(c.buf) == 0 {
		c.buf = nil // let the backing array go
	}
	return n, nil
}

// Write goes to the port only while this is the current connection: a superseded one must
// not interleave its bytes with its successor's.
func (c *vconn) Write(b []byte) (int, error) {
	c.m.wmu.Lock()
	defer c.m.wmu.Unlock()
	if c.gen != c.m.gen {
		return 0, io.ErrClosedPipe
	}
	return c.m.f.Write(b)
}

func (c *vconn) Close() error {
	c.closeRead()
	return nil
}

type portAddr struct{}

func (portAddr) Network() string { return "virtio-serial" }
func (portAddr) String() string  { return portName }

func (c *vconn) LocalAddr() net.Addr              { return portAddr{} }
func (c *vconn) RemoteAddr() net.Addr             { return portAddr{} }
func (c *vconn) SetDeadline(time.Time) error      { return nil }
func (c *vconn) SetReadDeadline(time.Time) error  { return nil }
func (c *vconn) SetWriteDeadline(time.Time) error { return nil }

func serverConfig() (*ssh.ServerConfig, error) {
	keyPEM, err := os.ReadFile(hostKeyPath)
	if err != nil {
		return nil, fmt.Errorf("host key: %w (the base initramfs must contain it)", err)
	}
	hostKey, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", hostKeyPath, err)
	}
	authorized, err := readAuthorized(authorizedKeysPath)
	if err != nil {
		return nil, err
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			// Read per attempt: a guest restored from a snapshot gets a new per-run key
			// (reprolab-agent reseed) without restarting the server.
			if keys, err := readAuthorized(authorizedKeysPath); err == nil {
				authorized = keys
			}
			if authorized[string(key.Marshal())] {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	config.AddHostKey(hostKey)
	return config, nil
}

// findPort waits for the virtio-serial port called name and returns its device node. The
// port appears once virtio_console is loaded and the device is probed.
func findPort(name string) (string, error) {
	start := time.Now()
	warned := false
	for {
		dirs, _ := filepath.Glob("/sys/class/virtio-ports/*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "name"))
			if err == nil && strings.TrimSpace(string(b)) == name {
				dev := "/dev/" + filepath.Base(d)
				if _, err := os.Stat(dev); err == nil {
					return dev, nil
				}
			}
		}
		if !warned && time.Since(start) > 10*time.Second {
			logErr("serve: still no virtio-serial port named %s (is virtio_console loaded and QEMU given -device virtserialport,name=%s?)", name, name)
			warned = true
		}
		// The port appears the moment virtio_console has probed it; a sysfs glob is cheap.
		time.Sleep(5 * time.Millisecond)
	}
}

func serveConn(c net.Conn, config *ssh.ServerConfig) error {
	conn, chans, reqs, err := ssh.NewServerConn(c, config)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	logf("serve: SSH session up (%s)", conn.ClientVersion())
	markSessionUp()
	// Keepalives (keepalive@openssh.com) need a reply, which DiscardRequests gives.
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go session(ch, creqs)
	}
	return conn.Wait()
}

// session serves one session channel: env, exec and signal requests.
func session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	env := []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root", "TERM=dumb"}
	var (
		mu      sync.Mutex
		proc    *os.Process
		exited  = make(chan struct{})
		started bool
	)
	// When the channel goes away (the host cancelled, or the connection dropped) while the
	// command still runs, kill its whole process group; after a normal exit, leave any
	// background children alone, as a shell would.
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if proc == nil {
			ch.Close()
			return
		}
		select {
		case <-exited:
		default:
			_ = unix.Kill(-proc.Pid, unix.SIGKILL)
		}
	}()
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) != nil {
				req.Reply(false, nil)
				continue
			}
			env = append(env, kv.Name+"="+kv.Value)
			req.Reply(true, nil)
		case "exec":
			var ex struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &ex) != nil {
				req.Reply(false, nil)
				continue
			}
			p, err := startCommand(ch, ex.Command, env, exited)
			if err != nil {
				req.Reply(false, nil)
				fmt.Fprintf(ch.Stderr(), "reprolab-agent: %v\n", err)
				ch.Close()
				continue
			}
			mu.Lock()
			proc, started = p, true
			mu.Unlock()
			req.Reply(true, nil)
		case "signal":
			var sig struct{ Signal string }
			mu.Lock()
			p := proc
			mu.Unlock()
			if p != nil && ssh.Unmarshal(req.Payload, &sig) == nil {
				if s := unix.SignalNum("SIG" + sig.Signal); s != 0 {
					_ = unix.Kill(-p.Pid, s)
				}
			}
			if req.WantReply {
				req.Reply(p != nil, nil)
			}
		default:
			// pty-req, shell, subsystem, x11-req...: not offered.
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// startCommand runs command under /bin/sh -c in its own process group, streams its output to
// ch and, when it exits, sends exit-status or exit-signal and closes the channel.
func startCommand(ch ssh.Channel, command string, env []string, exited chan struct{}) (*os.Process, error) {
	cmd := exec.Command("/proc/self/exe", shimCommand, command)
	cmd.Args[0] = "reprolab-agent"
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Background children that keep stdout open must not hold the exit status hostage.
	cmd.WaitDelay = time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_, _ = io.Copy(stdin, ch)
		stdin.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			name := strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
			_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}{name, ws.CoreDump(), "", ""}))
		} else {
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(ws.ExitStatus())}))
		}
		ch.Close()
	}()
	return cmd.Process, nil
}

// shimCommand is the hidden subcommand commands are started through: Go cannot run code
// between fork and exec, so a fresh agent process resets what the server protects itself
// with and then becomes the shell.
const shimCommand = "exec-shell"

// runShim makes the command an ordinary OOM-killer target again and execs /bin/sh -c.
func runShim(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: exec-shell COMMAND (internal)")
	}
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("0"), 0)
	// The server answers before the late modules are in; no command may see a guest
	// without its disks or file systems.
	if _, err := waitModules(modulesWaitLimit); err != nil {
		fmt.Fprintf(os.Stderr, "reprolab-agent: %v; running the command anyway\n", err)
	}
	return syscall.Exec("/bin/sh", []string{"sh", "-c", args[0]}, os.Environ())
}

// readAuthorized reads an authorized_keys file; it must hold at least one key.
func readAuthorized(path string) (map[string]bool, error) {
	authData, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w (the per-run overlay initramfs must contain it)", err)
	}
	authorized := map[string]bool{}
	for rest := authData; len(bytes.TrimSpace(rest)) > 0; {
		var k ssh.PublicKey
		k, _, _, rest, err = ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		authorized[string(k.Marshal())] = true
	}
	if len(authorized) == 0 {
		return nil, fmt.Errorf("%s holds no keys", path)
	}
	return authorized, nil
}
