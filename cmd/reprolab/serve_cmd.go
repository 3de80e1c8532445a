package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/fault"
)

func newServeCmd() *cobra.Command {
	var results, addr string
	cmd := &cobra.Command{
		Use:   "serve [--results DIR] [--addr 127.0.0.1:PORT]",
		Short: "serve the HTML matrix reports and run artifacts on 127.0.0.1",
		Long: `Serve the results directory — matrix reports and every run's artifacts — read-only on
the loopback interface. Reports are rewritten by the matrix after each run, so reloading
the page follows a matrix in progress.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, results, addr) },
	}
	cmd.Flags().StringVar(&results, "results", "results", "results directory to serve")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "listen address; loopback only (127.0.0.1, ::1 or localhost)")
	return cmd
}

func runServe(cmd *cobra.Command, results, addr string) error {
	ln, err := listenLoopback(addr)
	if err != nil {
		return err
	}
	if st, err := os.Stat(results); err != nil || !st.IsDir() {
		ln.Close()
		return fault.Inputf("results directory %s: not found (run a matrix first, or give --results)", results)
	}
	ctx, stop := signalContext("stopping the server")
	defer stop()
	fmt.Fprintf(cmd.ErrOrStderr(), "reprolab serve: http://%s/ (read-only, %s)\n", ln.Addr(), results)
	return serveResults(ctx, ln, results)
}

type badAddrError struct{ msg string }

func (e *badAddrError) Error() string         { return e.msg }
func (e *badAddrError) FaultKind() fault.Kind { return fault.Input }

// listenLoopback listens only on a loopback address: results hold kernel consoles and
// paths of the host, and the server has no authentication.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &badAddrError{fmt.Sprintf("--addr %q: want host:port, e.g. 127.0.0.1:8080", addr)}
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, &badAddrError{fmt.Sprintf("--addr %q: reprolab serve listens on loopback only (127.0.0.1, ::1, localhost); use an SSH tunnel to reach it from elsewhere", addr)}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, &badAddrError{fmt.Sprintf("--addr %q resolved to %s, which is not loopback", addr, tcp.IP)}
	}
	return ln, nil
}

// serveResults serves until ctx ends.
func serveResults(ctx context.Context, ln net.Listener, dir string) error {
	srv := &http.Server{Handler: resultsHandler(dir), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

var indexTmpl = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reprolab results</title></head>
<body style="font: 14px system-ui, sans-serif; margin: 1.5em">
<h1>reprolab results</h1>
{{if .}}<ul>{{range .}}<li><a href="{{.}}/index.html">{{.}}</a></li>{{end}}</ul>{{else}}<p>No matrix reports yet: run <code>reprolab matrix &lt;spec&gt;</code>.</p>{{end}}
</body></html>
`))

// resultsHandler is read-only: GET and HEAD only, no dot files, no database files.
func resultsHandler(dir string) http.Handler {
	files := http.FileServer(http.FS(hiddenFS{os.DirFS(dir)}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Reports carry no scripts; forbid any that console text might smuggle in.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:")
		if r.URL.Path == "/" {
			var reports []string
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.IsDir() && strings.HasPrefix(e.Name(), "matrix-") && fileExists(filepath.Join(dir, e.Name(), "index.html")) {
					reports = append(reports, e.Name())
				}
			}
			if len(reports) == 1 {
				http.Redirect(w, r, "/"+reports[0]+"/index.html", http.StatusFound)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = indexTmpl.Execute(w, reports)
			return
		}
		// Logs and reports are text whatever their extension.
		switch path.Ext(r.URL.Path) {
		case ".log", ".txt":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		files.ServeHTTP(w, r)
	})
}

// hiddenFS hides dot files and the results database from the file server.
type hiddenFS struct{ fs.FS }

func hidden(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.Contains(part, ".db") {
			return true
		}
	}
	return false
}

func (h hiddenFS) Open(name string) (fs.File, error) {
	if hidden(name) {
		return nil, fs.ErrNotExist
	}
	f, err := h.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if d, ok := f.(fs.ReadDirFile); ok {
		return hiddenDir{d}, nil
	}
	return f, nil
}

type hiddenDir struct{ fs.ReadDirFile }

func (d hiddenDir) ReadDir(n int) ([]fs.DirEntry, error) {
	ents, err := d.ReadDirFile.ReadDir(n)
	out := ents[:0]
	for _, e := range ents {
		if !hidden(e.Name()) {
			out = append(out, e)
		}
	}
	return out, err
}
