package repro

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/guest"
	"github.com/reprolab/reprolab/lab/image"
	"github.com/reprolab/reprolab/lab/qemu"
)

// Snapshot mode: the first trial of a (kernel, reproducer, command line) boots and runs
// setup, then saves the paused guest — memory and device state through QEMU's migration
// stream, and a copy of every disk, consistent because the guest is paused and its block
// devices flushed — and goes on looping. Every later trial copies the disks, starts QEMU
// restoring that state (-incoming) and loops within seconds.
//
// A restored guest would replay the snapshot's randomness, so before looping the host
// sends it 64 fresh random bytes and a new per-trial client key (reprolab-agent reseed):
// the seed is credited to the kernel pool and, on 4.17+, the CRNG reseeded at once; the
// SSH server accepts only the new key from then on, and the host reconnects with it. The
// dm-crypt swap key is kernel state and survives the restore (swapped pages stay
// readable), as do the mounts, the filled tmpfs, its readers and the agent.

// snapshotVersion changes whenever what a snapshot holds or how it is restored changes.
const snapshotVersion = "1"

// maxSnapshots bounds the snapshot cache: each holds the guest's memory and disks.
const maxSnapshots = 8

type snapshotDir struct {
	dir  string
	lock *os.File
	key  string
}

// snapshotMeta is snapshot.json.
type snapshotMeta struct {
	Key        string    `json:"key"`
	Arch       string    `json:"arch"`
	Accel      string    `json:"accel"`
	Kernel     string    `json:"kernel"`
	QEMUKernel string    `json:"qemu_kernel"` // what -kernel was (the PVH vmlinux, or the image)
	KernelSHA  string    `json:"kernel_sha256"`
	Cmdline    string    `json:"cmdline"`
	Disks      []string  `json:"disks"`
	Created    time.Time `json:"created"`
	FromRun    string    `json:"from_run"`
	SaveSecs   float64   `json:"save_seconds"`
}

func (r *run) snapshotKey(base string) string {
	h := sha256.New()
	spec := r.cfg.Repro
	// The firmware's ROM is part of the saved RAM: a state saved under SeaBIOS does not
	// load into a QEMU started with qboot.
	fw := qemu.Firmware(qemu.Config{Arch: r.cfg.Arch, Binary: r.cfg.QEMUBinary, Kernel: r.cfg.Kernel})
	parts := []any{snapshotVersion, r.cfg.Arch, r.res.KernelSHA, r.cfg.ModulesDir, r.cmdline(), spec.Guest, spec.Disks, base, r.cfg.Accel, fw}
	for _, s := range spec.Setup {
		parts = append(parts, s.Command())
	}
	for _, p := range parts {
		b, _ := json.Marshal(p)
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// fromSnapshot restores the guest from a saved state and loops (restored = true), or, when
// there is none yet, takes the lock under which this run will save one and returns
// restored = false.
func (r *run) fromSnapshot(ctx context.Context) (Outcome, error, bool) {
	if r.cfg.CacheDir == "" {
		r.say("snapshot: no cache directory; booting fresh")
		return "", nil, false
	}
	base, err := image.BuildInitramfs(ctx, image.InitramfsSpec{Arch: string(r.cfg.Arch), ModulesDir: r.cfg.ModulesDir, CacheDir: r.cfg.CacheDir, Progress: r.progressWriter()})
	if err != nil {
		return InfraError, fmt.Errorf("initramfs: %w", err), true
	}
	key := r.snapshotKey(base.Path)
	root := filepath.Join(r.cfg.CacheDir, "snapshots")
	dir := filepath.Join(root, key)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return InfraError, fmt.Errorf("snapshot cache: %w", err), true
	}
	// One preparer per snapshot; trials of other snapshots are not held up.
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return InfraError, fmt.Errorf("snapshot lock: %w", err), true
	}
	r.say("snapshot: %s", dir)
	r.res.SnapshotDir = dir
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return InfraError, fmt.Errorf("snapshot lock: %w", err), true
	}
	meta, err := readSnapshotMeta(dir)
	if err == nil {
		// Restoring needs only reading: let other trials restore alongside.
		lock.Close()
		o, err := r.restore(ctx, dir, meta)
		return o, err, true
	}
	r.snap = &snapshotDir{dir: dir, lock: lock, key: key}
	r.res.Snapshot = "prepared"
	return "", nil, false
}

