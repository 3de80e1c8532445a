package repro

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/reprolab/reprolab/lab/console"
)

// Event is something that happened in the guest during the loop that is neither a crash
// nor a host fault, recorded in meta.json with its evidence.
type Event struct {
	Kind       string  `json:"kind"` // "oom"
	Iteration  int     `json:"iteration"`
	AtSeconds  float64 `json:"at_seconds"`     // since the loop started
	File       string  `json:"file,omitempty"` // oom-N.txt: the OOM killer's report
	Invoker    string  `json:"invoker,omitempty"`
	Constraint string  `json:"constraint,omitempty"`
	Killed     string  `json:"killed,omitempty"`
	KilledPID  int     `json:"killed_pid,omitempty"`
	AnonRSSkB  int     `json:"anon_rss_kb,omitempty"`
	// EndedIteration: the OOM killer took the reproducer (its iteration exited non-zero).
	EndedIteration bool `json:"ended_iteration,omitempty"`
}

// noteOOMs records every OOM-killer report that appeared on the console since offset from
// (the start of an iteration) as an event with its report in oom-N.txt. failed says the
// iteration exited non-zero: then the kernel is given a moment to finish printing, since
// the exit status can overtake the end of the report on the serial line. It returns
// whether an OOM kill happened during the iteration.
func (r *run) noteOOMs(from int, failed bool) bool {
	var ooms []console.OOM
	start := time.Now()
	for {
		log := r.watch.Bytes()
		if from < r.oomSeen {
			from = r.oomSeen
		}
		ooms = console.ParseOOMs(log[from:])
		rest := log[from:]
		if len(ooms) > 0 {
			rest = rest[ooms[len(ooms)-1].End:]
		}
		printing := console.OOMStarted(rest) // a report has begun but not reached its kill line
		waited := time.Since(start)
		if !failed || (len(ooms) > 0 && !printing) || waited > 5*time.Second || (!printing && waited > time.Second) {
			if len(ooms) > 0 {
				r.oomSeen = from + ooms[len(ooms)-1].End
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, o := range ooms {
		n := len(r.res.Events) + 1
		name := fmt.Sprintf("oom-%d.txt", n)
		if err := writeFileSync(filepath.Join(r.res.Dir, name), append(append([]byte(nil), o.Text...), '\n')); err != nil { // a whole last line, as on the console
			r.say("writing %s: %v", name, err)
			name = ""
		}
		r.res.Events = append(r.res.Events, Event{
			Kind: "oom", Iteration: r.iter, AtSeconds: time.Since(r.loopAt).Seconds(), File: name,
			Invoker: o.Invoker, Constraint: o.Constraint, Killed: o.Killed, KilledPID: o.KilledPID,
			AnonRSSkB: o.AnonRSSkB, EndedIteration: failed,
		})
		r.say("oom: iteration %d: the guest's OOM killer killed %s (pid %d, %d MiB anon)", r.iter, o.Killed, o.KilledPID, o.AnonRSSkB>>10)
	}
	return len(ooms) > 0
}

// oomEnded decides an iteration the OOM killer ended: the run goes on (on_oom: continue,
// the default) or stops there with what it looped so far as exposure (on_oom: stop).
func (r *run) oomEnded() (stop bool, why error) {
	e := r.res.Events[len(r.res.Events)-1]
	if !r.cfg.Repro.OnOOM.Stop() {
		return false, nil
	}
	return true, fmt.Errorf("stopped at iteration %d: the guest's OOM killer killed %s (pid %d), on_oom: stop (%s)", r.iter, e.Killed, e.KilledPID, e.File)
}
