package nightly

import (
	"bytes"
	"encoding/json"
	"html/template"
	"os"
	"path/filepath"

	"github.com/reprolab/reprolab/lab/atomicfile"
)

// Write puts summary.md, summary.html and summary.json into dir (each replaced
// atomically), and a dated copy of the JSON so earlier nights stay readable.
func (s *Summary) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md, html bytes.Buffer
	s.markdown(&md)
	if err := page.Execute(&html, s); err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	files := map[string][]byte{"summary.md": md.Bytes(), "summary.html": html.Bytes(), "summary.json": js,
		"summary-" + s.Started.Format("20060102T150405Z") + ".json": js}
	for name, data := range files {
		if err := atomicfile.Write(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Markdown is the summary as summary.md has it.
func (s *Summary) Markdown() string {
	var b bytes.Buffer
	s.markdown(&b)
	return b.String()
}

// page is the HTML summary; html/template escapes every commit subject and error.
var page = template.Must(template.New("nightly").Funcs(template.FuncMap{
	"prev": prevCell, "verdict": verdictCell, "bisect": bisectCell,
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Nightly {{.Name}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}
.new{background:#fdd}.fixed{background:#dfd}.still-failing{background:#fed}</style></head><body>
<h1>Nightly {{.Name}}</h1><p>{{.Started.Format "2006-01-02 15:04 UTC"}} – {{.Finished.Format "15:04 UTC"}}</p>
<table><tr><th>tree</th><th>cell</th><th>head</th><th>previous</th><th>verdict</th><th>change</th><th>bisection</th></tr>
{{range .Results}}<tr class="{{.Change}}"><td>{{.Tree}}</td><td>{{.Cell}}</td><td><code>{{.Head.Short}}</code> {{.Head.Subject}}</td><td>{{prev .}}</td><td>{{verdict .}}</td><td>{{.Change}}</td><td>{{bisect .}}</td></tr>
{{end}}</table></body></html>
`))
