package image

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// freshCache is an empty cache that shares only the built agent binaries, so a test
// exercises key generation without rebuilding the agent.
func freshCache(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox (apt-get install busybox-static)")
	}
	// Build (or find) the agent in the shared cache once, then link it into the new one.
	if _, err := agentBinary(context.Background(), "x86_64", DefaultCacheDir(), io.Discard); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	src := filepath.Join(DefaultCacheDir(), "agent")
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(cache, "agent", rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		return os.Link(p, dst)
	})
	if err != nil {
		t.Fatal(err)
	}
	return cache
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

// TestConcurrentBuildsOnFreshCache: several runs starting together on an empty cache must
// agree on one host key and one image, and leave both readable by the user only.
func TestConcurrentBuildsOnFreshCache(t *testing.T) {
	cache := freshCache(t)
	const n = 6
	res := make([]*Initramfs, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res[i], errs[i] = BuildInitramfs(context.Background(), InitramfsSpec{Arch: "x86_64", CacheDir: cache, Busybox: "/bin/busybox"})
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if res[i].Path != res[0].Path || !bytes.Equal(res[i].HostKey.Marshal(), res[0].HostKey.Marshal()) {
			t.Errorf("build %d: %s, a different key or image than build 0 (%s)", i, res[i].Path, res[0].Path)
		}
	}
	imgs, _ := filepath.Glob(filepath.Join(cache, "initramfs", "*.cpio"))
	if len(imgs) != 1 {
		t.Errorf("initramfs images in a fresh cache after %d concurrent builds: %v, want 1 (the others are orphans)", n, imgs)
	}
	_, pub, err := hostKey(cache)
	if err != nil || !bytes.Equal(pub.Marshal(), res[0].HostKey.Marshal()) {
		t.Errorf("the cached key is not the one baked into the image (%v)", err)
	}
	wantMode(t, keysDir(cache), 0o700)
	wantMode(t, filepath.Join(keysDir(cache), "ssh_host_ed25519_key"), 0o600)
	wantMode(t, filepath.Join(cache, "initramfs"), 0o700)
	wantMode(t, res[0].Path, 0o600)
}

// TestOldCacheTightened: a cache written before the rule (0755 folders, 0644 image) is
// made private on its next use, without a new key or image.
func TestOldCacheTightened(t *testing.T) {
	cache := freshCache(t)
	s := InitramfsSpec{Arch: "x86_64", CacheDir: cache, Busybox: "/bin/busybox"}
	a, err := BuildInitramfs(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{keysDir(cache), filepath.Dir(a.Path)} {
		_ = os.Chmod(p, 0o755)
	}
	for _, p := range []string{filepath.Join(keysDir(cache), "ssh_host_ed25519_key"), a.Path} {
		_ = os.Chmod(p, 0o644)
	}
	b, err := BuildInitramfs(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if a.Path != b.Path {
		t.Errorf("rebuilt %s as %s", a.Path, b.Path)
	}
	wantMode(t, keysDir(cache), 0o700)
	wantMode(t, filepath.Join(keysDir(cache), "ssh_host_ed25519_key"), 0o600)
	wantMode(t, filepath.Dir(a.Path), 0o700)
	wantMode(t, a.Path, 0o600)
}
