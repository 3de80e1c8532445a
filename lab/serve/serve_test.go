package serve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree builds a results root with a run dir, a vmcore, a database and symlinks that stay
// inside or leave the root.
func tree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "results")
	run := filepath.Join(root, "run-1")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(run, 0o755))
	must(os.MkdirAll(filepath.Join(root, "matrix-m"), 0o755))
	must(os.WriteFile(filepath.Join(root, "matrix-m", "index.html"), []byte("<h1>heat</h1>"), 0o644))
	must(os.WriteFile(filepath.Join(run, "console.log"), []byte("[ 1.0] <script>x</script>\n"), 0o644))
	vmcore := make([]byte, 4096)
	copy(vmcore, "\x7fELF")
	for i := 4; i < len(vmcore); i++ {
		vmcore[i] = byte(i)
	}
	must(os.WriteFile(filepath.Join(run, "vmcore"), vmcore, 0o600))
	must(os.WriteFile(filepath.Join(root, "reprolab.db"), []byte("SQLite"), 0o644))
	must(os.WriteFile(filepath.Join(base, "secret"), []byte("host key"), 0o644))
	must(os.Symlink(filepath.Join(base, "secret"), filepath.Join(run, "escape")))
	must(os.Symlink("../../secret", filepath.Join(run, "escape-rel")))
	must(os.Symlink(base, filepath.Join(root, "up")))
	must(os.Symlink("console.log", filepath.Join(run, "inside")))
	must(os.Symlink("../reprolab.db", filepath.Join(run, "db-link")))
	return root
}

func TestHandler(t *testing.T) {
	root := tree(t)
	h := Handler(root)
	for _, tc := range []struct {
		name, method, path, host string
		header                   map[string]string
		code                     int
		body, ctype              string // substring of body, prefix of Content-Type
	}{
		{name: "only matrix report", path: "/", code: 302},
		{name: "console is text", path: "/run-1/console.log", code: 200, body: "<script>", ctype: "text/plain"},
		{name: "vmcore has no extension", path: "/run-1/vmcore", code: 200, body: "\x7fELF", ctype: "application/octet-stream"},
		{name: "range on vmcore", path: "/run-1/vmcore", header: map[string]string{"Range": "bytes=0-3"}, code: 206, body: "\x7fELF"},
		{name: "range past end", path: "/run-1/vmcore", header: map[string]string{"Range": "bytes=9000-"}, code: 416},
		{name: "head", method: http.MethodHead, path: "/run-1/vmcore", code: 200},
		{name: "run dir lists", path: "/run-1/", code: 200, body: "console.log"},
		{name: "run dir without slash", path: "/run-1", code: 301},
		{name: "database hidden", path: "/reprolab.db", code: 404},
		{name: "dot dot", path: "/../secret", code: 404},
		{name: "absolute symlink out", path: "/run-1/escape", code: 404},
		{name: "relative symlink out", path: "/run-1/escape-rel", code: 404},
		{name: "symlinked dir out", path: "/up/secret", code: 404},
		{name: "symlink inside", path: "/run-1/inside", code: 200, body: "<script>"},
		{name: "symlink to database", path: "/run-1/db-link", code: 404},
		{name: "missing", path: "/run-1/nope", code: 404},
		{name: "post", method: http.MethodPost, path: "/run-1/console.log", code: 405},
		{name: "delete", method: http.MethodDelete, path: "/run-1/console.log", code: 405},
		{name: "localhost with port", path: "/run-1/console.log", host: "localhost:8080", code: 200},
		{name: "ipv6 loopback", path: "/run-1/console.log", host: "[::1]:8080", code: 200},
		{name: "127.0.0.2", path: "/run-1/console.log", host: "127.0.0.2", code: 200},
		{name: "rebinding name", path: "/run-1/console.log", host: "evil.example:8080", code: 421},
		{name: "localhost lookalike", path: "/run-1/console.log", host: "localhost.evil.example", code: 421},
		{name: "public ip", path: "/run-1/console.log", host: "192.0.2.1:8080", code: 421},
		{name: "empty host", path: "/run-1/console.log", host: "-", code: 421},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.method
			if m == "" {
				m = http.MethodGet
			}
			req := httptest.NewRequest(m, "http://127.0.0.1:8080/", nil)
			req.URL.Path = tc.path // keep ../ unnormalised, as a raw client could send it
			req.Host = "127.0.0.1:8080"
			if tc.host == "-" {
				req.Host = ""
			} else if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("%s %s (Host %q) → %d, want %d: %s", m, tc.path, req.Host, rec.Code, tc.code, rec.Body)
			}
			if tc.body != "" && !bytes.Contains(rec.Body.Bytes(), []byte(tc.body)) {
				t.Errorf("body %q lacks %q", rec.Body, tc.body)
			}
			if tc.ctype != "" && !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %s", rec.Header().Get("Content-Type"), tc.ctype)
			}
			if rec.Code == 200 && rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff header")
			}
			if strings.Contains(rec.Body.String(), "host key") {
				t.Error("served a file outside the root")
			}
		})
	}
}
