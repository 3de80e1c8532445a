package validate

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress shows each arch's state: on a terminal one mpb bar per arch (baseline crashes
// and λ, candidate clean hours against the T they need, ETA), otherwise a timestamped
// line whenever an arch's state changes. Write prints a line above the bars, so the
// engine's build and guest lines can go through it.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	p     *mpb.Progress
	bars  map[string]*mpb.Bar
	text  map[string]string
	last  map[string]string
	start time.Time
}

// NewProgress starts the display for the arches; tty selects bars.
func NewProgress(w io.Writer, tty bool, arches []string) *Progress {
	pr := &Progress{w: w, bars: map[string]*mpb.Bar{}, text: map[string]string{}, last: map[string]string{}, start: time.Now()}
	if !tty {
		return pr
	}
	pr.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(500*time.Millisecond))
	for _, a := range arches {
		a := a
		pr.text[a] = "waiting"
		pr.bars[a] = pr.p.AddBar(1000, mpb.BarWidth(24),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-7s", a))),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				pr.mu.Lock()
				defer pr.mu.Unlock()
				return pr.text[a]
			})))
	}
	return pr
}

// Update shows one arch's state (a validate.Options.Status callback).
func (pr *Progress) Update(s Status) {
	line := describeStatus(s)
	pr.mu.Lock()
	pr.text[s.Arch] = line
	bar := pr.bars[s.Arch]
	changed := pr.last[s.Arch] != line
	pr.last[s.Arch] = line
	pr.mu.Unlock()
	if bar == nil {
		if changed {
			fmt.Fprintf(pr.w, "%s validate %s: %s\n", time.Now().Format("15:04:05"), s.Arch, line)
		}
		return
	}
	done := s.BaseHours + s.CandHours
	frac := 0.0
	if !math.IsInf(s.ETAHours, 1) && done+s.ETAHours > 0 {
		frac = done / (done + s.ETAHours)
	}
	if s.Verdict != Undecided {
		frac = 1
	}
	bar.SetCurrent(int64(1000 * frac))
}

// describeStatus is the one-line state of an arch.
func describeStatus(s Status) string {
	if s.Verdict != Undecided {
		return fmt.Sprintf("%s (baseline %d crashes in %.2f h, candidate %.2f h)", s.Verdict, s.BaseCrashes, s.BaseHours, s.CandHours)
	}
	if s.Phase != "running" {
		return s.Phase
	}
	rate := "λ ?"
	if !math.IsNaN(s.Rate) {
		rate = fmt.Sprintf("λ %.3g/h", s.Rate)
	}
	need := "T ?"
	if !math.IsInf(s.NeedHours, 1) {
		need = fmt.Sprintf("T %.2f h", s.NeedHours)
	}
	eta := "ETA ?"
	if !math.IsInf(s.ETAHours, 1) {
		eta = "ETA " + (time.Duration(s.ETAHours * float64(time.Hour))).Round(time.Second).String() + " of looping"
	}
	return fmt.Sprintf("baseline %d crashes in %.2f h, %s | candidate %.2f h clean of %s | %s", s.BaseCrashes, s.BaseHours, rate, s.CandHours, need, eta)
}

// Write prints p above the bars (or as is without a terminal).
func (pr *Progress) Write(p []byte) (int, error) {
	if pr.p != nil {
		return pr.p.Write(p)
	}
	return pr.w.Write(p)
}

// Wait completes the bars and stops the display.
func (pr *Progress) Wait() {
	if pr.p == nil {
		return
	}
	for _, b := range pr.bars {
		b.SetTotal(-1, true)
	}
	pr.p.Wait()
}
