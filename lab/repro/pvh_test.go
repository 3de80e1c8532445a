package repro

import (
	"context"
	"testing"

	"github.com/reprolab/reprolab/lab/qemu"
)

// TestPVHUnpack unpacks Debian's XZ bzImage (built with CONFIG_PVH) and finds its PVH
// entry note.
func TestPVHUnpack(t *testing.T) {
	kernel, _ := debianKernel(t, qemu.X86_64)
	elfData, err := unpackBzImage(context.Background(), kernel)
	if err != nil {
		t.Fatal(err)
	}
	if !hasPVHNote(elfData) {
		t.Fatalf("%s: no PVH note found in the %d-byte ELF", kernel, len(elfData))
	}
}
