package matrix

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/fleet"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/store"
)

// Options are one invocation.
type Options struct {
	Spec       *Spec
	Store      *store.Store
	ResultsDir string
	CacheDir   string
	Jobs       int // parallel guests; 0 = DefaultJobs
	Accel      qemu.Accel
	Only       []Match
	// Runs overrides the spec's runs per cell when > 0.
	Runs     int
	Progress io.Writer
	// Build and Run default to kbuild.Build and repro.Run.
	Build func(context.Context, kbuild.Spec) (*kbuild.Result, error)
	Run   func(context.Context, repro.Config) (*repro.Result, error)
	// AfterRun is called after each finished run (e.g. to rewrite the reports, so a
	// matrix running overnight can be watched). Calls are not concurrent.
	AfterRun func()
	// Dispatch, when set, hands the runs to workers instead of running them here
	// (lab/fleet): it gets the planned trials once the kernels are built. Runs in
	// progress are then the workers', so they are left alone instead of discarded.
	Dispatch func(ctx context.Context, campaignID string, trials []campaign.Trial) error
}

// Summary is what an invocation did.
type Summary struct {
	Cells       int
	Planned     int // runs the matrix wants in total
	Kept        int // finished runs found from earlier invocations
	Discarded   int // interrupted runs found and thrown away
	Ran         int // runs finished by this invocation
	Crashes     int // crashed runs finished by this invocation
	InfraErrors int
	BuildErrors []error
	Interrupted bool
	// Dispatched maps the run ids handed to workers (Options.Dispatch) to their kernel's
	// build key.
	Dispatched map[string]string
}

// DefaultJobs is how many TCG guests the host takes: each guest's vCPUs need a host
// core (TCG threads spin), and each needs its memory plus QEMU's overhead.
func DefaultJobs(guestCPUs, guestMB int) int {
	if guestCPUs < 1 {
		guestCPUs = 1
	}
	jobs := runtime.NumCPU() / guestCPUs
	if avail := memAvailableMB(); avail > 0 {
		byMem := (avail - 1024) / (guestMB + 384)
		if byMem < jobs {
			jobs = byMem
		}
	}
	if jobs < 1 {
		jobs = 1
	}
	return jobs
}

func memAvailableMB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, _ := strconv.Atoi(fields[1])
			return kb / 1024
		}
	}
	return 0
}

type job struct {
	cell *Cell
	k    int
	id   string
}

// CampaignID is the matrix's campaign in the results database.
func CampaignID(name string) string { return campaign.ID(campaign.Matrix, name) }

