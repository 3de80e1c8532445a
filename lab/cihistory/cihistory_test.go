package cihistory_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/bisectrun"
	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/cihistory"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/store/storetest"
	"github.com/reprolab/reprolab/lab/vcs"
)

func load(t *testing.T) *cihistory.History {
	p := os.Getenv("REPROLAB_CI_HISTORY_JSON")
	if p == "" {
		t.Skip("REPROLAB_CI_HISTORY_JSON unset: run through `make test` (make ci-history builds the history)")
	}
	h, err := cihistory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The record is what the recipe says: bad in the middle, fix later, the patches there,
// and git agrees on the ancestry the bisection and validation tests rely on.
func TestRecord(t *testing.T) {
	h := load(t)
	ctx := context.Background()
	g, err := vcs.Open(ctx, h.Repo)
	if err != nil {
		t.Fatal(err)
	}
	kinds := ""
	for _, c := range h.Commits {
		kinds += c.Kind[:1]
	}
	if kinds != "hhhhhhhbhhhhfhhh" || h.Bad != h.Commits[7].Hash || h.Fix != h.Commits[12].Hash || h.LastBad != h.Commits[11].Hash {
		t.Errorf("history shape %s: %+v", kinds, h)
	}
	line, err := g.Commits(ctx, h.Base, h.Head, true)
	if err != nil || len(line) != 16 || line[15].Hash != h.Head {
		t.Fatalf("git log base..head: %d commits, %v", len(line), err)
	}
	c, err := g.Info(ctx, h.Bad)
	if err != nil || c.Version.Major != 6 || c.Version.Minor != 1 {
		t.Errorf("bad commit %+v: %v", c, err)
	}
	for _, p := range []string{h.FixPatch, h.NoopPatch, h.Reproducer, h.KernelSpec} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
}

// TestBadCommitCrashes builds the commit before the injected crash and then the bad commit
// in the kept tree bisections use (lab/bisectrun's, per arch and config), so the second
// build is incremental, and loops the ci-race reproducer on the bad commit until the
// crash with the expected title: what bisection and validation in CI stand on.
func TestBadCommitCrashes(t *testing.T) {
	h := load(t)
	if testing.Short() {
		t.Skip("builds and boots a kernel (-short)")
	}
	ctx := context.Background()
	ks, err := kbuild.LoadSpec(h.KernelSpec)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(h.KernelSpec))
	k := campaign.Kernel{Arch: ks.Arch, Base: ks.Base, Fragments: ks.Fragments, Probes: ks.Probes, FragmentDirs: []string{filepath.Join(root, "kconfigs")}}
	g, err := vcs.Open(ctx, h.Repo)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, storetest.DSN(t, "sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := &campaign.Engine{Store: st, ResultsDir: t.TempDir(), Progress: testWriter{t}}
	c := campaign.Campaign{ID: campaign.ID(campaign.Bisect, "cihistory-test"), Kind: campaign.Bisect, Name: "cihistory-test"}
	if err := e.Open(ctx, c); err != nil {
		t.Fatal(err)
	}
	treeDir := bisectrun.TreeDir(kbuild.DefaultCacheDir(), g.Dir(), k)
	var bad *campaign.Build
	for _, commit := range []string{h.Commits[6].Hash, h.Bad} {
		t0 := time.Now()
		changed, err := g.Checkout(ctx, treeDir, commit, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Kernel(ctx, c.ID, bisectrun.KernelAt(k, treeDir, commit))
		if err != nil || b.Failed != nil {
			t.Fatalf("build at %.12s: %v %v", commit, err, b.Failed)
		}
		t.Logf("build at %.12s: %d changed files, compiled %d, cached %v, %.0fs (checkout+build)", commit, len(changed), b.Compiled, b.Cached, time.Since(t0).Seconds())
		bad = b
	}
	// The step from the last good commit to the bad one changes one file.
	if !bad.Cached && (bad.Compiled == 0 || bad.Compiled > 10) {
		t.Errorf("the bad commit's build compiled %d files; one file changed (an incremental build compiles a few)", bad.Compiled)
	}
	r, err := spec.LoadReproducer(h.Reproducer)
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.Trial(ctx, c.ID, campaign.Trial{ID: "bad-1", Group: h.Bad, Attempt: 1, Build: bad, Repro: r, Cmdline: bad.Params, Duration: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outcome %s after %d iterations, %.0f s of looping", run.Outcome, run.Iterations, run.LoopSeconds)
	if run.Outcome != "crashed" || len(run.Crashes) == 0 || !strings.Contains(run.Crashes[0].Title, h.Title) {
		t.Fatalf("bad commit: outcome %s, crashes %+v; want a crash titled %q", run.Outcome, run.Crashes, h.Title)
	}
	if !run.Reproduced {
		t.Errorf("crash %q not counted as the reproducer's expected title", run.Crashes[0].Title)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// BenchmarkMoveKeptTree measures what a bisection step costs before make runs: moving a
// kept kernel work tree (~75k files) between two nearby commits with vcs Checkout.
func BenchmarkMoveKeptTree(b *testing.B) {
	p := os.Getenv("REPROLAB_CI_HISTORY_JSON")
	if p == "" {
		b.Skip("REPROLAB_CI_HISTORY_JSON unset: run through `make bench`")
	}
	h, err := cihistory.Load(p)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	g, err := vcs.Open(ctx, h.Repo)
	if err != nil {
		b.Fatal(err)
	}
	tree := filepath.Join(b.TempDir(), "tree")
	t0 := time.Now()
	if _, err := g.Checkout(ctx, tree, h.Base, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("new kept tree (worktree add of the whole kernel): %.1fs", time.Since(t0).Seconds())
	defer g.RemoveTree(ctx, tree)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		to := h.Bad
		if i%2 == 1 {
			to = h.Commits[6].Hash
		}
		if _, err := g.Checkout(ctx, tree, to, nil); err != nil {
			b.Fatal(err)
		}
	}
}
