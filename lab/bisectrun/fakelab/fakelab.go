// Package fakelab stands in for kbuild and QEMU in the tests of bisection drivers
// (lab/bisectrun, lab/nightly), so their bookkeeping (store, resume, logs, comparisons)
// is tested over many steps in milliseconds on real git histories: a "kernel" built from
// a tree holding a BUG file crashes as a Poisson process, others never. The real
// end-to-end runs on the CI kernel are in cmd/reprolab.
package fakelab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/repro"
)

// Lab is a fake builder and runner (campaign.Engine's Build and Run).
type Lab struct {
	mu          sync.Mutex
	Dir         string  // where fake images go
	RatePerHour float64 // of a tree with BUG (default 120)
	Rng         *rand.Rand
	Runs        int
	Builds      int
	// CancelAt cancels the context (Cancel) at this run, which ends interrupted.
	CancelAt int
	Cancel   context.CancelFunc
	// FailBuild are commits whose build fails.
	FailBuild map[string]bool
}

// New is a lab writing images under dir, seeded for reproducible runs.
func New(dir string, seed uint64) *Lab {
	return &Lab{Dir: dir, RatePerHour: 120, Rng: rand.New(rand.NewPCG(1, seed)), FailBuild: map[string]bool{}}
}

// Build "builds" the tree at s.Source.Dir: an image file saying whether it has the bug; a
// patch named revert-* flips it (the culprit undone).
func (f *Lab) Build(ctx context.Context, s kbuild.Spec) (*kbuild.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Builds++
	head, err := exec.Command("git", "-C", s.Source.Dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return nil, err
	}
	h := strings.TrimSpace(string(head))
	if f.FailBuild[h] {
		return nil, fmt.Errorf("make: *** [Makefile:1234: vmlinux] Error 2")
	}
	state := "clean"
	if _, err := os.Stat(filepath.Join(s.Source.Dir, "BUG")); err == nil {
		state = "bug"
	}
	for _, p := range s.Patches {
		if strings.Contains(filepath.Base(p), "revert-") {
			state = map[string]string{"bug": "clean", "clean": "bug"}[state]
		}
	}
	key := fmt.Sprintf("%s-%d", h[:12], len(s.Patches))
	img := filepath.Join(f.Dir, "bzImage-"+key)
	if err := os.WriteFile(img, []byte(state), 0o644); err != nil {
		return nil, err
	}
	return &kbuild.Result{Kernel: img, Key: key, Version: "6.1.0", Compiled: 3}, nil
}

// Run "boots" the image and loops for the budget: a buggy one crashes at RatePerHour.
func (f *Lab) Run(ctx context.Context, c repro.Config) (*repro.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Runs++
	now := time.Now()
	if f.CancelAt > 0 && f.Runs == f.CancelAt {
		f.Cancel()
		return &repro.Result{Outcome: repro.Interrupted, Started: now}, nil
	}
	data, err := os.ReadFile(c.Kernel)
	if err != nil {
		return nil, err
	}
	budget := c.Duration.Seconds()
	res := &repro.Result{Outcome: repro.Survived, LoopSeconds: budget, Started: now, Finished: now.Add(time.Second)}
	if string(data) == "bug" {
		if t := f.Rng.ExpFloat64() / f.RatePerHour * 3600; t < budget {
			res.Outcome, res.Reproduced, res.LoopSeconds, res.TimeToCrash = repro.Crashed, true, t, t
			res.Crashes = []repro.Crash{{Title: "sysrq: Trigger a crash", Type: "panic"}}
		}
	}
	return res, nil
}
