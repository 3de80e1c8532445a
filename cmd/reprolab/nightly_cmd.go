package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/nightly"
	"github.com/reprolab/reprolab/lab/qemu"
)

const nightlyLong = `Run one night: for each tracked tree/branch in nightly.yaml, fetch, run every cell on the
new head and compare with the last night's head in the results database. A cell that went
clean→crash starts a cause bisection between the two heads (crash→clean a fix bisection,
with bisect.fix). The summary (new, fixed, still failing, bisections with their confidence)
goes to <results>/nightly-<name>/summary.{md,html,json}. A lock keeps two nightlies of the
same name from overlapping; a killed nightly resumes on the next start.

Exit: 0 nothing new crashes, 1 a cell newly crashes, 2 bad input (or another nightly of
this name is running), 3 infrastructure kept a cell from a verdict, 130 interrupted.`

type nightlyFlags struct{ results, dsn, accel string }

func newNightlyCmd() *cobra.Command {
	var f nightlyFlags
	cmd := &cobra.Command{
		Use:     "nightly <nightly.yaml> [flags]",
		Short:   "fetch tracked trees, test new heads, bisect what changed; for a timer or cron",
		Long:    nightlyLong,
		Example: "  reprolab nightly nightly.yaml --results /var/lib/reprolab/results",
		Args:    exactArgs(1, "one nightly.yaml"),
		RunE:    func(cmd *cobra.Command, args []string) error { return runNightly(cmd, &f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.results, "results", "results", "results directory (run artifacts, database, summaries)")
	fl.StringVar(&f.dsn, "db", "", "results database: a SQLite file or postgres://… DSN (default <results>/reprolab.db)")
	fl.StringVar(&f.accel, "accel", "auto", "auto, kvm or tcg")
	return cmd
}

func runNightly(cmd *cobra.Command, f *nightlyFlags, path string) error {
	cfg, err := nightly.Load(path)
	if err != nil {
		return err
	}
	accel, err := qemu.ParseAccel(f.accel)
	if err != nil {
		return usagef("--accel: %v", err)
	}
	ctx, stop := signalContext("stopping the guest; the next nightly resumes")
	defer stop()
	st, err := openDB(ctx, f.results, &f.dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	e := &campaign.Engine{Store: st, ResultsDir: f.results, CacheDir: cacheDir(), Accel: accel, Progress: os.Stderr}
	sum, err := nightly.Run(ctx, cfg, e, os.Stderr)
	if ctx.Err() != nil {
		return exitStatus(fault.ExitInterrupted)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(cmd.OutOrStdout(), sum.Markdown())
	fmt.Fprintf(os.Stderr, "summary: %s/ (summary.md, summary.html, summary.json)\n", nightly.ResultsDir(f.results, cfg.Name))
	if code := sum.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}
