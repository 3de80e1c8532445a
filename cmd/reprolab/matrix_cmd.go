package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/matrix"
	"github.com/reprolab/reprolab/lab/progress"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/render"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
)

const matrixLong = `Run or resume a matrix of arch x kernel x config x probe x patches.

Run the same command again after Ctrl-C, SIGKILL or a reboot and it continues where it stopped:
finished runs are kept, interrupted ones are discarded and redone. Reports (index.html,
report.md, report.json, junit.xml, kcidb.json) go to <results>/matrix-<name>/ and are
rewritten after every finished run; 'reprolab serve' shows them on 127.0.0.1.

Exit: 0 every cell as expected, 1 a cell contradicts its expectation (a crash where none
is expected, or none where one is), 2 bad input, 3 infrastructure (build failed, cells
with only infrastructure errors), 130 interrupted (run again to resume).`

// matrixFlags are `reprolab matrix`'s flags.
type matrixFlags struct {
	results, dsn, accel                 string
	jobs, runs, iterations              int
	duration                            time.Duration
	dry, wait, dispatch, local          bool
	kernelSources, only, oldKernelFlags []string
}

func newMatrixCmd() *cobra.Command {
	var f matrixFlags
	cmd := &cobra.Command{
		Use:     "matrix <matrix.yaml|folder> [flags]",
		Short:   "run a matrix of arch x kernel x config x probe x patches, resumable",
		Long:    matrixLong,
		Example: "  reprolab matrix reproducers/memcg-writeback-null/matrix.yaml --kernel-source v4.11=git:$HOME/linux@v4.11 --dry-run",
		Args:    exactArgs(1, "one matrix.yaml or a folder holding one"),
		RunE:    func(cmd *cobra.Command, args []string) error { return runMatrix(cmd, &f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.results, "results", "results", "results directory (run artifacts, database, reports)")
	fl.StringVar(&f.dsn, "db", "", "results database: a SQLite file or postgres://… DSN (default <results>/reprolab.db)")
	fl.IntVar(&f.jobs, "jobs", 0, "guests in parallel (default: what the host's cores and memory take)")
	fl.IntVar(&f.runs, "runs", 0, "runs per cell (overrides budget.runs)")
	fl.IntVar(&f.iterations, "iterations", 0, "loop iterations per run (overrides the spec)")
	fl.DurationVar(&f.duration, "duration", 0, "loop time per run, e.g. 3m (overrides the spec)")
	fl.StringVar(&f.accel, "accel", "auto", "auto, kvm or tcg")
	fl.BoolVar(&f.dry, "dry-run", false, "check the spec and its sources, list the cells and their kernel command lines, run nothing")
	fl.StringArrayVar(&f.kernelSources, "kernel-source", nil, "override a kernel axis entry's source: NAME=git:/path@ref[,exclude=PATH] | dir:/path | tarball:/f.tar.xz[#sha256] | url:URL#sha256 | debian:PKG | prebuilt:ARCH=/image[,modules=DIR] (repeatable)")
	fl.StringArrayVar(&f.only, "only", nil, "run only cells matching axis=value[,axis=value] (repeatable; all must match)")
	fl.BoolVar(&f.wait, "wait", false, "with workers (--db postgres://… or --dispatch): follow the runs until done, then report")
	fl.BoolVar(&f.dispatch, "dispatch", false, "enqueue the runs for `reprolab worker`s instead of running them here (default with --db postgres://…)")
	fl.BoolVar(&f.local, "local", false, "run here even with --db postgres://…")
	// --kernel was this override's old name; in `run` it is an image path. Kept hidden to
	// say so instead of "unknown flag".
	fl.StringArrayVar(&f.oldKernelFlags, "kernel", nil, "renamed --kernel-source")
	_ = fl.MarkHidden("kernel")
	cmd.AddCommand(newMatrixReportCmd())
	return cmd
}

// load reads the spec and applies the flags to it.
func (f *matrixFlags) load(cmd *cobra.Command, path string) (*matrix.Spec, []matrix.Match, qemu.Accel, error) {
	if len(f.oldKernelFlags) > 0 {
		return nil, nil, "", usagef("--kernel %s: matrix's kernel override is now --kernel-source NAME=SOURCE (--kernel is run's kernel image path)", f.oldKernelFlags[0])
	}
	if err := positiveFlags(cmd, "iterations", "duration", "runs", "jobs"); err != nil {
		return nil, nil, "", err
	}
	accel, err := qemu.ParseAccel(f.accel)
	if err != nil {
		return nil, nil, "", usagef("--accel: %v", err)
	}
	s, err := matrix.Load(path)
	if err != nil {
		return nil, nil, "", fault.AsInput(err)
	}
	for _, k := range f.kernelSources {
		if err := s.OverrideKernel(k); err != nil {
			return nil, nil, "", fault.AsInput(err)
		}
	}
	if f.iterations > 0 {
		s.Budget.Iterations = f.iterations
	}
	if f.duration > 0 {
		s.Budget.Duration = spec.Duration(f.duration)
	}
	var filters []matrix.Match
	for _, o := range f.only {
		m, err := matrix.ParseOnly(o)
		if err != nil {
			return nil, nil, "", fault.AsInput(err)
		}
		filters = append(filters, m)
	}
	return s, filters, accel, nil
}

func runMatrix(cmd *cobra.Command, f *matrixFlags, path string) error {
	s, filters, accel, err := f.load(cmd, path)
	if err != nil {
		return err
	}
	ctx, stop := signalContext("stopping the guests and cleaning up; run the same command again to resume")
	defer stop()
	// Sources, fragments, patches and prebuilt images are checked before the database
	// and the lock exist, so a typo leaves nothing behind — and --dry-run finds it too.
	cells, err := s.Cells(filters)
	if err != nil {
		return fault.AsInput(err)
	}
	if err := s.Preflight(ctx, cells); err != nil {
		return err
	}
	if f.dry {
		return dryRun(cmd.OutOrStdout(), s, cells)
	}
	st, err := openDB(ctx, f.results, &f.dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	reports := &reportWriter{ctx: context.WithoutCancel(ctx), st: st, name: s.Name, results: f.results}
	disp := progress.New(os.Stderr) // one set of bars for every build and guest
	defer disp.Close()
	t0 := time.Now()
	sum, err := matrix.Run(ctx, matrix.Options{
		Spec: s, Store: st, ResultsDir: f.results, CacheDir: cacheDir(), Jobs: f.jobs, Accel: accel,
		Only: filters, Runs: f.runs, Progress: disp, AfterRun: reports.afterRun, Dispatch: f.dispatcher(st, accel),
	})
	disp.Close() // the summary below goes straight to stderr
	if err != nil {
		return err
	}
	if sum.Dispatched != nil {
		if done, err := f.follow(ctx, st, s.Name, sum, reports); done || err != nil {
			return err
		}
	}
	rep, rerr := reports.write()
	if rerr != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix: writing reports: %v\n", rerr)
	}
	fmt.Fprintf(os.Stderr, "matrix %s: %d runs this time (%d crashed, %d infra errors), %d kept from before, %d interrupted runs redone; %s\n",
		s.Name, sum.Ran, sum.Crashes, sum.InfraErrors, sum.Kept, sum.Discarded, time.Since(t0).Round(time.Second))
	if rep != nil {
		fmt.Fprintf(os.Stderr, "reports: %s/ (index.html, report.md, report.json, junit.xml, kcidb.json)\n", matrix.ReportDir(f.results, s.Name))
		_ = render.Markdown(cmd.OutOrStdout(), rep)
	}
	if sum.Interrupted {
		fmt.Fprintln(os.Stderr, "reprolab matrix: interrupted; run the same command again to resume")
		return exitStatus(fault.ExitInterrupted)
	}
	return matrixExit(rep, sum.BuildErrors, rerr)
}

func dryRun(out io.Writer, s *matrix.Spec, cells []*matrix.Cell) error {
	for _, c := range cells {
		exp := "clean"
		if c.Expect {
			exp = "crash"
		}
		fmt.Fprintf(out, "%s\texpect %s\tkernel %s\tcmdline %s\n", c.ID(), exp, c.BuildKey(), strings.Join(s.CellCmdline(c), " "))
	}
	return nil
}

// reportWriter rewrites the matrix's reports, one writer at a time (runs finish in parallel).
type reportWriter struct {
	mu      sync.Mutex
	ctx     context.Context
	st      *store.Store
	name    string
	results string
}

func (w *reportWriter) write() (*render.Report, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rep, err := matrix.BuildReport(w.ctx, w.st, w.name, w.results)
	if err != nil {
		return nil, err
	}
	_, err = matrix.WriteReports(rep, matrix.ReportDir(w.results, w.name), nil)
	return rep, err
}

func (w *reportWriter) afterRun() {
	if _, err := w.write(); err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix: writing reports: %v\n", err)
	}
}

// matrixExit maps a report to the exit status: contradictions first (they are what a CI
// job must see), then infrastructure.
func matrixExit(rep *render.Report, buildErrs []error, reportErr error) error {
	switch {
	case rep == nil:
		return exitStatus(fault.ExitInfra)
	case rep.Totals.Fail > 0:
		return exitStatus(fault.ExitCrashed)
	case rep.Totals.Error > 0 || rep.Totals.Incomplete > 0 || len(buildErrs) > 0 || reportErr != nil:
		return exitStatus(fault.ExitInfra)
	}
	return nil
}

type matrixReportFlags struct {
	name, out, formats, results string
	validate                    bool
}

func newMatrixReportCmd() *cobra.Command {
	var f matrixReportFlags
	cmd := &cobra.Command{
		Use:   "report <results-dir|db-file|postgres://…> [flags]",
		Short: "(re)write a matrix's reports from the database",
		Args:  exactArgs(1, "a results folder, its reprolab.db or a postgres:// DSN"),
		RunE:  func(cmd *cobra.Command, args []string) error { return runMatrixReport(cmd, &f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "matrix", "", "matrix name (default: the only one in the database)")
	fl.StringVar(&f.out, "out", "", "output folder (default <results>/matrix-<name>)")
	fl.StringVar(&f.formats, "format", "html,md,json,junit,kcidb", "formats: html, md, json, junit, kcidb; '-' as --out prints md to stdout")
	fl.BoolVar(&f.validate, "validate", false, "check junit.xml against the JUnit XSD and kcidb.json against the KCIDB v5 schema")
	fl.StringVar(&f.results, "results", "", "results directory holding the run folders (default: the folder given, or of the database file; needed with a postgres:// DSN)")
	return cmd
}

// resultsDirOf checks the location given to `matrix report` and finds the run folders.
func (f *matrixReportFlags) resultsDirOf(loc string) (string, error) {
	resultsDir := loc
	if st, err := os.Stat(loc); err == nil && !st.IsDir() {
		resultsDir = filepath.Dir(loc)
	} else if err != nil && !strings.Contains(loc, "://") {
		return "", fault.Inputf("%v (give a results folder, its reprolab.db or a postgres:// DSN)", err)
	} else if err == nil {
		if _, err := os.Stat(filepath.Join(loc, store.DefaultFile)); err != nil {
			return "", fault.Inputf("%s has no %s: run a matrix with --results %s first", loc, store.DefaultFile, loc)
		}
	}
	if strings.Contains(loc, "://") {
		resultsDir = "results"
	}
	if f.results != "" {
		resultsDir = f.results
	}
	return resultsDir, nil
}

// matrixName is --matrix, or the only matrix in the database.
func (f *matrixReportFlags) matrixName(ctx context.Context, st *store.Store) (string, error) {
	if f.name != "" {
		return f.name, nil
	}
	ms, err := st.Matrices(ctx)
	if err != nil {
		return "", err
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	if len(names) != 1 {
		return "", fault.Inputf("the database holds %d matrices (%s): choose one with --matrix", len(names), strings.Join(names, ", "))
	}
	return names[0], nil
}

func runMatrixReport(cmd *cobra.Command, f *matrixReportFlags, loc string) error {
	resultsDir, err := f.resultsDirOf(loc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := store.Open(ctx, loc)
	if err != nil {
		return fault.AsInfra(err)
	}
	defer st.Close()
	name, err := f.matrixName(ctx, st)
	if err != nil {
		return err
	}
	rep, err := matrix.BuildReport(ctx, st, name, resultsDir)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.out == "-" {
		if err := render.Markdown(out, rep); err != nil {
			return err
		}
		return matrixExit(rep, nil, nil)
	}
	dir := f.out
	if dir == "" {
		dir = matrix.ReportDir(resultsDir, name)
	} else if rel, err := filepath.Rel(dir, resultsDir); err == nil {
		rep.RunsBase = filepath.ToSlash(rel)
	}
	written, err := matrix.WriteReports(rep, dir, strings.Split(f.formats, ","))
	if err != nil {
		return err
	}
	for _, w := range written {
		fmt.Fprintln(out, w)
	}
	if f.validate {
		if code := validateReports(dir, cmd.ErrOrStderr()); code != exitOK {
			return exitStatus(code)
		}
	}
	return matrixExit(rep, nil, nil)
}

// validateReports checks the machine-readable reports in dir against their schemas.
func validateReports(dir string, w io.Writer) int {
	code := exitOK
	for _, c := range render.CheckReports(dir) {
		if c.Err != nil {
			fmt.Fprintf(w, "%s: %v\n", c.File, c.Err)
			code = exitInfra
		} else {
			fmt.Fprintf(w, "%s: valid %s\n", c.File, c.Schema)
		}
	}
	return code
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
