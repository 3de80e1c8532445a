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
	"syscall"
	"time"

	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/kbuild/source"
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

type kernelFiles struct {
	image, vmlinux, modules string
	params                  []string // probe parameters from the build, unused when the spec names them
	buildID                 string
	err                     error
}

type job struct {
	cell *Cell
	k    int
	id   string
}

// Run runs (or resumes) the matrix. The error is for bad input and database failures;
// run outcomes, build failures and interruption are in the Summary.
func Run(ctx context.Context, o Options) (*Summary, error) {
	s := o.Spec
	if o.Build == nil {
		o.Build = kbuild.Build
	}
	if o.Run == nil {
		o.Run = repro.Run
	}
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
	if err := os.MkdirAll(o.ResultsDir, 0o755); err != nil {
		return nil, bad("results dir %s: %v", o.ResultsDir, err)
	}
	// One invocation per matrix and results directory: a second one would take the
	// first one's running runs for interrupted ones and discard them. The kernel drops
	// the lock when its holder dies, even by SIGKILL, so a resume never finds it stale.
	lock, err := lockMatrix(o.ResultsDir, s.Name)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	sum := &Summary{Cells: len(cells), Planned: len(cells) * runs}
	say := func(format string, a ...any) {
		fmt.Fprintf(o.Progress, "matrix %s: %s\n", s.Name, fmt.Sprintf(format, a...))
	}
	if err := o.Store.PutMatrix(ctx, store.Matrix{Name: s.Name, SpecPath: s.Path, SpecSHA256: s.SHA256}); err != nil {
		return nil, err
	}

	// Resume: a run still "running" in the database was cut off (Ctrl-C, SIGKILL,
	// reboot). Its partial artifacts prove nothing; throw both away and redo it.
	prev, err := o.Store.Runs(ctx, s.Name)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, r := range prev {
		if r.State == store.Finished {
			done[r.ID] = true
			continue
		}
		if err := o.Store.DiscardRun(ctx, r.ID); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(filepath.Join(o.ResultsDir, r.ID)); err != nil {
			return nil, fmt.Errorf("removing interrupted run %s: %w", r.ID, err)
		}
		sum.Discarded++
	}
	// A run directory without a finished row is an interrupted run whose row was
	// discarded (or never committed): remove it before the run is redone.
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
	prevCells, err := o.Store.Cells(ctx, s.Name)
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
	kernels := map[string]*kernelFiles{}
	for _, c := range cells {
		key := c.BuildKey()
		if kernels[key] != nil || !needed[key] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		kf, err := o.kernel(ctx, c, say)
		if err != nil {
			return nil, err
		}
		if kf.err != nil {
			sum.BuildErrors = append(sum.BuildErrors, kf.err)
		}
		kernels[key] = kf
	}
	var rows []store.Cell
	for _, c := range cells {
		bid := prevBuild[c.ID()]
		if kf := kernels[c.BuildKey()]; kf != nil {
			bid = kf.buildID
		}
		rows = append(rows, store.Cell{Matrix: s.Name, ID: c.ID(), Arch: c.Arch, Kernel: c.Kernel.Name, Config: c.Config.Name,
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
	if err := o.Store.PutCells(ctx, s.Name, rows); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		sum.Interrupted = true
		return sum, nil
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
		if r.State == store.Finished && r.Outcome == string(repro.Crashed) {
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
				kf := kernels[j.cell.BuildKey()]
				if kf == nil || kf.err != nil {
					p.skip()
					continue
				}
				res, err := o.runOne(ctx, j, kf)
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
					if res.Outcome == repro.Crashed {
						sum.Crashes++
					}
					if res.Outcome == repro.InfraError {
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

// kernel builds or locates a cell's kernel and records it. A build failure is returned
// in kernelFiles.err (the cells are reported as errors); bad input aborts the matrix.
func (o *Options) kernel(ctx context.Context, c *Cell, say func(string, ...any)) (*kernelFiles, error) {
	s := o.Spec
	b := store.Build{Matrix: s.Name, Arch: c.Arch, Kernel: c.Kernel.Name, Config: c.Config.Name, Patches: c.Patches.Name, Status: "ok"}
	kf := &kernelFiles{}
	if c.Kernel.Source == nil {
		pb := c.Kernel.Prebuilt[c.Arch]
		var err error
		if kf.image, err = resolvePrebuilt(c.Kernel.Name, c.Arch, "image", pb.Image); err != nil {
			return nil, err
		}
		if kf.modules, err = resolvePrebuilt(c.Kernel.Name, c.Arch, "modules", pb.Modules); err != nil {
			return nil, err
		}
		if kf.vmlinux, err = resolvePrebuilt(c.Kernel.Name, c.Arch, "vmlinux", pb.Vmlinux); err != nil {
			return nil, err
		}
		b.ID = "prebuilt-" + c.Kernel.Name + "-" + c.Arch
		b.Config, b.Patches = "", ""
		b.Source, b.Image, b.Modules, b.Vmlinux, b.Cached = "prebuilt "+kf.image, kf.image, kf.modules, kf.vmlinux, true
		kf.buildID = b.ID
		say("kernel %s/%s: prebuilt %s", c.Kernel.Name, c.Arch, kf.image)
		return kf, o.Store.PutBuild(ctx, b)
	}
	spec := kbuild.Spec{
		Name: c.Kernel.Name, Arch: c.Arch, Source: *c.Kernel.Source, Base: c.Config.Base,
		Fragments: c.Config.Fragments, Patches: c.Patches.Files,
		Probes:       append(append([]string(nil), s.Probes...), c.Patches.Probes...),
		FragmentDirs: []string{filepath.Join(s.Dir, "kconfigs"), "kconfigs", filepath.Join(s.Dir, "..", "..", "kconfigs")},
		CacheDir:     o.CacheDir, Progress: prefixWriter(o.Progress, "build "+c.BuildKey()+": "),
	}
	say("kernel %s: building %s (cached builds return at once)", c.BuildKey(), describeSource(c.Kernel.Source))
	t0 := time.Now()
	res, err := o.Build(ctx, spec)
	b.Seconds = time.Since(t0).Seconds()
	b.Source = describeSource(c.Kernel.Source)
	if err != nil {
		if kbuild.IsBadInput(err) {
			return nil, bad("kernel %s for cell %s: %v", c.Kernel.Name, c.ID(), err)
		}
		b.ID = "failed-" + c.BuildKey()
		b.Status, b.Error = "failed", err.Error()
		kf.buildID, kf.err = b.ID, fmt.Errorf("building %s: %w", c.BuildKey(), err)
		say("kernel %s: build FAILED: %v", c.BuildKey(), err)
		return kf, o.Store.PutBuild(ctx, b)
	}
	kf.image, kf.vmlinux, kf.params = res.Kernel, res.Vmlinux, res.CmdlineParams
	b.ID = "kbuild-" + res.Key
	b.Image, b.Vmlinux, b.Cached = res.Kernel, res.Vmlinux, res.Cached
	kf.buildID = b.ID
	say("kernel %s: %s (%.0fs, cached=%v)", c.BuildKey(), res.Kernel, b.Seconds, res.Cached)
	return kf, o.Store.PutBuild(ctx, b)
}

// describeSource is a one-line description of a kernel source for the database.
func describeSource(s *source.Source) string {
	switch {
	case s.Git != "":
		return "git " + s.Git + "@" + s.Ref
	case s.Dir != "":
		return "dir " + s.Dir
	case s.Tarball != "":
		return "tarball " + s.Tarball
	case s.URL != "":
		return "url " + s.URL + " sha256:" + s.SHA256
	case s.KernelOrg != "":
		return "kernel.org " + s.KernelOrg
	case s.Debian != "":
		return "debian " + s.Debian
	}
	return "?"
}

// runOne records, runs and finishes one run. It returns (nil, nil) when the run was
// interrupted: its row and directory are discarded so the next invocation redoes it.
func (o *Options) runOne(ctx context.Context, j job, kf *kernelFiles) (*repro.Result, error) {
	s := o.Spec
	dir := filepath.Join(o.ResultsDir, j.id)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", dir, err)
	}
	host, _ := os.Hostname()
	rec := store.Run{ID: j.id, Matrix: s.Name, Cell: j.cell.ID(), Attempt: j.k, Arch: j.cell.Arch, Host: host, Kernel: kf.image, Dir: j.id, Started: time.Now()}
	if err := o.Store.BeginRun(ctx, rec); err != nil {
		return nil, err
	}
	arch, err := qemu.ParseArch(j.cell.Arch)
	if err != nil {
		return nil, bad("cell %s: %v", j.cell.ID(), err)
	}
	iters, dur := s.loopBudget()
	res, err := o.Run(ctx, repro.Config{
		Arch: arch, Accel: o.Accel, Kernel: kf.image, Vmlinux: kf.vmlinux, ModulesDir: kf.modules,
		Repro: s.Repro, Iterations: iters, Duration: dur, Cmdline: s.CellCmdline(j.cell),
		ResultsDir: o.ResultsDir, CacheDir: o.CacheDir, RunID: j.id,
		Progress: prefixWriter(o.Progress, "  "+j.id+": "),
	})
	if err != nil {
		// Bad input found by the run itself: nothing ran, nothing counts.
		_ = o.Store.DiscardRun(context.WithoutCancel(ctx), j.id)
		return nil, bad("cell %s: %v", j.cell.ID(), err)
	}
	if res.Outcome == repro.Interrupted || res.Outcome == repro.Running || ctx.Err() != nil {
		dctx := context.WithoutCancel(ctx)
		if err := o.Store.DiscardRun(dctx, j.id); err != nil {
			return nil, err
		}
		_ = os.RemoveAll(dir)
		return nil, nil
	}
	// repro.Run has synced the artifacts and written the final meta.json before
	// returning; only now does the run count.
	rec.Outcome, rec.Error, rec.Accel, rec.Host = string(res.Outcome), res.Error, res.Accel, res.Host
	rec.Cmdline, rec.Iterations, rec.CrashIteration, rec.Reproduced = res.Cmdline, res.Iterations, res.CrashedIter, res.Reproduced
	rec.BootSeconds, rec.LoopSeconds, rec.TimeToCrash = res.BootSeconds, res.LoopSeconds, res.TimeToCrash
	rec.Started, rec.Finished = res.Started, res.Finished
	if rec.Finished.IsZero() {
		rec.Finished = time.Now()
	}
	rec.WallSeconds = rec.Finished.Sub(rec.Started).Seconds()
	for _, c := range res.Crashes {
		rec.Crashes = append(rec.Crashes, store.Crash{Title: c.Title, Type: c.Type, Signature: c.Signature, ReportPath: c.File})
	}
	if err := o.Store.FinishRun(context.WithoutCancel(ctx), rec); err != nil {
		return nil, err
	}
	return res, nil
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

func (p *progress) finished(j job, r *repro.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.ran++
	if r.Outcome == repro.Crashed {
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
	what := string(r.Outcome)
	if len(r.Crashes) > 0 {
		what += ": " + r.Crashes[0].Title
	}
	p.say("[%d/%d cells, %d/%d runs, %d crashed so far, ETA %s] %s %s", p.cellsDone, p.cells, p.done, p.total, p.crashes, eta, j.id, what)
}

// prefixWriter prefixes each line written to w (run progress from parallel guests).
func prefixWriter(w io.Writer, prefix string) io.Writer {
	return &prefixed{w: w, prefix: prefix}
}

type prefixed struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexAny(string(p.buf), "\n\r")
		if i < 0 {
			break
		}
		line := strings.TrimSpace(strings.ReplaceAll(string(p.buf[:i]), "\033[K", ""))
		p.buf = p.buf[i+1:]
		if line != "" {
			fmt.Fprintf(p.w, "%s%s\n", p.prefix, line)
		}
	}
	return len(b), nil
}

// lockMatrix takes an exclusive, non-blocking flock on <results>/.matrix-<name>.lock.
func lockMatrix(results, name string) (*os.File, error) {
	path := filepath.Join(results, ".matrix-"+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("matrix lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, bad("matrix %s is already running on %s (%s): wait for it or stop it; a second invocation would discard its runs in progress",
			name, results, strings.TrimSpace(string(holder)))
	}
	_ = f.Truncate(0)
	host, _ := os.Hostname()
	fmt.Fprintf(f, "pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	return f, nil
}
