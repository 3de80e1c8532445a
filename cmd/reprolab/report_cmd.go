package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/report"
)

// reportFlags are `reprolab report`'s flags.
type reportFlags struct {
	vmlinux, arch, vmcore string
	json, crashExit       bool
	modules               []string
}

// newReportCmd is `reprolab report [flags] CONSOLE.log|RUN-DIR...`: find crash reports
// in saved console logs ("-" reads stdin, a run directory its console.log) and print them, symbolized when a vmlinux is given.
// Exit status: 0 done (with or without crashes; --crash-exit makes "found one" 1),
// 2 bad input.
func newReportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report [flags] CONSOLE.log|RUN-DIR... (- for stdin)",
		Short: "re-parse a console log into crash reports",
		Long: `Find crash reports in saved console logs ("-" reads stdin; a run directory means its
console.log) and print them, symbolized when a vmlinux is given. Exit: 0 done (with or without crashes; --crash-exit makes "found
one" 1), 2 bad input.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runReport(cmd, &f, args) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.vmlinux, "vmlinux", "", "vmlinux with debug info, to add file:line (guest booted with nokaslr)")
	fl.StringVar(&f.arch, "arch", "", "arch of --vmlinux: x86_64 or arm64 (default: from the report)")
	fl.BoolVar(&f.json, "json", false, "print reports as JSON")
	fl.BoolVar(&f.crashExit, "crash-exit", false, "exit 1 when a crash is found")
	fl.StringVar(&f.vmcore, "vmcore", "", "also show every CPU's backtrace from this vmcore (crash(8) bt -a; needs --vmlinux)")
	fl.StringArrayVar(&f.modules, "module", nil, "NAME=PATH: resolve frames of module NAME against PATH (.ko with debug info); repeatable")
	return cmd
}

func (f *reportFlags) check(args []string) error {
	for _, v := range f.modules {
		if name, path, ok := strings.Cut(v, "="); !ok || name == "" || path == "" {
			return usagef("--module %q: want NAME=PATH, e.g. dm_crypt=/lib/modules/6.1/kernel/drivers/md/dm-crypt.ko", v)
		}
	}
	if len(args) == 0 && f.vmcore == "" {
		return usagef("give a console log (or - for stdin) or --vmcore")
	}
	if f.vmcore != "" && f.vmlinux == "" {
		return usagef("--vmcore needs --vmlinux, the debug vmlinux of the dumped kernel")
	}
	return nil
}

func runReport(cmd *cobra.Command, f *reportFlags, args []string) error {
	if err := f.check(args); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
	defer bw.Flush()
	out := bw
	if f.vmcore != "" {
		if err := printBacktraces(out, f); err != nil {
			return err
		}
	}
	p := &reportPrinter{f: f, out: out, errOut: cmd.ErrOrStderr()}
	defer p.close()
	if f.json {
		fmt.Fprint(out, "[")
	}
	for _, path := range args {
		if err := p.file(path); err != nil {
			return err
		}
	}
	if f.json {
		fmt.Fprintln(out, "\n]")
	}
	if p.found > 0 && f.crashExit {
		return exitStatus(fault.ExitCrashed)
	}
	return nil
}

// reportPrinter prints reports as the parser finds them, so a console of any size is
// reported in bounded memory.
type reportPrinter struct {
	f           *reportFlags
	out, errOut io.Writer
	sym         *report.Symbolizer
	found       int // reports printed, all files
}

func (p *reportPrinter) close() {
	if p.sym != nil {
		p.sym.Close()
	}
}

// file prints the reports of one console log ("-", a file or a run directory).
func (p *reportPrinter) file(path string) error {
	n := 0
	err := streamReports(path, func(r *report.Report) error {
		n++
		if err := p.symbolize(path, r); err != nil {
			return err
		}
		p.found++
		if p.f.json {
			sep := ",\n"
			if p.found == 1 {
				sep = "\n"
			}
			b, err := json.MarshalIndent(r, "  ", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(p.out, "%s  %s", sep, b)
			return err
		}
		fmt.Fprintf(p.out, "%s: report %d\n", path, n)
		if _, err := r.WriteTo(p.out); err != nil && !errors.Is(err, os.ErrClosed) {
			return err
		}
		_, err := fmt.Fprintln(p.out, strings.Repeat("=", 72))
		return err
	})
	if err == nil && n == 0 && !p.f.json {
		fmt.Fprintf(p.out, "%s: no crash report\n", path)
	}
	if err == nil {
		p.hang(path)
	}
	return err
}

func (p *reportPrinter) symbolize(path string, r *report.Report) error {
	if p.f.vmlinux == "" {
		return nil
	}
	if p.sym == nil {
		var err error
		if p.sym, err = p.f.symbolizer(r); err != nil {
			return err
		}
	}
	if err := p.sym.Symbolize(r); err != nil {
		fmt.Fprintf(p.errOut, "reprolab report: %s: symbolize %q: %v\n", path, r.Title, err)
	}
	return nil
}

func printBacktraces(out io.Writer, f *reportFlags) error {
	bt, err := report.CrashBacktraces(context.Background(), "", f.vmlinux, f.vmcore)
	if err != nil {
		return fault.AsInput(err)
	}
	fmt.Fprintf(out, "%s: backtraces of all CPUs (crash bt -a)\n", f.vmcore)
	for _, t := range report.ParseBacktraces([]byte(bt)) {
		g := "?"
		if t.Guilty >= 0 {
			g = t.Frames[t.Guilty].Func
		}
		fmt.Fprintf(out, "  CPU %d  pid %-6d %-16s in %s\n", t.CPU, t.PID, t.Comm, g)
	}
	fmt.Fprintf(out, "\n%s\n%s\n", bt, strings.Repeat("=", 72))
	return nil
}

// streamReports parses a console log as it streams (logs of any size in bounded
// memory) and calls fn with each report. path may be "-" (stdin), a console log, or a
// run directory (its console.log).
func streamReports(path string, fn func(*report.Report) error) error {
	var in io.Reader = os.Stdin
	if path != "-" {
		file, err := consoleOf(path)
		if err != nil {
			return err
		}
		fh, err := os.Open(file)
		if err != nil {
			return fault.Inputf("cannot read console log %s: %w", file, err)
		}
		defer fh.Close()
		in = fh
	}
	var fnErr error
	err := report.ParseReader(in, func(r *report.Report) error {
		fnErr = fn(r)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fault.Inputf("cannot read console log %s: %w", path, err)
	}
	return err
}

// consoleOf returns the console log a path names: the file itself, or a run
// directory's console.log (guest.log for runs recorded before it was renamed).
func consoleOf(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fault.Inputf("cannot read console log %s: %w", path, err)
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, name := range []string{"console.log", "guest.log"} {
		if p := filepath.Join(path, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fault.Inputf("%s is a directory without console.log: give a run directory (results/<run>/) or a console log file", path)
}

func (f *reportFlags) symbolizer(r *report.Report) (*report.Symbolizer, error) {
	a := f.arch
	if a == "" {
		a = r.Arch
	}
	sym, err := report.NewSymbolizer(f.vmlinux, a)
	if err != nil {
		return nil, fault.AsInput(err)
	}
	for _, m := range f.modules {
		name, path, _ := strings.Cut(m, "=")
		if err := sym.AddModule(name, path); err != nil {
			sym.Close()
			return nil, fault.AsInput(err)
		}
	}
	return sym, nil
}
