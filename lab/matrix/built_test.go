package matrix

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/store"
)

// syncBuffer collects progress from parallel workers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBuiltKernelProbeAxis runs a matrix whose kernel lab/kbuild builds from source (the
// CI kernel, found in the kbuild cache) and checks that the probe axis reaches the probe
// compiled into it: each guest's live reprolab.delay_seed equals its cell's value.
func TestBuiltKernelProbeAxis(t *testing.T) {
	requireGuests(t)
	if p := os.Getenv("REPROLAB_CI_KERNEL_JSON"); p == "" {
		t.Skip("REPROLAB_CI_KERNEL_JSON not set: `make test` builds the CI kernel first (make ci-kernel)")
	} else if _, err := os.Stat(p); err != nil {
		t.Skipf("CI kernel not built: %v", err)
	}
	s, err := Load("../../reproducers/ci-smoke/built-kernel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results := t.TempDir()
	st, err := store.Open(context.Background(), results)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var progress syncBuffer
	sum, err := Run(context.Background(), Options{
		Spec: s, Store: st, ResultsDir: results, Jobs: 2, Progress: &progress,
		// The CI kernel is built before the tests; a miss here means this matrix and
		// kconfigs/ci-6.1-x86_64.yaml drifted apart. Never compile for minutes in a test.
		Build: func(ctx context.Context, spec kbuild.Spec) (*kbuild.Result, error) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			spec.FragmentDirs = []string{filepath.Join(repoRoot, "kconfigs")}
			return kbuild.Build(ctx, spec)
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(sum.BuildErrors) > 0 || sum.Ran != 2 {
		t.Fatalf("summary %+v\n%s", sum, progress.String())
	}
	builds, _ := st.Builds(context.Background(), CampaignID(s.Name))
	if len(builds) != 1 || !builds[0].Cached || !strings.HasPrefix(builds[0].ID, "kbuild-") {
		t.Fatalf("want one cached kbuild build shared by both cells, got %+v", builds)
	}
	runs, _ := st.Runs(context.Background(), CampaignID(s.Name))
	for _, r := range runs {
		if r.Outcome != "survived" {
			t.Errorf("%s: %s: %s (the live probe delay did not match the cell)", r.ID, r.Outcome, r.Error)
		}
		want := "reprolab.delay_seed=" + map[bool]string{true: "100", false: "0"}[strings.Contains(r.Group, "_p100_")]
		if !strings.Contains(r.Cmdline, want) {
			t.Errorf("%s: cmdline %q lacks %s", r.ID, r.Cmdline, want)
		}
		console, _ := os.ReadFile(filepath.Join(results, r.Dir, "console.log"))
		if !strings.Contains(string(console), "live "+want) {
			t.Errorf("%s: console does not show the guest reading %s", r.ID, want)
		}
	}
}
