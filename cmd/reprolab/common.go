package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/reprolab/reprolab/lab/cache"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/store"
)

// cacheDir is where kernels, images and verdicts are cached, outside the repo.
func cacheDir() string { return cache.Dir() }

// signalContext is cancelled on SIGINT/SIGTERM/SIGHUP so the command can stop what it
// runs (stopping says what, e.g. "stopping the guest and cleaning up") before reprolab
// exits. A second signal exits at once; QEMU still dies with us through its parent-death
// signal.
func signalContext(stopping string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "\nreprolab: %v: %s (again to exit at once)\n", sig, stopping)
		cancel()
		<-ch
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// openDB opens a command's results database: *dsn, or <results>/reprolab.db when empty
// (*dsn is set to it, for what the command does next with it).
func openDB(ctx context.Context, results string, dsn *string) (*store.Store, error) {
	if *dsn == "" {
		*dsn = filepath.Join(results, store.DefaultFile)
	}
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return nil, fault.AsInfra(err)
	}
	return st, nil
}
