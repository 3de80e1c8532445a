package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirmware: qboot is picked for x86-64 -kernel boots from the QEMU installation the
// binary belongs to, and never for arm64, for a guest without -kernel, or with
// REPROLAB_SEABIOS set.
func TestFirmware(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin", "qemu-system-x86_64")
	rom := filepath.Join(root, "share", "qemu", qbootROM)
	for _, f := range []string{bin, rom} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		cfg     Config
		seabios bool
		want    string
	}{
		{"x86 kernel boot", Config{Arch: X86_64, Binary: bin, Kernel: "/k"}, false, rom},
		{"seabios asked for", Config{Arch: X86_64, Binary: bin, Kernel: "/k"}, true, ""},
		{"arm64", Config{Arch: ARM64, Binary: bin, Kernel: "/k"}, false, ""},
		{"no -kernel", Config{Arch: X86_64, Binary: bin}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.seabios {
				t.Setenv("REPROLAB_SEABIOS", "1")
			}
			got := Firmware(c.cfg)
			if filepath.Clean(got) != filepath.Clean(c.want) && !(got == "" && c.want == "") {
				t.Fatalf("Firmware = %q, want %q", got, c.want)
			}
			line := strings.Join(Args(c.cfg, TCG), " ")
			if has := strings.Contains(line, "-bios "); has != (c.want != "") {
				t.Fatalf("argv has -bios = %v, want %v:\n%s", has, c.want != "", line)
			}
		})
	}
}
