package matrix

import (
	"path/filepath"
	"strings"
	"testing"
)

// Bad input exits 2 with a message naming the thing and what to do.
func TestCLIBadInput(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"matrix"}, "Usage:"},
		{[]string{"matrix", "no/such/matrix.yaml"}, "matrix spec: open no/such/matrix.yaml"},
		{[]string{"matrix", "lab/matrix/testdata/bad/unknown-key.yaml"}, `unknown key "probes"`},
		{[]string{"matrix", "reproducers/memcg-writeback-null", "--kernel-source", "v5.0=dir:/x"}, `no kernel "v5.0"`},
		{[]string{"matrix", "reproducers/memcg-writeback-null", "--only", "colour=red"}, "--only"},
		{[]string{"matrix", "reproducers/ci-smoke", "--only", "arch=riscv64", "--dry-run"}, "no cells left"},
		// --dry-run checks the sources it would build from, without fetching anything.
		{[]string{"matrix", "reproducers/memcg-writeback-null", "--dry-run", "--kernel-source", "v4.11=dir:" + empty}, "is not a Linux source tree"},
		{[]string{"matrix", "reproducers/memcg-writeback-null", "--dry-run", "--kernel-source", "v4.11=tarball:go.mod#" + strings.Repeat("0", 64)}, "sha256 is"},
		{[]string{"matrix", "reproducers/memcg-writeback-null", "--dry-run", "--kernel-source", "v4.11=url:https://example.org/linux.tar.xz#abc"}, "is not 64 hex digits"},
		{[]string{"matrix", "reproducers/memcg-writeback-null", "--dry-run", "--kernel-source", "v4.11=git:" + empty + "@v4.11"}, "not a git repository"},
		{[]string{"matrix", "report", empty}, "has no reprolab.db"},
		{[]string{"matrix", "report", filepath.Join(empty, "nope")}, "give a results folder"},
		{[]string{"serve", "--addr", "0.0.0.0:8080", "--results", empty}, "loopback only"},
	}
	for _, tt := range tests {
		out, code := runCLI(t, tt.args...)
		if code != 2 || !strings.Contains(out, tt.want) {
			t.Errorf("reprolab %s: exit %d, output %q; want exit 2 and %q", strings.Join(tt.args, " "), code, out, tt.want)
		}
	}
}

func TestCLIDryRun(t *testing.T) {
	out, code := runCLI(t, "matrix", "reproducers/memcg-writeback-null", "--dry-run", "--only", "arch=arm64,kernel=v4.11",
		"--kernel-source", "v4.11=dir:lab/kbuild/testdata/minitree")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(out, "arm64_v4.11_default_p100_none_plain\texpect crash") ||
		!strings.Contains(out, "reprolab.delay_seed=100 reprolab.delay_wb_stat=100") {
		t.Fatalf("dry run:\n%s", out)
	}
}
