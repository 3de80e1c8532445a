package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reprolab/reprolab/lab/matrix"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/render"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
)

const matrixUsage = `usage:
  reprolab matrix <matrix.yaml|folder> [flags]     run or resume a matrix
  reprolab matrix report <results-dir|db> [flags]  (re)write its reports from the database

Run the same command again after Ctrl-C, SIGKILL or a reboot and it continues where it stopped:
finished runs are kept, interrupted ones are discarded and redone. Reports (index.html,
report.md, report.json, junit.xml, kcidb.json) go to <results>/matrix-<name>/ and are
rewritten after every finished run; 'reprolab serve' shows them on 127.0.0.1.

Exit: 0 every cell as expected, 1 a cell contradicts its expectation (a crash where none
is expected, or none where one is), 2 bad input, 3 infrastructure (build failed, cells
with only infrastructure errors), 130 interrupted (run again to resume).
`

// parseInterspersed parses flags that may come before or after the positional
// arguments (Go's flag package stops at the first positional one).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func matrixMain(args []string) int {
	if len(args) > 0 && args[0] == "report" {
		return matrixReportMain(args[1:])
	}
	fs := flag.NewFlagSet("reprolab matrix", flag.ContinueOnError)
	results := fs.String("results", "results", "results directory (run artifacts, database, reports)")
	dsn := fs.String("db", "", "results database: a SQLite file or postgres://… DSN (default <results>/reprolab.db)")
	jobs := fs.Int("jobs", 0, "guests in parallel (default: what the host's cores and memory take)")
	runs := fs.Int("runs", 0, "runs per cell (overrides budget.runs)")
	iterations := fs.Int("iterations", 0, "loop iterations per run (overrides the spec)")
	duration := fs.Duration("duration", 0, "loop time per run, e.g. 3m (overrides the spec)")
	accelF := fs.String("accel", "auto", "auto, kvm or tcg")
	dry := fs.Bool("dry-run", false, "list the cells and their kernel command lines, run nothing")
	var kernels, only multiFlag
	fs.Var(&kernels, "kernel", "override a kernel axis entry: NAME=git:/path@ref[,exclude=PATH] | dir:/path | tarball:/f.tar.xz[#sha256] | url:URL#sha256 | debian:PKG | prebuilt:ARCH=/image[,modules=DIR] (repeatable)")
	fs.Var(&only, "only", "run only cells matching axis=value[,axis=value] (repeatable; all must match)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), matrixUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitBadInput
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitBadInput
	}
	s, err := matrix.Load(pos[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix: %v\n", err)
		return exitBadInput
	}
	for _, k := range kernels {
		if err := s.OverrideKernel(k); err != nil {
			fmt.Fprintf(os.Stderr, "reprolab matrix: %v\n", err)
			return exitBadInput
		}
	}
	if *iterations < 0 || *duration < 0 || *runs < 0 || *jobs < 0 {
		fmt.Fprintln(os.Stderr, "reprolab matrix: --iterations, --duration, --runs and --jobs cannot be negative")
		return exitBadInput
	}
	if *iterations > 0 {
		s.Budget.Iterations = *iterations
	}
	if *duration > 0 {
		s.Budget.Duration = spec.Duration(*duration)
	}
	var filters []matrix.Match
	for _, o := range only {
		m, err := matrix.ParseOnly(o)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reprolab matrix: %v\n", err)
			return exitBadInput
		}
		filters = append(filters, m)
	}
	accel, err := qemu.ParseAccel(*accelF)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix: --accel: %v\n", err)
		return exitBadInput
	}
	if *dry {
		cells, err := s.Cells(filters)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reprolab matrix: %v\n", err)
			return exitBadInput
		}
		for _, c := range cells {
			exp := "clean"
			if c.Expect {
				exp = "crash"
			}
			fmt.Printf("%s\texpect %s\tkernel %s\tcmdline %s\n", c.ID(), exp, c.BuildKey(), strings.Join(s.CellCmdline(c), " "))
		}
		return exitOK
	}

	ctx, stop := signalContext()
	defer stop()
	if *dsn == "" {
		*dsn = filepath.Join(*results, store.DefaultFile)
	}
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix: %v\n", err)
		return exitInfra
	}
	defer st.Close()

	var repMu sync.Mutex
	writeReports := func() (*render.Report, error) {
		repMu.Lock()
		defer repMu.Unlock()
		rep, err := matrix.BuildReport(context.WithoutCancel(ctx), st, s.Name, *results)
		if err != nil {
			return nil, err
		}
		_, err = matrix.WriteReports(rep, matrix.ReportDir(*results, s.Name), nil)
		return rep, err
	}
	t0 := time.Now()
	sum, err := matrix.Run(ctx, matrix.Options{
		Spec: s, Store: st, ResultsDir: *results, CacheDir: cacheDir(), Jobs: *jobs, Accel: accel,
		Only: filters, Runs: *runs, Progress: os.Stderr,
		AfterRun: func() {
			if _, err := writeReports(); err != nil {
				fmt.Fprintf(os.Stderr, "reprolab matrix: writing reports: %v\n", err)
			}
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix: %v\n", err)
		var in *matrix.InputError
		if errors.As(err, &in) {
			return exitBadInput
		}
		return exitInfra
	}
	rep, rerr := writeReports()
	if rerr != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix: writing reports: %v\n", rerr)
	}
	fmt.Fprintf(os.Stderr, "matrix %s: %d runs this time (%d crashed, %d infra errors), %d kept from before, %d interrupted runs redone; %s\n",
		s.Name, sum.Ran, sum.Crashes, sum.InfraErrors, sum.Kept, sum.Discarded, time.Since(t0).Round(time.Second))
	if rep != nil {
		fmt.Fprintf(os.Stderr, "reports: %s/ (index.html, report.md, report.json, junit.xml, kcidb.json)\n", matrix.ReportDir(*results, s.Name))
		_ = render.Markdown(os.Stdout, rep)
	}
	if sum.Interrupted {
		fmt.Fprintln(os.Stderr, "reprolab matrix: interrupted; run the same command again to resume")
		return 130
	}
	return matrixExit(rep, sum.BuildErrors, rerr)
}

