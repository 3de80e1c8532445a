package kbuild

import (
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/kbuild/kconfig"
)

// TestCompressorTool: an image compression whose host tool is missing fails before the
// build, naming the option's fragment line and the package; one that is present, or a
// compression left unset, passes.
func TestCompressorTool(t *testing.T) {
	lz4 := kconfig.Option{Name: "KERNEL_LZ4", Value: "y", File: "arch-x86_64.config", Line: 42}
	cases := []struct {
		name string
		path string // PATH for the check; "" keeps the host's
		opts []kconfig.Option
		want string // "" = no error
	}{
		{"tool missing", t.TempDir(), []kconfig.Option{lz4}, "CONFIG_KERNEL_LZ4=y (arch-x86_64.config:42) needs lz4c; install it with `apt-get install lz4`"},
		{"unset compression", t.TempDir(), []kconfig.Option{{Name: "KERNEL_LZ4", Value: "n"}}, ""},
		{"other options", t.TempDir(), []kconfig.Option{{Name: "PVH", Value: "y"}}, ""},
		{"host has it", "", []kconfig.Option{{Name: "KERNEL_XZ", Value: "y"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.path != "" {
				t.Setenv("PATH", c.path)
			}
			err := compressorTool(c.opts)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
