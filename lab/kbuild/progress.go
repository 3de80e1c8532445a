package kbuild

import (
	"io"

	lprogress "github.com/reprolab/reprolab/lab/progress"
)

// progress reports the build phase and, while compiling, how far make got, through
// lab/progress: a bar with percent and ETA on a terminal, timestamped phase lines and a
// count line every 30 s otherwise, so CI logs stay short.
type progress struct {
	task  *lprogress.Task
	total int // C files of the last full build of this config, 0 if unknown
}

func newProgress(w io.Writer, name string) *progress {
	if w == nil {
		return &progress{}
	}
	return &progress{task: lprogress.Start(w, "kbuild "+name)}
}

func (p *progress) phase(name, detail string) { p.task.Phase(name, detail) }

func (p *progress) compiled(n int) { p.task.Progress(int64(n), int64(p.total)) }

func (p *progress) done() { p.task.Done() }
