//go:build ignore

// make-v1.go wrote reprolab.db with the schema-1 store and matrix of commit e326219:
//
//	git worktree add /tmp/oldstore e326219
//	cp make-v1.go matrix.yaml repro.yaml /tmp/oldstore/mkv1/   (as package main)
//	cd /tmp/oldstore && go run ./mkv1 /path/to/out
//
// The matrix runs for real through matrix.Run with a fake repro.Run (the kernel is not
// booted: what matters is the rows the old code writes). Afterwards one finished run is
// turned back into the state SIGKILL leaves — its row "running", its folder partial —
// exactly as the old runOne writes it before the guest boots.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/matrix"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/store"
)

func main() {
	out := os.Args[1]
	must(os.MkdirAll(out, 0o755))
	ctx := context.Background()
	cache, _ := os.MkdirTemp("", "v1cache")
	os.Setenv("REPROLAB_CACHE", cache)
	os.MkdirAll(filepath.Join(cache, "v1"), 0o755)
	os.WriteFile(filepath.Join(cache, "v1", "vmlinuz-fake"), []byte("not a kernel"), 0o644)
	s, err := matrix.Load("mkv1/matrix.yaml")
	must(err)
	st, err := store.Open(ctx, out)
	must(err)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	fake := func(ctx context.Context, cfg repro.Config) (*repro.Result, error) {
		dir := filepath.Join(cfg.ResultsDir, cfg.RunID)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "console.log"), []byte("booted "+cfg.RunID+"\n"), 0o644)
		r := &repro.Result{RunID: cfg.RunID, Dir: dir, Arch: "x86_64", Accel: "tcg", Kernel: cfg.Kernel, Host: "v1host",
			Cmdline: strings.Join(cfg.Cmdline, " "), Started: t0, Finished: t0.Add(40 * time.Second), BootSeconds: 9, LoopSeconds: 30, Iterations: 3}
		if strings.Contains(r.Cmdline, "=100") {
			os.WriteFile(filepath.Join(dir, "report-1.txt"), []byte("sysrq: Trigger a crash\n"), 0o644)
			r.Outcome, r.Reproduced, r.CrashedIter, r.TimeToCrash, r.Iterations = repro.Crashed, true, 2, 12.5, 1
			r.Crashes = []repro.Crash{{Title: "sysrq: Trigger a crash", Type: "SYSRQ", Signature: "sig-sysrq", File: "report-1.txt"}}
		} else {
			r.Outcome = repro.Survived
		}
		return r, r.WriteMeta()
	}
	sum, err := matrix.Run(ctx, matrix.Options{Spec: s, Store: st, ResultsDir: out, Jobs: 1, Run: fake})
	must(err)
	fmt.Printf("%+v\n", *sum)
	// SIGKILL while the second probe-on run boots: the row is "running", the folder partial.
	id := "v1-x86_64_fake_default_p100_none_plain-r2"
	must(st.DiscardRun(ctx, id))
	os.RemoveAll(filepath.Join(out, id))
	os.MkdirAll(filepath.Join(out, id), 0o755)
	os.WriteFile(filepath.Join(out, id, "console.log"), []byte("booting"), 0o644)
	must(st.BeginRun(ctx, store.Run{ID: id, Matrix: "v1", Cell: "x86_64_fake_default_p100_none_plain", Attempt: 2, Arch: "x86_64",
		Host: "v1host", Kernel: filepath.Join(cache, "v1", "vmlinuz-fake"), Dir: id, Started: t0.Add(time.Minute)}))
	must(st.Close())
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
