package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/reprolab/reprolab/lab/report"
)

// hang prints the hang report of a hung run directory: its hang.txt (what the kernel
// printed for the lab's sysrq l/w/t and NMI) parsed by lab/report.
func (p *reportPrinter) hang(path string) {
	if st, err := os.Stat(path); err != nil || !st.IsDir() || p.f.json {
		return
	}
	text, err := os.ReadFile(filepath.Join(path, "hang.txt"))
	if err != nil {
		return
	}
	h := report.ParseHang(text)
	fmt.Fprintf(p.out, "%s: hang: %s\n", path, h.Title)
	for _, c := range h.CPUs {
		fmt.Fprintf(p.out, "  CPU %d  %-16s in %s\n", c.CPU, c.Comm, taskFunc(c))
	}
	for _, b := range h.Blocked {
		fmt.Fprintf(p.out, "  blocked  %-16s pid %-6d state %s in %s\n", b.Comm, b.PID, b.State, b.Where)
	}
	if h.Tasks > 0 {
		fmt.Fprintf(p.out, "  %d tasks in the task dump (hang.txt)\n", h.Tasks)
	}
}

func taskFunc(t *report.Task) string {
	if t.Guilty >= 0 && t.Guilty < len(t.Frames) {
		return t.Frames[t.Guilty].Func
	}
	return "?"
}
