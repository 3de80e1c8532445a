package validate

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/spec"
	"github.com/reprolab/reprolab/lab/store"
)

// TestCIValidate is the real end to end run: the CI kernel (Debian's linux-source-6.1 with
// the seed's fragments and probe, kconfigs/ci-6.1-x86_64.yaml) is the baseline, and the CI
// reproducer (reproducers/ci-smoke with ci_smoke.crash=1) crashes it through sysrq-c.
// A candidate that removes that crash (testdata/ci-sysrq-fix.patch) must be judged fixed
// with its confidence; a candidate that only rewords a comment (testdata/ci-noop.patch)
// not fixed. Both candidates are built in the CI kernel's kept tree: only sysrq.c is
// recompiled. Real builds, real QEMU guests, real crash reports.
//
// The crash comes at the first iteration, so λ is high and c = 0.99 costs about a
// minute of looping: the test boots ~10 guests (a few minutes under TCG on 2 cores).
func TestCIValidate(t *testing.T) {
	if os.Getenv("REPROLAB_CI_KERNEL_JSON") == "" {
		t.Skip("REPROLAB_CI_KERNEL_JSON not set: `make test` builds the CI kernel first (make ci-kernel)")
	}
	ks, err := kbuild.LoadSpec("../../kconfigs/ci-6.1-x86_64.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := spec.LoadReproducer("../../reproducers/ci-smoke/repro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := &campaign.Engine{Store: st, ResultsDir: filepath.Join(dir, "results"), Accel: qemu.Auto, Progress: testWriter{t}}
	for _, tc := range []struct {
		name, patch string
		want        Verdict
	}{
		{"fix", "testdata/ci-sysrq-fix.patch", Fixed},
		{"noop", "testdata/ci-noop.patch", NotFixed},
	} {
		t0 := time.Now()
		rep, err := Run(context.Background(), Options{
			Name: "ci-" + tc.name, Engine: e, Repro: rs, Arches: []string{"x86_64"},
			Kernel:  campaign.Kernel{Source: &ks.Source, Base: ks.Base, Fragments: ks.Fragments, Probes: ks.Probes, FragmentDirs: []string{"../../kconfigs"}},
			Patches: []string{tc.patch}, Cmdline: []string{"ci_smoke.crash=1"},
			Params:        Params{Confidence: 0.99, Budget: 30 * time.Minute},
			TrialDuration: time.Minute, TrialIterations: 1000, Jobs: 1,
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		a := rep.Arches[0]
		t.Logf("%s: %s (%s) in %s: baseline %d crashes in %.1f s of looping over %d runs, candidate %.1f s over %d runs (%d infra errors); candidate build compiled %d files",
			tc.name, a.Verdict, a.Reason, time.Since(t0).Round(time.Second), a.Baseline.Crashes, a.Baseline.LoopHours*3600, a.Baseline.Runs,
			a.Candidate.LoopHours*3600, a.Candidate.Runs, a.Baseline.InfraErrors+a.Candidate.InfraErrors, a.Candidate.Compiled)
		if a.Verdict != tc.want {
			t.Fatalf("%s: verdict %q, want %q", tc.name, a.Verdict, tc.want)
		}
		if tc.want == Fixed && a.Confidence < 0.99 {
			t.Errorf("fixed with confidence %.4f < 0.99", a.Confidence)
		}
		if a.Candidate.BuildCached == false && (a.Candidate.Compiled == 0 || a.Candidate.Compiled > 20) {
			t.Errorf("the candidate compiled %d files: not an incremental build in the kept tree", a.Candidate.Compiled)
		}
		if err := rep.Write(ReportDir(e.ResultsDir, "ci-"+tc.name)); err != nil {
			t.Fatal(err)
		}
		reply, _ := os.ReadFile(filepath.Join(ReportDir(e.ResultsDir, "ci-"+tc.name), "reply.txt"))
		t.Logf("reply.txt:\n%s", reply)
	}
}

// testWriter sends the engine's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