func readSnapshotMeta(dir string) (*snapshotMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		return nil, err
	}
	var m snapshotMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// saveSnapshot saves the set-up guest when this run is the snapshot's preparer, then
// resumes it and reconnects. A failure to save is reported and the run goes on fresh.
func (r *run) saveSnapshot(ctx context.Context) (Outcome, error) {
	s := r.snap
	if s == nil {
		return "", nil
	}
	defer s.lock.Close()
	r.snap = nil
	at := time.Now()
	tmp := s.dir + ".tmp"
	_ = os.RemoveAll(tmp)
	err := r.writeSnapshot(ctx, tmp, s.key)
	if err == nil {
		_ = os.RemoveAll(s.dir)
		err = os.Rename(tmp, s.dir)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		r.say("snapshot: not saved (%v); this trial goes on fresh", err)
		r.res.Snapshot = ""
	} else {
		r.res.Timings.SnapshotSaveSeconds = secs(time.Since(at))
		r.say("snapshot: saved in %.1fs", r.res.Timings.SnapshotSaveSeconds)
		pruneSnapshots(filepath.Dir(s.dir), maxSnapshots)
	}
	// The guest is paused whether or not the save worked; resume it and reconnect (the
	// host closed its connection so the saved agent holds none).
	if err := r.vm.Cont(ctx); err != nil {
		return InfraError, fmt.Errorf("snapshot: resuming the guest: %w", err)
	}
	return r.reconnect(ctx, r.signer)
}

func (r *run) writeSnapshot(ctx context.Context, dir, key string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_ = r.client.Close()
	r.client = nil
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := r.vm.SaveState(sctx, filepath.Join(dir, "state")); err != nil {
		return err
	}
	meta := snapshotMeta{Key: key, Arch: string(r.cfg.Arch), Accel: string(r.vm.Accel), Kernel: r.cfg.Kernel, QEMUKernel: r.bootKernel, KernelSHA: r.res.KernelSHA,
		Cmdline: r.res.Cmdline, Created: time.Now().UTC(), FromRun: r.res.RunID}
	for _, d := range r.disks {
		if err := image.CopyDisk(filepath.Join(dir, "disk-"+d.Name), d.Path); err != nil {
			return fmt.Errorf("copying disk %s: %w", d.Name, err)
		}
		meta.Disks = append(meta.Disks, d.Name)
	}
	if err := image.CopyDisk(filepath.Join(dir, "initrd.cpio"), r.initrd); err != nil {
		return fmt.Errorf("copying the initramfs: %w", err)
	}
	// The client key the saved guest accepts, for the trial that reseeds it; private, as
	// the cache is.
	if r.clientPriv == nil {
		return fmt.Errorf("no private client key to keep")
	}
	priv, err := ssh.MarshalPrivateKey(r.clientPriv, "reprolab snapshot")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "client.key"), pem.EncodeToMemory(priv), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "host.pub"), ssh.MarshalAuthorizedKey(r.hostKey), 0o600); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(meta, "", "  ")
	return atomicfile.Write(filepath.Join(dir, "snapshot.json"), append(b, '\n'), 0o600)
}