// Run runs (or resumes) the matrix. The error is for bad input and database failures;
// run outcomes, build failures and interruption are in the Summary.
func Run(ctx context.Context, o Options) (*Summary, error) {
	s := o.Spec
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.CacheDir == "" {
		o.CacheDir = kbuild.DefaultCacheDir()
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs(s.Repro.Guest.CPUs, s.Repro.Guest.Memory.MB())
	}
	runs := s.Budget.Runs
	if o.Runs > 0 {
		runs = o.Runs
	}
	cells, err := s.Cells(o.Only)
	if err != nil {
		return nil, err
	}
	say := func(format string, a ...any) {
		fmt.Fprintf(o.Progress, "matrix %s: %s\n", s.Name, fmt.Sprintf(format, a...))
	}
	e := &campaign.Engine{Store: o.Store, ResultsDir: o.ResultsDir, CacheDir: o.CacheDir, Accel: o.Accel,
		Progress: o.Progress, Logf: say, Build: o.Build, Run: o.Run}
	cid := CampaignID(s.Name)
	// One invocation per matrix and results directory (campaign.Engine.Lock says why).
	lock, err := lockMatrix(o.ResultsDir, s.Name)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	sum := &Summary{Cells: len(cells), Planned: len(cells) * runs}
	if err := e.Open(ctx, campaign.Campaign{ID: cid, Kind: campaign.Matrix, Name: s.Name, SpecPath: s.Path, SpecSHA256: s.SHA256}); err != nil {
		return nil, asBad(err)
	}

	// Resume: a run still "running" in the database was cut off (Ctrl-C, SIGKILL,
	// reboot); the engine discards its row and folder, and it is redone.
	// With workers (Dispatch), rows in progress are theirs: keep them.
	var prev []store.Run
	var discarded int
	if o.Dispatch != nil {
		prev, err = finishedRuns(ctx, e, cid)
	} else {
		prev, discarded, err = e.Resume(ctx, cid)
	}
	if err != nil {
		return nil, err
	}
	sum.Discarded = discarded
	done := map[string]bool{}
	for _, r := range prev {
		done[r.ID] = true
	}
	var queue []job
	for k := 1; k <= runs; k++ { // round-robin: every cell gets its first run early
		for _, c := range cells {
			id := s.RunID(c, k)
			if done[id] {
				sum.Kept++
				continue
			}
			queue = append(queue, job{cell: c, k: k, id: id})
		}
	}
	say("%d cells × %d runs = %d runs; %d finished earlier, %d interrupted runs discarded, %d to do with %d jobs",
		len(cells), runs, sum.Planned, sum.Kept, sum.Discarded, len(queue), o.Jobs)

	// Builds: each distinct kernel once, one at a time (a kernel build takes all
	// cores), only for cells that still have runs to do.
	prevCells, err := o.Store.Cells(ctx, cid)
	if err != nil {
		return nil, err
	}
	prevBuild := map[string]string{}
	for _, c := range prevCells {
		prevBuild[c.ID] = c.BuildID
	}
	needed := map[string]bool{}
	for _, j := range queue {
		needed[j.cell.BuildKey()] = true
	}
	kernels := map[string]*campaign.Build{}
	for _, c := range cells {
		key := c.BuildKey()
		if kernels[key] != nil || !needed[key] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		k, err := s.kernel(c)
		if err != nil {
			return nil, err
		}
		if o.Dispatch != nil && k.Source != nil {
			// Built by a worker, which then enqueues the cell's runs (lab/fleet).
			kernels[key] = fleet.PendingBuild(k)
			continue
		}
		b, err := e.Kernel(ctx, cid, k)
		if err != nil {
			return nil, asBad(err)
		}
		if b.Failed != nil {
			sum.BuildErrors = append(sum.BuildErrors, b.Failed)
		}
		kernels[key] = b
	}
	var rows []store.Cell
	for _, c := range cells {
		bid := prevBuild[c.ID()]
		if b := kernels[c.BuildKey()]; b != nil {
			bid = b.ID
		}
		rows = append(rows, store.Cell{Campaign: cid, ID: c.ID(), Arch: c.Arch, Kernel: c.Kernel.Name, Config: c.Config.Name,
			Probe: strconv.Itoa(c.Probe), Patches: c.Patches.Name, Cmdline: c.Cmdline.Name, ExpectCrash: c.Expect,
			PlannedRuns: runs, BuildID: bid, Position: c.Position})
	}
	// With --only, the other cells keep their rows (and so their place in reports).
	if len(o.Only) > 0 {
		current := map[string]bool{}
		for _, r := range rows {
			current[r.ID] = true
		}
		for _, c := range prevCells {
			if !current[c.ID] {
				rows = append(rows, c)
			}
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Position < rows[j].Position })
	}
	if err := o.Store.PutCells(ctx, cid, rows); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		sum.Interrupted = true
		return sum, nil
	}

	if o.Dispatch != nil {
		return dispatch(ctx, o, cid, kernels, queue, sum)
	}

	// Runs.
	p := &progress{say: say, total: sum.Planned, done: sum.Kept, start: time.Now(), jobs: o.Jobs, todo: len(queue),
		cells: len(cells), perCell: runs, cellRuns: map[string]int{}}
	for _, c := range cells {
		for k := 1; k <= runs; k++ {
			if done[s.RunID(c, k)] {
				p.cellRuns[c.ID()]++
			}
		}
		if p.cellRuns[c.ID()] >= runs {
			p.cellsDone++
		}
	}
	for _, r := range prev {
		if r.Outcome == string(repro.Crashed) {
			p.crashes++
		}
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var mu, afterMu sync.Mutex
	var fatal error
	for w := 0; w < o.Jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				b := kernels[j.cell.BuildKey()]
				if b == nil || b.Failed != nil {
					p.skip()
					continue
				}
				iters, dur := s.loopBudget()
				res, err := e.Trial(ctx, cid, campaign.Trial{ID: j.id, Group: j.cell.ID(), Attempt: j.k, Build: b,
					Repro: s.Repro, Cmdline: s.CellCmdline(j.cell), Iterations: iters, Duration: dur,
					Dir: j.id}) // a matrix's runs keep their historical folders, <results>/<run id>
				if err != nil && fault.IsInput(err) {
					err = bad("cell %s: %v", j.cell.ID(), err)
				}
				mu.Lock()
				switch {
				case err != nil:
					if fatal == nil {
						fatal = err
					}
				case res == nil:
					sum.Interrupted = true
				default:
					sum.Ran++
					if res.Outcome == string(repro.Crashed) {
						sum.Crashes++
					}
					if res.Outcome == string(repro.InfraError) {
						sum.InfraErrors++
					}
				}
				mu.Unlock()
				if err == nil && res != nil {
					p.finished(j, res)
					if o.AfterRun != nil {
						afterMu.Lock()
						o.AfterRun()
						afterMu.Unlock()
					}
				}
			}
		}()
	}
	for _, j := range queue {
		mu.Lock()
		stop := fatal != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		sum.Interrupted = true
	}
	return sum, fatal
}

