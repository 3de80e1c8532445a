package matrix

import (
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadSpecs(t *testing.T) {
	tests := []struct{ file, want string }{
		{"unknown-key.yaml", `unknown key "probes"`},
		{"no-runs.yaml", "budget.runs is required"},
		{"bad-arch.yaml", `"riscv64": want x86_64 or arm64`},
		{"source-and-prebuilt.yaml", "exactly one of source or prebuilt"},
		{"missing-repro.yaml", "reproducer:"},
		{"bad-match-axis.yaml", `unknown axis "kernal"`},
		{"duplicate-kernel.yaml", `"k" appears twice`},
		{"missing-patch.yaml", "no-such.patch"},
		{"bad-name.yaml", `name "my matrix"`},
		{"expect-value-typo.yaml", `expect_crash[0]: kernel "v4.12" is not on the kernel axis (did you mean "v4.11"?) (it has: v4.11, v4.13)`},
		{"expect-probe-typo.yaml", `expect_crash[0]: probe "1000" is not on the probe axis (did you mean "100"?) (it has: 0, 100)`},
		{"exclude-value-typo.yaml", `exclude[0]: arch "arm46" is not on the arch axis (did you mean "arm64"?)`},
		{"runs-float.yaml", `budget.runs (line 7): "1.5" is not a whole number`},
		{"budget-negative-duration.yaml", `budget-negative-duration.yaml:7: budget.duration -3m0s: must be a positive duration`},
		{"budget-unknown-key.yaml", `budget-unknown-key.yaml:7: unknown key "iteratons" in budget (did you mean "iterations"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			_, err := Load(path)
			if !fault.IsInput(err) {
				t.Fatalf("want bad input, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q should name %s and say %q", err, path, tt.want)
			}
		})
	}
}

// The shipped seed matrix: 2 arches × (v4.11 {none, fix} + v4.13 none) × probe {0, 100}.
func TestSeedMatrix(t *testing.T) {
	s, err := Load("../../reproducers/memcg-writeback-null")
	if err != nil {
		t.Fatal(err)
	}
	cells, err := s.Cells(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 12 {
		t.Fatalf("%d cells, want 12", len(cells))
	}
	builds := map[string]bool{}
	var expect []string
	for _, c := range cells {
		builds[c.BuildKey()] = true
		if c.Expect {
			expect = append(expect, c.ID())
		}
	}
	// Probe on and off share a build: 2 arches × 3 kernels.
	if len(builds) != 6 {
		t.Fatalf("%d distinct builds, want 6: %v", len(builds), builds)
	}
	if strings.Join(expect, " ") != "x86_64_v4.11_default_p100_none_plain arm64_v4.11_default_p100_none_plain" {
		t.Fatalf("expected crashes: %v", expect)
	}
	for _, c := range cells {
		got := strings.Join(s.CellCmdline(c), " ")
		want := "reprolab.delay_seed=" + c.Value("probe")
		if c.Patches.Name == "fix" {
			want += " reprolab.delay_wb_stat=" + c.Value("probe")
		}
		if got != want {
			t.Errorf("%s: cmdline %q, want %q", c.ID(), got, want)
		}
	}
	if k := s.Axes.Kernel[0].Source; k == nil || k.SHA256 != "b67ecafd0a42b3383bf4d82f0850cbff92a7e72a215a6d02f42ddbafcf42a7d6" {
		t.Fatalf("v4.11 source not pinned: %+v", k)
	}
}

func TestOverrideKernel(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		arg, want string // want: a substring of the error, or "" for success
		check     func(s *Spec) bool
	}{
		{arg: "v4.11=git:" + dir + "@v4.11", check: func(s *Spec) bool {
			k := s.Axes.Kernel[0].Source
			return k.Git == dir && k.Ref == "v4.11" && k.KernelOrg == ""
		}},
		{arg: "v4.13=git:" + dir + "@abc123,exclude=drivers/gpu/drm/amd/include/asic_reg", check: func(s *Spec) bool {
			k := s.Axes.Kernel[1].Source
			return k.Ref == "abc123" && len(k.Exclude) == 1 && k.Exclude[0] == "drivers/gpu/drm/amd/include/asic_reg"
		}},
		{arg: "v4.13=git:" + dir + "@abc,colour=red", want: "only exclude=PATH"},
		{arg: "v4.13=dir:" + dir, check: func(s *Spec) bool { return s.Axes.Kernel[1].Source.Dir == dir }},
		{arg: "v4.11=tarball:/t/linux.tar.xz#abc", check: func(s *Spec) bool {
			k := s.Axes.Kernel[0].Source
			return k.Tarball == "/t/linux.tar.xz" && k.SHA256 == "abc"
		}},
		{arg: "v4.11=prebuilt:x86_64=/b/bzImage,modules=/b/mods", check: func(s *Spec) bool {
			k := s.Axes.Kernel[0]
			return k.Source == nil && k.Prebuilt["x86_64"].Modules == "/b/mods"
		}},
		{arg: "v4.12=dir:/x", want: `no kernel "v4.12" (it has: v4.11, v4.13)`},
		{arg: "v4.11=git:/x", want: "git needs a ref"},
		{arg: "v4.11=url:https://x/linux.tar.xz", want: "needs its sha256"},
		{arg: "v4.11=svn:/x", want: "unknown source kind"},
		{arg: "v4.11", want: "want NAME="},
	}
	for _, tt := range tests {
		s, err := Load("../../reproducers/memcg-writeback-null/matrix.yaml")
		if err != nil {
			t.Fatal(err)
		}
		err = s.OverrideKernel(tt.arg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.arg, err)
		case tt.want == "" && !tt.check(s):
			t.Errorf("%s: not applied: %+v", tt.arg, s.Axes.Kernel)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.arg, err, tt.want)
		}
	}
}

func TestOnlyAndPrebuiltChecks(t *testing.T) {
	s, err := Load("../../reproducers/ci-smoke/matrix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseOnly("arch=x86_64,cmdline=plain")
	if err != nil {
		t.Fatal(err)
	}
	cells, err := s.Cells([]Match{m})
	if err != nil || len(cells) != 2 {
		t.Fatalf("%d cells, %v", len(cells), err)
	}
	if _, err := ParseOnly("colour=red"); err == nil {
		t.Fatal("--only colour=red accepted")
	}
	if _, err := s.Cells([]Match{{"arch": "riscv64"}}); err == nil || !strings.Contains(err.Error(), "no cells left") {
		t.Fatalf("empty selection: %v", err)
	}
	// A prebuilt image pattern that matches nothing says how to get Debian's kernels.
	os.Setenv("REPROLAB_CACHE", t.TempDir())
	defer os.Unsetenv("REPROLAB_CACHE")
	_, err = resolvePrebuilt("debian-6.1", "x86_64", "image", s.Axes.Kernel[0].Prebuilt["x86_64"].Image)
	if err == nil || !strings.Contains(err.Error(), "images/debian-kernels.sh") {
		t.Fatalf("missing prebuilt: %v", err)
	}
}

func TestOneInvocationPerMatrix(t *testing.T) {
	dir := t.TempDir()
	first, err := lockMatrix(dir, "m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockMatrix(dir, "m"); err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second lock: %v", err)
	}
	if other, err := lockMatrix(dir, "other"); err != nil {
		t.Fatalf("another matrix: %v", err)
	} else {
		other.Close()
	}
	first.Close()
	again, err := lockMatrix(dir, "m")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again.Close()
}
