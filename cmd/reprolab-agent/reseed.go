//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// rndReseedCRNG is RNDRESEEDCRNG, _IO('R', 0x07): Linux 4.17+.
const rndReseedCRNG = 0x5207

// cmdReseed makes a guest restored from a snapshot stop replaying the snapshot's
// randomness and its per-run key. stdin holds 64 bytes from the host's RNG, then
// optionally an authorized_keys line that replaces the accepted client keys. The seed is
// credited to the kernel's pool (RNDADDENTROPY) and, where the kernel has it
// (RNDRESEEDCRNG, 4.17+), the CRNG is reseeded at once; older kernels mix the seed in but
// reseed their CRNG on their own schedule (at most 5 minutes later on 4.x).
func cmdReseed(args []string) error {
	if len(args) != 0 {
		return errors.New("usage: reseed < 64 random bytes [authorized_keys line]")
	}
	in, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<10))
	if err != nil {
		return err
	}
	if len(in) < 64 {
		return fmt.Errorf("reseed: %d bytes on stdin, want at least 64 random bytes", len(in))
	}
	seed, key := in[:64], bytes.TrimSpace(in[64:])
	tmp := "/run/reprolab-seed"
	if err := os.WriteFile(tmp, seed, 0o600); err != nil {
		return err
	}
	seedEntropy(tmp) // removes the file
	how := "mixed in; CRNG reseeds on its own schedule (kernel before 4.17)"
	if f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0); err == nil {
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), rndReseedCRNG, 0); e == 0 {
			how = "CRNG reseeded"
		}
		f.Close()
	}
	if len(key) > 0 {
		if _, _, _, _, err := ssh.ParseAuthorizedKey(key); err != nil {
			return fmt.Errorf("reseed: new client key: %w", err)
		}
		tmpKey := authorizedKeysPath + ".new"
		if err := os.WriteFile(tmpKey, append(key, '\n'), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmpKey, authorizedKeysPath); err != nil {
			return err
		}
		how += ", client key replaced"
	}
	fmt.Println("reseed:", how)
	logf("reseed: %s", how)
	return nil
}
