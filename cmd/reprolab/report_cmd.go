package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/reprolab/reprolab/lab/report"
)

// reportMain is `reprolab report [flags] CONSOLE.log...`: find crash reports in saved
// console logs ("-" reads stdin) and print them, symbolized when a vmlinux is given.
// Exit status: 0 done (with or without crashes; -crash-exit makes "found one" 1),
// 2 bad input.
func reportMain(args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	vmlinux := fs.String("vmlinux", "", "vmlinux with debug info, to add file:line (guest booted with nokaslr)")
	arch := fs.String("arch", "", "arch of -vmlinux: x86_64 or arm64 (default: from the report)")
	asJSON := fs.Bool("json", false, "print reports as JSON")
	crashExit := fs.Bool("crash-exit", false, "exit 1 when a crash is found")
	vmcore := fs.String("vmcore", "", "also show every CPU's backtrace from this vmcore (crash(8) bt -a; needs -vmlinux)")
	var modules []string
	fs.Func("module", "NAME=PATH: resolve frames of module NAME against PATH (.ko with debug info); repeatable", func(v string) error {
		if name, path, ok := strings.Cut(v, "="); !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=PATH, e.g. dm_crypt=/lib/modules/6.1/kernel/drivers/md/dm-crypt.ko")
		}
		modules = append(modules, v)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: reprolab report [-vmlinux FILE [-arch ARCH] [-module NAME=KO]...] [-vmcore FILE] [-json] [-crash-exit] CONSOLE.log... (- for stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 && *vmcore == "" {
		fs.Usage()
		return 2
	}
	if *vmcore != "" {
		if *vmlinux == "" {
			fmt.Fprintln(os.Stderr, "reprolab report: -vmcore needs -vmlinux, the debug vmlinux of the dumped kernel")
			return 2
		}
		out, err := report.CrashBacktraces(context.Background(), "", *vmlinux, *vmcore)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reprolab report: %v\n", err)
			return 2
		}
		fmt.Printf("%s: backtraces of all CPUs (crash bt -a)\n", *vmcore)
		for _, t := range report.ParseBacktraces([]byte(out)) {
			g := "?"
			if t.Guilty >= 0 {
				g = t.Frames[t.Guilty].Func
			}
			fmt.Printf("  CPU %d  pid %-6d %-16s in %s\n", t.CPU, t.PID, t.Comm, g)
		}
		fmt.Printf("\n%s\n%s\n", out, strings.Repeat("=", 72))
	}
	var sym *report.Symbolizer
	defer func() {
		if sym != nil {
			sym.Close()
		}
	}()
	found := false
	var all []*report.Report
	for _, path := range fs.Args() {
		var data []byte
		var err error
		if path == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(path)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "reprolab report: cannot read console log %s: %v\n", path, err)
			return 2
		}
		reports := report.Parse(data)
		found = found || len(reports) > 0
		for _, r := range reports {
			if *vmlinux != "" {
				if sym == nil {
					a := *arch
					if a == "" {
						a = r.Arch
					}
					if sym, err = report.NewSymbolizer(*vmlinux, a); err != nil {
						fmt.Fprintf(os.Stderr, "reprolab report: %v\n", err)
						return 2
					}
					for _, m := range modules {
						name, path, _ := strings.Cut(m, "=")
						if err := sym.AddModule(name, path); err != nil {
							fmt.Fprintf(os.Stderr, "reprolab report: %v\n", err)
							return 2
						}
					}
				}
				if err := sym.Symbolize(r); err != nil {
					fmt.Fprintf(os.Stderr, "reprolab report: %s: symbolize %q: %v\n", path, r.Title, err)
				}
			}
		}
		if *asJSON {
			all = append(all, reports...)
			continue
		}
		if len(reports) == 0 {
			fmt.Printf("%s: no crash report\n", path)
		}
		for i, r := range reports {
			fmt.Printf("%s: report %d of %d\n", path, i+1, len(reports))
			if _, err := r.WriteTo(os.Stdout); err != nil && !errors.Is(err, os.ErrClosed) {
				return 2
			}
			fmt.Println(strings.Repeat("=", 72))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			fmt.Fprintf(os.Stderr, "reprolab report: %v\n", err)
			return 2
		}
	}
	if found && *crashExit {
		return 1
	}
	return 0
}
