package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8080", "example.org:80", "nonsense"} {
		if ln, err := listenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("listened on %s", addr)
		} else if !strings.Contains(err.Error(), "--addr") {
			t.Errorf("%s: error %q does not name --addr", addr, err)
		}
	}
}

func TestServeReadOnly(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "matrix-m"), 0o755)
	os.MkdirAll(filepath.Join(dir, "m-cell-r1"), 0o755)
	os.WriteFile(filepath.Join(dir, "matrix-m", "index.html"), []byte("<h1>heat</h1>"), 0o644)
	os.WriteFile(filepath.Join(dir, "m-cell-r1", "console.log"), []byte("[ 1.0] <script>x</script>\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "reprolab.db"), []byte("SQLite"), 0o644)
	ln, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveResults(ctx, ln, dir) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	}()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, _ := get("/"); code != 200 || body != "<h1>heat</h1>" {
		t.Errorf("/ → %d %q, want the only matrix report", code, body)
	}
	if code, body, h := get("/m-cell-r1/console.log"); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.Contains(body, "<script>") {
		t.Errorf("console.log → %d %s", code, h.Get("Content-Type"))
	}
	for _, p := range []string{"/reprolab.db", "/../etc/passwd"} {
		if code, _, _ := get(p); code != 404 {
			t.Errorf("%s → %d, want 404", p, code)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, base+"/matrix-m/index.html", strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s → %d", m, resp.StatusCode)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "matrix-m", "index.html")); string(data) != "<h1>heat</h1>" {
		t.Error("a request changed the results")
	}
}
