package image

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

const modulePath = "github.com/reprolab/reprolab"

// agentBinary finds the reprolab-agent for arch: a prebuilt reprolab-agent-<goarch> next to
// the running executable (how releases ship), or else a build from the source tree the
// working directory is in (how tests and developers run). The go build cache makes the
// rebuild a no-op when nothing changed.
func agentBinary(ctx context.Context, arch, cacheDir string, progress io.Writer) (string, error) {
	ga, err := goarch(arch)
	if err != nil {
		return "", err
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "reprolab-agent-"+ga)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	root, err := sourceRoot()
	if err != nil {
		return "", fmt.Errorf("no reprolab-agent-%s next to the executable and %w", ga, err)
	}
	key, err := sourceKey(root, ga)
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "agent", ga, "reprolab-agent-"+key)
	if _, err := os.Stat(out); err == nil {
		touch(out)
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "image: go build reprolab-agent for %s\n", ga)
	tmp := out + ".tmp" + strconv.Itoa(os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", tmp, "./cmd/reprolab-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+ga)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build reprolab-agent for %s in %s: %w\n%s", ga, root, err, stderr.String())
	}
	return out, os.Rename(tmp, out)
}

// sourceKey hashes what the agent is built from: go.mod, go.sum and the non-test Go files
// of cmd/ and lab/ (a superset of the agent's own packages, which is cheap to read and
// cannot miss a dependency), with the toolchain version and target. Even a no-op go build
// costs ~0.4 s, most of a cached initramfs build; a hash lookup costs a few ms.
func sourceKey(root, ga string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", runtime.Version(), ga)
	var files []string
	for _, f := range []string{"go.mod", "go.sum"} {
		files = append(files, filepath.Join(root, f))
	}
	for _, dir := range []string{"cmd", "lab"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hashing agent sources: %w", err)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hashing agent sources: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", strings.TrimPrefix(f, root), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// sourceRoot walks up from the working directory to the reprolab go.mod.
func sourceRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no reprolab source tree (go.mod) above the working directory to build it from; build it with: CGO_ENABLED=0 GOARCH=<goarch> go build -o reprolab-agent-<goarch> ./cmd/reprolab-agent")
		}
		dir = parent
	}
}

// hostKey returns the guest's SSH host key, made once per cache directory and then baked
// into every base initramfs built from it: a stable key keeps the initramfs cacheable, and
// the host pins it with ssh.FixedHostKey.
func hostKey(cacheDir string) (pemBytes []byte, pub ssh.PublicKey, err error) {
	dir := keysDir(cacheDir)
	path := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := secretDir(dir); err != nil {
		return nil, nil, fmt.Errorf("guest host key: %w", err)
	}
	// Generated under a lock: two runs on a fresh cache that each made a key would bake
	// different keys into images, and the loser's image would be orphaned in the cache.
	err = withLock(filepath.Join(dir, ".lock"), func() error {
		var rerr error
		pemBytes, rerr = os.ReadFile(path)
		if rerr == nil {
			return secretFile(path)
		}
		if !errors.Is(rerr, os.ErrNotExist) {
			return rerr
		}
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return gerr
		}
		blk, merr := ssh.MarshalPrivateKey(priv, "reprolab guest host key")
		if merr != nil {
			return merr
		}
		pemBytes = pemEncode(blk)
		return writeFileAtomic(path, pemBytes, 0o600)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("guest host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("guest host key %s: %w (delete it to make a new one)", path, err)
	}
	return pemBytes, signer.PublicKey(), nil
}
