// Package serve is the read-only HTTP view of a results directory: matrix reports and every
// run's artifacts (consoles, reports, vmcores), for a browser on the same machine.
//
// The server has no authentication, so it defends what it can: it answers only GET and
// HEAD, only for Host headers that name a loopback address (a DNS-rebinding page on the
// web would otherwise reach it through the user's browser under its own name), only files
// whose real path (after symlinks) stays inside the results root, and never dot files or
// the results database. Files are served with http.ServeContent, so any file — a vmcore
// without an extension included — is served with Range support.
package serve

import (
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
)

// Handler serves root read-only.
func Handler(root string) http.Handler {
	return &handler{root: root}
}

type handler struct{ root string }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	if !LoopbackHost(r.Host) {
		// 421: this server is not the one that name is for.
		http.Error(w, fmt.Sprintf("Host %q is not a loopback name: reprolab serve answers only to localhost, 127.0.0.1 or [::1]", r.Host), http.StatusMisdirectedRequest)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Reports carry no scripts; forbid any that console text might smuggle in.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:")
	name := path.Clean("/" + r.URL.Path)
	if name == "/" {
		h.index(w, r)
		return
	}
	if hidden(name) {
		http.NotFound(w, r)
		return
	}
	p, err := h.resolve(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "stat failed", http.StatusInternalServerError)
		return
	}
	if st.IsDir() {
		h.listing(w, r, name, p)
		return
	}
	if !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", contentType(name))
	http.ServeContent(w, r, path.Base(name), st.ModTime(), f)
}

// resolve maps a URL path to a file whose real path is inside the real root.
func (h *handler) resolve(name string) (string, error) {
	root, err := filepath.EvalSymlinks(h.root)
	if err != nil {
		return "", err
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", errors.New("outside the results root")
	}
	// A symlink inside the root may still land on a hidden file (the database).
	if hidden(filepath.ToSlash(rel)) {
		return "", fs.ErrNotExist
	}
	return real, nil
}

// LoopbackHost reports whether a Host header names this machine's loopback interface.
func LoopbackHost(host string) bool {
	if host == "" {
		return false
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		h = host[1 : len(host)-1]
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// contentType: logs, reports and backtraces are text whatever their extension; the rest
// by extension, and unknown ones (vmcore) as bytes, never sniffed into HTML.
func contentType(name string) string {
	switch ext := path.Ext(name); ext {
	case ".log", ".txt", ".md", ".patch", ".diff", ".yaml", ".config":
		return "text/plain; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".json":
		return "application/json"
	case ".xml":
		return "application/xml"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

// hidden hides dot files and the results database.
func hidden(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.Contains(part, ".db") {
			return true
		}
	}
	return false
}

var indexTmpl = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reprolab results</title></head>
<body style="font: 14px system-ui, sans-serif; margin: 1.5em">
<h1>reprolab results</h1>
{{if .}}<ul>{{range .}}<li><a href="{{.}}/index.html">{{.}}</a></li>{{end}}</ul>{{else}}<p>No matrix reports yet: run <code>reprolab matrix &lt;spec&gt;</code>.</p>{{end}}
</body></html>
`))

// index lists the matrix reports, or goes straight to the only one.
func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	var reports []string
	ents, _ := os.ReadDir(h.root)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "matrix-") {
			if st, err := os.Stat(filepath.Join(h.root, e.Name(), "index.html")); err == nil && st.Mode().IsRegular() {
				reports = append(reports, e.Name())
			}
		}
	}
	if len(reports) == 1 {
		http.Redirect(w, r, "/"+reports[0]+"/index.html", http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexTmpl.Execute(w, reports)
}

var listTmpl = template.Must(template.New("list").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Dir}}</title></head>
<body style="font: 14px system-ui, sans-serif; margin: 1.5em">
<h1>{{.Dir}}</h1><ul>{{range .Names}}<li><a href="{{.}}">{{.}}</a></li>{{end}}</ul>
</body></html>
`))

// listing shows a directory (a run dir): its index.html if it has one, else its files.
func (h *handler) listing(w http.ResponseWriter, r *http.Request, name, real string) {
	if !strings.HasSuffix(r.URL.Path, "/") {
		http.Redirect(w, r, path.Base(name)+"/", http.StatusMovedPermanently)
		return
	}
	ents, err := os.ReadDir(real)
	if err != nil {
		http.Error(w, "cannot list", http.StatusInternalServerError)
		return
	}
	var names []string
	for _, e := range ents {
		if hidden(e.Name()) {
			continue
		}
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = listTmpl.Execute(w, struct {
		Dir   string
		Names []string
	}{name, names})
}
