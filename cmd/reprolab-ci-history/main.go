// Command reprolab-ci-history builds the synthetic kernel history CI bisects and validates
// on (lab/cihistory) and writes its record as JSON: `make ci-history`, from the project's
// top folder, after `make ci-kernel`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/reprolab/reprolab/lab/cihistory"
	"github.com/reprolab/reprolab/lab/fault"
)

// fatal lets vcstest's helpers report a failed git command from a command.
type fatal struct{}

func (fatal) Helper() {}
func (fatal) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "reprolab-ci-history: "+format+"\n", args...)
	os.Exit(fault.ExitInfra)
}

func main() {
	out := flag.String("o", "", "where the JSON record goes (default $REPROLAB_CACHE/ci-history.json)")
	flag.Parse()
	root, err := os.Getwd()
	if err != nil {
		fatal{}.Fatalf("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t := time.Now()
	h, err := cihistory.Build(ctx, fatal{}, cihistory.Options{Root: root, JSON: *out})
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab-ci-history: %v\n", err)
		os.Exit(fault.ExitCode(err))
	}
	fmt.Fprintf(os.Stderr, "ci-history: %s: %d commits, bad %.12s, fix %.12s (%.0fs)\n", h.Repo, len(h.Commits), h.Bad, h.Fix, time.Since(t).Seconds())
}