// restore starts QEMU from a saved state, reseeds the guest and hands over to the loop.
func (r *run) restore(ctx context.Context, dir string, meta *snapshotMeta) (Outcome, error) {
	cfg, res := r.cfg, r.res
	res.Snapshot = "restored"
	at := time.Now()
	keyPEM, err := os.ReadFile(filepath.Join(dir, "client.key"))
	if err != nil {
		return InfraError, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return InfraError, fmt.Errorf("snapshot %s: client key: %w", dir, err)
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "host.pub"))
	if err != nil {
		return InfraError, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey(hostPub)
	if err != nil {
		return InfraError, fmt.Errorf("snapshot %s: host key: %w", dir, err)
	}
	var disks []qemu.Disk
	for _, name := range meta.Disks {
		p := filepath.Join(r.scratch, name+".img")
		if err := image.CopyDisk(p, filepath.Join(dir, "disk-"+name)); err != nil {
			return InfraError, fmt.Errorf("snapshot disk %s: %w", name, err)
		}
		disks = append(disks, qemu.Disk{Name: name, Path: p})
	}
	res.Timings.ImageSeconds = secs(time.Since(at))
	res.Cmdline = meta.Cmdline
	r.say("restore: %s %s from %s", cfg.Arch, cfg.Kernel, dir)
	qemuAt := time.Now()
	r.vm, err = qemu.Start(ctx, qemu.Config{
		Arch: cfg.Arch, Accel: qemu.Accel(meta.Accel), Binary: cfg.QEMUBinary,
		Kernel: meta.QEMUKernel, Initrd: filepath.Join(dir, "initrd.cpio"), Cmdline: meta.Cmdline,
		CPUs: cfg.Repro.Guest.CPUs, MemoryMB: cfg.Repro.Guest.Memory.MB(),
		Disks: disks, AgentSocket: filepath.Join(r.scratch, "agent.sock"), Dir: r.scratch,
		Console: r.watch, CacheDir: cfg.CacheDir, Incoming: filepath.Join(dir, "state"),
		Say: func(s string) { r.say("qemu: %s", s) },
	})
	if err != nil {
		return InfraError, fmt.Errorf("restoring snapshot %s: %w", dir, err)
	}
	res.Accel = string(r.vm.Accel)
	res.QEMUArgs = r.vm.Args
	res.Timings.QEMUStartSeconds = secs(r.vm.Started.Sub(qemuAt))
	r.hostKey = hostKey
	rctx, cancel := context.WithTimeout(ctx, r.bootTimeout())
	err = r.vm.ResumeIncoming(rctx)
	cancel()
	if err != nil {
		return InfraError, fmt.Errorf("restoring snapshot %s: %w", dir, err)
	}
	if o, err := r.boot(ctx, hostKey, signer); o != "" {
		return o, err
	}
	res.Timings.RestoreSeconds = secs(time.Since(r.vm.Started))
	res.BootSeconds = res.Timings.RestoreSeconds
	res.Timings.BootSeconds = res.BootSeconds
	rs := time.Now()
	fresh, err := guest.NewKey()
	if err != nil {
		return InfraError, err
	}
	var in bytes.Buffer
	seed := make([]byte, 64)
	if _, err := rand.Read(seed); err != nil {
		return InfraError, err
	}
	in.Write(seed)
	in.Write(ssh.MarshalAuthorizedKey(fresh.PublicKey()))
	var out bytes.Buffer
	code, err := r.client.RunInput(ctx, "reprolab-agent reseed", &in, &out, &out)
	if err != nil || code != 0 {
		return InfraError, fmt.Errorf("reseeding the restored guest: exit %d, %v: %s", code, err, out.String())
	}
	fmt.Fprintf(r.guestLg, "### restored from %s\n%s", dir, out.String())
	res.Reseed = string(bytes.TrimSpace(out.Bytes()))
	if o, err := r.reconnect(ctx, fresh); o != "" {
		return o, err
	}
	res.Timings.ReseedSeconds = secs(time.Since(rs))
	r.say("restore: guest answering %.1fs after QEMU started (%s)", secs(time.Since(r.vm.Started)), res.Reseed)
	return r.loop(ctx)
}

// reconnect replaces the SSH connection with one authenticated by signer.
func (r *run) reconnect(ctx context.Context, signer ssh.Signer) (Outcome, error) {
	if r.client != nil {
		_ = r.client.Close()
		r.client = nil
	}
	return r.boot(ctx, r.hostKey, signer)
}

// newClientKey is a fresh ed25519 client key for one run, with its private half (a
// snapshot keeps it for the trial that restores and then replaces it).
func newClientKey() (ssh.Signer, ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	return s, priv, err
}

// pruneSnapshots removes the oldest snapshots beyond keep.
func pruneSnapshots(root string, keep int) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type snap struct {
		path string
		mod  time.Time
	}
	var snaps []snap
	for _, e := range ents {
		if !e.IsDir() || filepath.Ext(e.Name()) != "" {
			continue
		}
		if info, err := e.Info(); err == nil {
			snaps = append(snaps, snap{filepath.Join(root, e.Name()), info.ModTime()})
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].mod.After(snaps[j].mod) })
	for _, s := range snaps[min(keep, len(snaps)):] {
		_ = os.RemoveAll(s.path)
		_ = os.Remove(s.path + ".lock")
	}
}
