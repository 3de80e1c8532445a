package nightly

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/bisectrun/fakelab"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

// Three nights over a tracked branch fetched from upstream: the first records the head,
// the second finds the crash a new commit brought and bisects to it, the third finds it
// fixed and bisects to the fix. The builder and runner are fakes (fakelab); the real
// nightly on the CI kernel is in cmd/reprolab.
func TestNightly(t *testing.T) {
	up := vcstest.New(t, "")
	up.Linear(6, -1)
	clone := filepath.Join(t.TempDir(), "clone")
	up.Git("clone", "-q", up.Dir, clone)
	data, err := os.ReadFile("testdata/nightly.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "nightly.yaml")
	text := strings.NewReplacer("$REPO", clone, "$UPSTREAM", up.Dir).Replace(string(data))
	abs, _ := filepath.Abs("../../reproducers/ci-smoke/repro.yaml")
	text = strings.Replace(text, "../../../reproducers/ci-smoke/repro.yaml", abs, 1)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "results", "reprolab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lab := fakelab.New(t.TempDir(), 7)
	e := &campaign.Engine{Store: st, ResultsDir: filepath.Join(dir, "results"), CacheDir: filepath.Join(dir, "cache"), Build: lab.Build, Run: lab.Run}

	night := func(want Change) *Summary {
		t.Helper()
		s, err := Run(ctx, cfg, e, nil)
		if err != nil {
			t.Fatalf("nightly: %v", err)
		}
		if len(s.Results) != 1 || s.Results[0].Change != want {
			t.Fatalf("results %+v, want one %s", s.Results, want)
		}
		for _, f := range []string{"summary.md", "summary.html", "summary.json"} {
			if _, err := os.Stat(filepath.Join(ResultsDir(e.ResultsDir, cfg.Name), f)); err != nil {
				t.Errorf("missing %s", f)
			}
		}
		return s
	}
	if s := night(First); s.ExitCode() != 0 {
		t.Errorf("first night exit %d", s.ExitCode())
	}
	// Upstream gains a commit that brings the bug, and more after it.
	var culprit string
	for i := 0; i < 5; i++ {
		up.Write(fmt.Sprintf("later/%d.txt", i), "x\n")
		if i == 2 {
			up.Write("BUG", "introduced\n")
		}
		h := up.Commit(fmt.Sprintf("later: commit %d", i))
		if i == 2 {
			culprit = h
		}
	}
	s := night(New)
	b := s.Results[0].Bisection
	if b == nil || b.Culprit == nil || b.Culprit.Hash != culprit {
		t.Fatalf("bisection %+v, want culprit %s", b, culprit)
	}
	if s.ExitCode() != fault.ExitCrashed {
		t.Errorf("exit %d, want %d", s.ExitCode(), fault.ExitCrashed)
	}
	if md := s.Markdown(); !strings.Contains(md, culprit[:12]) || !strings.Contains(md, "1 new") {
		t.Errorf("summary.md does not name the culprit:\n%s", md)
	}
	// The fix lands upstream.
	up.Git("rm", "-q", "BUG")
	fix := up.Commit("later: fix BUG")
	up.Write("later/after.txt", "y\n")
	up.Commit("later: after the fix")
	s = night(Fixed)
	if b := s.Results[0].Bisection; b == nil || b.Culprit == nil || b.Culprit.Hash != fix {
		t.Fatalf("fix bisection %+v, want %s", b, fix)
	}

	// Two nightlies never overlap.
	lock, err := e.Lock(campaign.ID(campaign.Nightly, cfg.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := Run(ctx, cfg, e, nil); !fault.IsInput(err) || !strings.Contains(err.Error(), "already running") {
		t.Errorf("overlapping nightly: %v", err)
	}
}

func TestLoadUnknownKey(t *testing.T) {
	_, err := Load("testdata/bad-key.yaml")
	if !fault.IsInput(err) || !strings.Contains(err.Error(), "brnch") || !strings.Contains(err.Error(), "line") {
		t.Errorf("got %v, want an input error naming brnch and its line", err)
	}
}

// Negative durations and counts are errors, not silent defaults: a negative trial loop
// would produce clean verdicts from nothing.
func TestLoadNegative(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "nightly.yaml")
	os.WriteFile(p, []byte("name: n\ntrees: [{name: t, git: /x, branch: main}]\ncells: [{name: c, repro: r.yaml, runs: -1, duration: -5m}]\nbisect: {max_end: -1h}\n"), 0o644)
	_, err := Load(p)
	for _, want := range []string{"cells[0].runs: -1", "cells[0].duration: -5m0s", "bisect.duration, bisect.max_end"} {
		if !fault.IsInput(err) || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("got %v, want an input error saying %q", err, want)
		}
	}
}