// matrixExit maps a report to the exit status: contradictions first (they are what a CI
// job must see), then infrastructure.
func matrixExit(rep *render.Report, buildErrs []error, reportErr error) int {
	if rep == nil {
		return exitInfra
	}
	if rep.Totals.Fail > 0 {
		return exitCrashed
	}
	if rep.Totals.Error > 0 || rep.Totals.Incomplete > 0 || len(buildErrs) > 0 || reportErr != nil {
		return exitInfra
	}
	return exitOK
}

func matrixReportMain(args []string) int {
	fs := flag.NewFlagSet("reprolab matrix report", flag.ContinueOnError)
	name := fs.String("matrix", "", "matrix name (default: the only one in the database)")
	out := fs.String("out", "", "output folder (default <results>/matrix-<name>)")
	formats := fs.String("format", "html,md,json,junit,kcidb", "formats: html, md, json, junit, kcidb; '-' as --out prints md to stdout")
	validate := fs.Bool("validate", false, "check junit.xml against the JUnit XSD and kcidb.json against the KCIDB v5 schema")
	resultsF := fs.String("results", "", "results directory holding the run folders (default: the folder given, or of the database file; needed with a postgres:// DSN)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: reprolab matrix report <results-dir|db-file|postgres://…> [--results DIR] [--matrix NAME] [--out DIR] [--format LIST] [--validate]\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitBadInput
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitBadInput
	}
	loc := pos[0]
	resultsDir := loc
	if st, err := os.Stat(loc); err == nil && !st.IsDir() {
		resultsDir = filepath.Dir(loc)
	} else if err != nil && !strings.Contains(loc, "://") {
		fmt.Fprintf(os.Stderr, "reprolab matrix report: %v (give a results folder, its reprolab.db or a postgres:// DSN)\n", err)
		return exitBadInput
	} else if err == nil {
		if _, err := os.Stat(filepath.Join(loc, store.DefaultFile)); err != nil {
			fmt.Fprintf(os.Stderr, "reprolab matrix report: %s has no %s: run a matrix with --results %s first\n", loc, store.DefaultFile, loc)
			return exitBadInput
		}
	}
	if strings.Contains(loc, "://") {
		resultsDir = "results"
	}
	if *resultsF != "" {
		resultsDir = *resultsF
	}
	ctx := context.Background()
	st, err := store.Open(ctx, loc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix report: %v\n", err)
		return exitInfra
	}
	defer st.Close()
	if *name == "" {
		ms, err := st.Matrices(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reprolab matrix report: %v\n", err)
			return exitInfra
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		sort.Strings(names)
		if len(names) != 1 {
			fmt.Fprintf(os.Stderr, "reprolab matrix report: the database holds %d matrices (%s): choose one with --matrix\n", len(names), strings.Join(names, ", "))
			return exitBadInput
		}
		*name = names[0]
	}
	rep, err := matrix.BuildReport(ctx, st, *name, resultsDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix report: %v\n", err)
		var in *matrix.InputError
		if errors.As(err, &in) {
			return exitBadInput
		}
		return exitInfra
	}
	if *out == "-" {
		if err := render.Markdown(os.Stdout, rep); err != nil {
			return exitInfra
		}
		return matrixExit(rep, nil, nil)
	}
	dir := *out
	if dir == "" {
		dir = matrix.ReportDir(resultsDir, *name)
	} else if rel, err := filepath.Rel(dir, resultsDir); err == nil {
		rep.RunsBase = filepath.ToSlash(rel)
	}
	written, err := matrix.WriteReports(rep, dir, strings.Split(*formats, ","))
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab matrix report: %v\n", err)
		var in *matrix.InputError
		if errors.As(err, &in) {
			return exitBadInput
		}
		return exitInfra
	}
	for _, w := range written {
		fmt.Println(w)
	}
	if *validate {
		if code := validateReports(dir, os.Stderr); code != exitOK {
			return code
		}
	}
	return matrixExit(rep, nil, nil)
}

// validateReports checks the machine-readable reports in dir against their schemas.
func validateReports(dir string, w io.Writer) int {
	code := exitOK
	if p := filepath.Join(dir, "junit.xml"); fileExists(p) {
		if err := render.ValidateJUnit(p); err != nil {
			fmt.Fprintf(w, "junit.xml: %v\n", err)
			code = exitInfra
		} else {
			fmt.Fprintf(w, "junit.xml: valid\n")
		}
	}
	if p := filepath.Join(dir, "kcidb.json"); fileExists(p) {
		data, err := os.ReadFile(p)
		if err == nil {
			err = render.ValidateKCIDB(data)
		}
		if err != nil {
			fmt.Fprintf(w, "kcidb.json: %v\n", err)
			code = exitInfra
		} else {
			fmt.Fprintf(w, "kcidb.json: valid KCIDB v5\n")
		}
	}
	return code
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
