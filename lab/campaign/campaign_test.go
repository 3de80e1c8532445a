package campaign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/store"
)

// These tests fake kbuild.Build and repro.Run: they are about what the engine records
// and discards. The real builds and guests run through it in lab/matrix's tests
// (TestCISmokeMatrix, TestBuiltKernelProbeAxis).

func newEngine(t *testing.T) *Engine {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &Engine{Store: st, ResultsDir: dir, CacheDir: filepath.Join(dir, "cache")}
	if err := e.Open(context.Background(), Campaign{ID: "validate-t", Kind: Validate, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestKernel(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vmlinuz-6.1")
	os.WriteFile(img, []byte("x"), 0o644)
	src := &source.Source{Dir: "/src/linux"}
	tests := []struct {
		name      string
		k         Kernel
		build     func(context.Context, kbuild.Spec) (*kbuild.Result, error)
		wantID    string
		wantInput bool
		wantFail  bool
	}{
		{name: "built", k: Kernel{Name: "v4.11", Arch: "x86_64", Source: src, Probes: []string{"p.yaml"}},
			build: func(_ context.Context, s kbuild.Spec) (*kbuild.Result, error) {
				if len(s.Probes) != 1 || s.Arch != "x86_64" {
					return nil, errors.New("spec not passed through")
				}
				return &kbuild.Result{Kernel: "/k/bzImage", Key: "abc", Version: "4.11.0", Compiled: 12}, nil
			}, wantID: "kbuild-abc"},
		{name: "bad input", k: Kernel{Name: "v4.11", Arch: "x86_64", Source: src},
			build: func(context.Context, kbuild.Spec) (*kbuild.Result, error) {
				return nil, fault.Inputf("base %q: want tinyconfig", "nope")
			}, wantInput: true},
		{name: "build failed", k: Kernel{Name: "v4.11", Arch: "x86_64", Source: src, Key: "x86_64_v4.11_seed_none"},
			build: func(context.Context, kbuild.Spec) (*kbuild.Result, error) {
				return nil, errors.New("make: *** [vmlinux] Error 2")
			}, wantID: "failed-x86_64_v4.11_seed_none", wantFail: true},
		{name: "prebuilt glob", k: Kernel{Name: "debian", Arch: "x86_64", Prebuilt: &Prebuilt{Image: filepath.Join(filepath.Dir(img), "vmlinuz-*")}},
			wantID: "prebuilt-debian-x86_64"},
		{name: "prebuilt missing", k: Kernel{Name: "debian", Arch: "x86_64", Prebuilt: &Prebuilt{Image: "/no/such/vmlinuz"}}, wantInput: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t)
			e.Build = tt.build
			b, err := e.Kernel(context.Background(), "validate-t", tt.k)
			if tt.wantInput {
				if !fault.IsInput(err) {
					t.Fatalf("want bad input, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.ID != tt.wantID || (b.Failed != nil) != tt.wantFail {
				t.Fatalf("build %+v", b)
			}
			recs, _ := e.Store.Builds(context.Background(), "validate-t")
			if len(recs) != 1 || recs[0].ID != tt.wantID || (recs[0].Status == "failed") != tt.wantFail {
				t.Fatalf("recorded %+v", recs)
			}
		})
	}
}

func fakeResult(cfg repro.Config, o repro.Outcome) *repro.Result {
	t0 := time.Now()
	return &repro.Result{RunID: cfg.RunID, Outcome: o, Started: t0, Finished: t0.Add(time.Minute), LoopSeconds: 50, Host: "h"}
}

func TestTrial(t *testing.T) {
	build := &Build{ID: "kbuild-abc", Kernel: Kernel{Name: "v4.11", Arch: "x86_64"}, Image: "/k/bzImage"}
	tests := []struct {
		name     string
		attempt  int
		run      func(context.Context, repro.Config) (*repro.Result, error)
		wantDir  string // "" = nothing recorded
		evidence bool
		input    bool
	}{
		{"crashed", 1, func(_ context.Context, cfg repro.Config) (*repro.Result, error) {
			r := fakeResult(cfg, repro.Crashed)
			r.Crashes = []repro.Crash{{Title: "BUG: x", Signature: "s", File: "report-1.txt"}}
			return r, nil
		}, "validate-t/x86_64-baseline-1", true, false},
		{"retry of an infra error", 2, func(_ context.Context, cfg repro.Config) (*repro.Result, error) {
			return fakeResult(cfg, repro.InfraError), nil
		}, "validate-t/x86_64-baseline-1.a2", false, false},
		{"interrupted", 1, func(_ context.Context, cfg repro.Config) (*repro.Result, error) {
			os.MkdirAll(filepath.Join(cfg.ResultsDir, cfg.RunID), 0o755)
			return fakeResult(cfg, repro.Interrupted), nil
		}, "", false, false},
		{"bad input", 1, func(context.Context, repro.Config) (*repro.Result, error) {
			return nil, errors.New("reproducer: no run")
		}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t)
			var gotCfg repro.Config
			e.Run = func(ctx context.Context, cfg repro.Config) (*repro.Result, error) {
				gotCfg = cfg
				return tt.run(ctx, cfg)
			}
			r, err := e.Trial(context.Background(), "validate-t", Trial{ID: "x86_64-baseline-1", Group: "baseline/x86_64",
				Attempt: tt.attempt, Build: build, Cmdline: []string{"reprolab.delay_seed=100"}})
			if tt.input != fault.IsInput(err) || (!tt.input && err != nil) {
				t.Fatalf("err %v", err)
			}
			runs, _ := e.Runs(context.Background(), "validate-t")
			if tt.wantDir == "" {
				if r != nil || len(runs) != 0 {
					t.Fatalf("interrupted or refused trial recorded: %+v %+v", r, runs)
				}
				if _, err := os.Stat(filepath.Join(gotCfg.ResultsDir, gotCfg.RunID)); err == nil {
					t.Fatal("its folder was left behind")
				}
				return
			}
			if r == nil || len(runs) != 1 || runs[0].Dir != tt.wantDir || runs[0].Evidence() != tt.evidence || r.Evidence() != tt.evidence ||
				runs[0].Group != "baseline/x86_64" || runs[0].BuildID != "kbuild-abc" || len(runs[0].Crashes) != len(r.Crashes) {
				t.Fatalf("returned %+v, recorded %+v", r, runs)
			}
			if filepath.Join(gotCfg.ResultsDir, gotCfg.RunID) != filepath.Join(e.ResultsDir, tt.wantDir) || gotCfg.Cmdline[0] != "reprolab.delay_seed=100" {
				t.Fatalf("repro.Config %+v", gotCfg)
			}
		})
	}
}

// Resume discards a run left "running" (SIGKILL) with its folder and keeps finished ones.
func TestResume(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	done := store.Run{ID: "a", Campaign: "validate-t", Attempt: 1, Dir: "validate-t/a"}
	e.Store.BeginRun(ctx, done)
	done.Outcome = "survived"
	if err := e.Store.FinishRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	killed := store.Run{ID: "b", Campaign: "validate-t", Attempt: 1, Dir: "validate-t/b"}
	e.Store.BeginRun(ctx, killed)
	os.MkdirAll(filepath.Join(e.ResultsDir, "validate-t", "b"), 0o755)
	finished, discarded, err := e.Resume(ctx, "validate-t")
	if err != nil || discarded != 1 || len(finished) != 1 || finished[0].ID != "a" {
		t.Fatalf("resume: %+v %d %v", finished, discarded, err)
	}
	if _, err := os.Stat(filepath.Join(e.ResultsDir, "validate-t", "b")); err == nil {
		t.Fatal("the interrupted run's folder survived")
	}
	runs, _ := e.Runs(ctx, "validate-t")
	if len(runs) != 1 {
		t.Fatalf("%d runs after resume", len(runs))
	}
}

func TestLock(t *testing.T) {
	e := newEngine(t)
	f, err := e.Lock("validate-t")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := e.Lock("validate-t"); !fault.IsInput(err) {
		t.Fatalf("second lock: %v", err)
	}
	g, err := e.Lock("bisect-t") // another campaign in the same folder is independent
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}
