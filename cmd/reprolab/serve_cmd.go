package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/serve"
)

func newServeCmd() *cobra.Command {
	var results, addr string
	cmd := &cobra.Command{
		Use:   "serve [--results DIR] [--addr 127.0.0.1:PORT]",
		Short: "serve the HTML matrix reports and run artifacts on 127.0.0.1",
		Long: `Serve the results directory — matrix reports and every run's artifacts — read-only on
the loopback interface. Reports are rewritten by the matrix after each run, so reloading
the page follows a matrix in progress.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, results, addr) },
	}
	cmd.Flags().StringVar(&results, "results", "results", "results directory to serve")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "listen address; loopback only (127.0.0.1, ::1 or localhost)")
	return cmd
}

func runServe(cmd *cobra.Command, results, addr string) error {
	ln, err := listenLoopback(addr)
	if err != nil {
		return err
	}
	if st, err := os.Stat(results); err != nil || !st.IsDir() {
		ln.Close()
		return fault.Inputf("results directory %s: not found (run a matrix first, or give --results)", results)
	}
	ctx, stop := signalContext("stopping the server")
	defer stop()
	fmt.Fprintf(cmd.ErrOrStderr(), "reprolab serve: http://%s/ (read-only, %s)\n", ln.Addr(), results)
	return serveResults(ctx, ln, results)
}

type badAddrError struct{ msg string }

func (e *badAddrError) Error() string         { return e.msg }
func (e *badAddrError) FaultKind() fault.Kind { return fault.Input }

// listenLoopback listens only on a loopback address: results hold kernel consoles and
// paths of the host, and the server has no authentication.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &badAddrError{fmt.Sprintf("--addr %q: want host:port, e.g. 127.0.0.1:8080", addr)}
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, &badAddrError{fmt.Sprintf("--addr %q: reprolab serve listens on loopback only (127.0.0.1, ::1, localhost); use an SSH tunnel to reach it from elsewhere", addr)}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, &badAddrError{fmt.Sprintf("--addr %q resolved to %s, which is not loopback", addr, tcp.IP)}
	}
	return ln, nil
}

// serveResults serves until ctx ends.
func serveResults(ctx context.Context, ln net.Listener, dir string) error {
	srv := &http.Server{Handler: resultsHandler(dir), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// resultsHandler is lab/serve's read-only view of the results directory.
func resultsHandler(dir string) http.Handler { return serve.Handler(dir) }