// finishedRuns are a campaign's finished runs.
func finishedRuns(ctx context.Context, e *campaign.Engine, cid string) ([]store.Run, error) {
	all, err := e.Runs(ctx, cid)
	var out []store.Run
	for _, r := range all {
		if r.State == store.Finished {
			out = append(out, r)
		}
	}
	return out, err
}

// dispatch hands the runs still to do to o.Dispatch, as campaign trials.
func dispatch(ctx context.Context, o Options, cid string, kernels map[string]*campaign.Build, queue []job, sum *Summary) (*Summary, error) {
	s := o.Spec
	var trials []campaign.Trial
	for _, j := range queue {
		b := kernels[j.cell.BuildKey()]
		if b == nil || b.Failed != nil {
			continue
		}
		iters, dur := s.loopBudget()
		trials = append(trials, campaign.Trial{ID: j.id, Group: j.cell.ID(), Attempt: j.k, Build: b,
			Repro: s.Repro, Cmdline: s.CellCmdline(j.cell), Iterations: iters, Duration: dur, Dir: j.id})
		if sum.Dispatched == nil {
			sum.Dispatched = map[string]string{}
		}
		sum.Dispatched[j.id] = b.Kernel.BuildKey()
	}
	if err := o.Dispatch(ctx, cid, trials); err != nil {
		return nil, err
	}
	return sum, nil
}

// kernel is the campaign kernel a cell runs. Prebuilt paths are resolved here, in the
// matrix spec's syntax (~, $REPROLAB_CACHE, globs), so their errors name the spec's terms.
func (s *Spec) kernel(c *Cell) (campaign.Kernel, error) {
	k := campaign.Kernel{Name: c.Kernel.Name, Arch: c.Arch, Key: c.BuildKey()}
	if c.Kernel.Source == nil {
		pb := c.Kernel.Prebuilt[c.Arch]
		var p campaign.Prebuilt
		var err error
		if p.Image, err = resolvePrebuilt(c.Kernel.Name, c.Arch, "image", pb.Image); err != nil {
			return k, err
		}
		if p.Modules, err = resolvePrebuilt(c.Kernel.Name, c.Arch, "modules", pb.Modules); err != nil {
			return k, err
		}
		if p.Vmlinux, err = resolvePrebuilt(c.Kernel.Name, c.Arch, "vmlinux", pb.Vmlinux); err != nil {
			return k, err
		}
		k.Prebuilt = &p
		return k, nil
	}
	k.Source, k.Base, k.Fragments, k.Patches = c.Kernel.Source, c.Config.Base, c.Config.Fragments, c.Patches.Files
	k.Config, k.PatchSet = c.Config.Name, c.Patches.Name
	k.Probes = append(append([]string(nil), s.Probes...), c.Patches.Probes...)
	k.FragmentDirs = []string{filepath.Join(s.Dir, "kconfigs"), "kconfigs", filepath.Join(s.Dir, "..", "..", "kconfigs")}
	return k, nil
}

// asBad keeps the engine's bad-input errors bad input for the CLI's exit code.
func asBad(err error) error {
	if err != nil && fault.IsInput(err) {
		return bad("%v", err)
	}
	return err
}

// progress reports the whole matrix: runs done/total, crashes so far, ETA.
type progress struct {
	mu                sync.Mutex
	say               func(string, ...any)
	total, done, todo int
	ran, crashes      int
	skipped           int
	start             time.Time
	jobs              int
	cells, cellsDone  int
	perCell           int
	cellRuns          map[string]int
}

func (p *progress) skip() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skipped++
	p.done++
}

func (p *progress) finished(j job, r *store.Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.ran++
	if r.Outcome == string(repro.Crashed) {
		p.crashes++
	}
	p.cellRuns[j.cell.ID()]++
	if p.cellRuns[j.cell.ID()] == p.perCell {
		p.cellsDone++
	}
	left := p.todo - p.ran - p.skipped
	eta := "?"
	if p.ran > 0 {
		// Elapsed per finished run already includes the parallelism.
		per := time.Since(p.start) / time.Duration(p.ran)
		eta = (per * time.Duration(left)).Round(time.Second).String()
	}
	what := r.Outcome
	if len(r.Crashes) > 0 {
		what += ": " + r.Crashes[0].Title
	}
	p.say("[%d/%d cells, %d/%d runs, %d crashed so far, ETA %s] %s %s", p.cellsDone, p.cells, p.done, p.total, p.crashes, eta, j.id, what)
}

// lockMatrix takes the matrix campaign's lock, <results>/.matrix-<name>.lock.
func lockMatrix(results, name string) (*os.File, error) {
	f, err := (&campaign.Engine{ResultsDir: results}).Lock(CampaignID(name))
	return f, asBad(err)
}
