package kbuild

import (
	"bytes"
	"regexp"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
)

// Fix is an edit that lets an old kernel build and boot with today's host
// toolchain (gcc 12, binutils 2.40). Fixes are picked by kernel version and
// arch, and only applied when the tree still has the old text, so a tree
// that already carries the upstream fix is left alone. Every fix applied to
// a build is listed in its metadata.json.
type Fix struct {
	Name string
	File string
	// Why: the symptom without the fix and the upstream commit that fixed it.
	Why string
	// Applies selects kernels and arches.
	Applies func(v kver.Version, arch string) bool
	// Edit returns the fixed content, or ok=false when the old text is absent.
	Edit func(old []byte) (fixed []byte, ok bool)
}

func older(maj, min int) func(v kver.Version, arch string) bool {
	return func(v kver.Version, _ string) bool { return v.Compare(kver.Version{Major: maj, Minor: min}) < 0 }
}

// Fixes is the table of known old-kernel compat fixes.
var Fixes = []Fix{
	{
		Name: "x86-max-page-size",
		File: "arch/x86/Makefile",
		Why: "binutils >= 2.31 links x86-64 with 4 KiB max-page-size; v4.x kernels then triple-fault " +
			"at boot (nothing on the console). Link with -z max-page-size=0x200000 as upstream " +
			"e3d03598e8ae (v4.16) does.",
		Applies: func(v kver.Version, arch string) bool {
			return arch == "x86_64" && v.Compare(kver.Version{Major: 4, Minor: 16}) < 0
		},
		Edit: func(b []byte) ([]byte, bool) {
			anchor := []byte("LDFLAGS := -m elf_$(UTS_MACHINE)\n")
			if bytes.Contains(b, []byte("max-page-size")) || !bytes.Contains(b, anchor) {
				return nil, false
			}
			return bytes.Replace(b, anchor, append(anchor, []byte(
				"\n# reprolab compat: binutils >= 2.31 defaults to 4K max-page-size and the\n"+
					"# kernel triple-faults at boot (upstream e3d03598e8ae).\n"+
					"ifeq ($(CONFIG_X86_64),y)\nLDFLAGS += -z max-page-size=0x200000\nendif\n")...), 1), true
		},
	},
	{
		Name: "dtc-yylloc-common",
		File: "scripts/dtc/dtc-lexer.lex.c_shipped",
		Why: "gcc >= 10 defaults to -fno-common; the shipped dtc lexer defines yylloc a second " +
			"time and the host link of scripts/dtc fails with \"multiple definition of `yylloc'\" " +
			"(arm64 builds dtc). Declare it extern as upstream e33a814e772c (v5.7) does.",
		Applies: older(5, 7),
		Edit: func(b []byte) ([]byte, bool) {
			old := []byte("\nYYLTYPE yylloc;\n")
			if !bytes.Contains(b, old) {
				return nil, false
			}
			return bytes.Replace(b, old, []byte("\nextern YYLTYPE yylloc; /* reprolab compat: gcc >= 10 -fno-common */\n"), 1), true
		},
	},
	{
		Name: "selinux-genheaders-pf-max",
		File: "security/selinux/include/classmap.h",
		Why: "the host tool scripts/selinux/genheaders includes classmap.h with glibc's " +
			"<sys/socket.h>, whose PF_MAX is larger than the kernel's list, and stops at " +
			"\"#error New address family defined, please update secclass_map.\"; keep the " +
			"check for kernel builds only (defined(__KERNEL__)).",
		Applies: older(5, 0),
		Edit: func(b []byte) ([]byte, bool) {
			re := regexp.MustCompile(`(?m)^#if PF_MAX > (\d+)$`)
			if !re.Match(b) {
				return nil, false
			}
			return re.ReplaceAll(b, []byte("#if defined(__KERNEL__) && PF_MAX > $1 /* reprolab compat: host glibc */")), true
		},
	},
}

// fixesFor returns the fixes selected for this kernel and arch.
func fixesFor(v kver.Version, arch string) []Fix {
	var out []Fix
	for _, f := range Fixes {
		if f.Applies(v, arch) {
			out = append(out, f)
		}
	}
	return out
}
