package validate

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
)

// planned is one trial a worker runs.
type planned struct {
	r    *archRun
	side Side
	secs float64
	id   string
}

// scheduler hands trials to Jobs workers on the host's cores: arches take turns, and
// within an arch the decision alternates baseline and candidate by loop time, so the
// host's load drift over the hours of a validation falls on both kernels alike. When an
// arch reaches its verdict its trials still running are cancelled (an interrupted trial
// is discarded, never counted).
type scheduler struct {
	mu   sync.Mutex
	o    *Options
	runs []*archRun
	turn int
}

func (o *Options) schedule(ctx context.Context, byArch map[string]*archRun) error {
	s := &scheduler{o: o}
	for _, a := range o.Arches {
		r := byArch[a]
		r.ctx, r.cancel = context.WithCancel(ctx)
		defer r.cancel()
		s.runs = append(s.runs, r)
		o.status(r, phaseOf(r))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs *multierror.Error
	for w := 0; w < o.Jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, ok := s.next(ctx)
				if !ok {
					return
				}
				if err := s.run(p); err != nil {
					mu.Lock()
					errs = multierror.Append(errs, err)
					mu.Unlock()
					// Bad input found by a run (or the store failing) stops everything.
					for _, r := range s.runs {
						r.cancel()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	return errs.ErrorOrNil()
}

func phaseOf(r *archRun) string {
	if r.d.Done() {
		return "done"
	}
	return "running"
}

// next plans the next trial, round robin over the arches still undecided.
func (s *scheduler) next(ctx context.Context) (planned, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return planned{}, false
	}
	for i := 0; i < len(s.runs); i++ {
		r := s.runs[(s.turn+i)%len(s.runs)]
		if r.d.Done() || r.ctx.Err() != nil {
			continue
		}
		s.turn = (s.turn + i + 1) % len(s.runs)
		side, secs := r.d.Next(s.o.TrialDuration.Seconds())
		r.seq[side]++
		r.running++
		return planned{r: r, side: side, secs: secs, id: trialID(r.arch, side, r.seq[side])}, true
	}
	return planned{}, false
}

// run runs one planned trial, retrying it (attempt 2, 3, ...) after an infrastructure
// error: such a run is recorded and reported, never evidence, and the decision stops
// the arch after too many in a row.
func (s *scheduler) run(p planned) error {
	e := s.o.Engine
	b := p.r.base
	if p.side == Candidate {
		b = p.r.cand
	}
	planned := p.secs
	defer func() {
		s.mu.Lock()
		p.r.running--
		s.mu.Unlock()
	}()
	for attempt := 1; ; attempt++ {
		rec, err := e.Trial(p.r.ctx, s.o.CampaignID(), campaign.Trial{
			ID: p.id, Group: group(p.side, p.r.arch), Attempt: attempt, Build: b, Repro: s.o.Repro,
			Cmdline: s.o.Cmdline, Duration: secondsDuration(p.secs), Iterations: s.o.TrialIterations,
		})
		if err != nil && p.r.ctx.Err() != nil && !fault.IsInput(err) {
			// Cancelled at the arch's verdict or by Ctrl-C: nothing may stay recorded (a
			// cancelled insert can still have committed its "running" row).
			_ = e.Store.DiscardRun(context.WithoutCancel(p.r.ctx), s.o.CampaignID(), p.id, attempt)
			rec, err = nil, nil
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		if rec == nil { // interrupted: discarded, its planned time released
			p.r.d.pending[sideIndex(p.side)] -= planned
			if p.r.d.pending[sideIndex(p.side)] < 0 {
				p.r.d.pending[sideIndex(p.side)] = 0
			}
			s.mu.Unlock()
			return nil
		}
		wasDone := p.r.d.Done()
		o := obsOf(*rec, p.side, planned)
		planned = 0
		p.r.d.Add(o)
		done := p.r.d.Done()
		s.o.status(p.r, phaseOf(p.r))
		s.mu.Unlock()
		if done && !wasDone {
			p.r.cancel()
		}
		if !o.Infra || done {
			return nil
		}
	}
}

func secondsDuration(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Second)
}
