package kconfig

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
)

const kconfigs = "../../../kconfigs"

func ver(s string) kver.Version {
	v, err := kver.Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

func allFragments(t *testing.T) []*Fragment {
	names := []string{"base", "arch-x86_64", "arch-arm64", "virtio-guest", "memcg", "debug-vm", "dmcrypt-swap", "ext4", "pvpanic", "debug-info"}
	var out []*Fragment
	for _, n := range names {
		f, err := LoadFragment(n, []string{kconfigs})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func TestShippedFragmentsParse(t *testing.T) {
	m, _ := filepath.Glob(kconfigs + "/*.config")
	if len(m) < 10 {
		t.Fatalf("only %d fragments in kconfigs/", len(m))
	}
	for _, p := range m {
		if _, err := LoadFragment(p, nil); err != nil {
			t.Error(err)
		}
	}
}

func find(opts []Option, name string) (Option, bool) {
	for _, o := range opts {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

func TestSelectGuards(t *testing.T) {
	frags := allFragments(t)
	for _, tc := range []struct {
		ver, arch, sym string
		want           bool
	}{
		{"4.11", "x86_64", "MEMCG_SWAP", true},
		{"6.1", "x86_64", "MEMCG_SWAP", false},
		{"4.11", "x86_64", "SERIAL_8250", true},
		{"4.11", "arm64", "SERIAL_8250", false},
		{"4.13.9", "arm64", "SERIAL_AMBA_PL011", true},
		{"4.13.9", "x86_64", "FRAME_POINTER", true},
		{"6.1", "x86_64", "UNWINDER_FRAME_POINTER", true},
		{"6.1", "x86_64", "X86_PLATFORM_DEVICES", false},
		{"6.1", "arm64", "PVPANIC_PCI", true},
		{"4.11", "arm64", "PVPANIC", false},
		{"6.1", "x86_64", "DEBUG_INFO_DWARF4", true},
		{"4.11", "x86_64", "DEBUG_INFO_DWARF4", false},
	} {
		_, got := find(Select(frags, ver(tc.ver), tc.arch), tc.sym)
		if got != tc.want {
			t.Errorf("%s %s %s: selected=%v, want %v", tc.ver, tc.arch, tc.sym, got, tc.want)
		}
	}
	// A later fragment overrides an earlier one.
	a, _ := ParseFragment("a.config", []byte("CONFIG_X=y\n"))
	b, _ := ParseFragment("b.config", []byte("# CONFIG_X is not set\n"))
	o := Select([]*Fragment{a, b}, ver("6.1"), "x86_64")
	if len(o) != 1 || o[0].Value != "n" || o[0].File != "b.config" {
		t.Errorf("override: %+v", o)
	}
}

func TestFragmentErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"#@ version 4.13\nCONFIG_X=y\n", "f.config:1: bad `#@ version`"},
		{"#@ arch riscv\nCONFIG_X=y\n", `unknown arch "riscv"`},
		{"#@ optional\n", "guards no option"},
		{"#@ sometimes\nCONFIG_X=y\n", `unknown directive "sometimes"`},
		{"CONFIG_X=y\nX=y\n", `f.config:2: "X=y" is not a fragment line`},
		{"CONFIG_X=\n", "empty value"},
	} {
		if _, err := ParseFragment("f.config", []byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.text, err, tc.want)
		}
	}
	_, err := LoadFragment("dmcrypt", []string{kconfigs})
	var u *UnknownFragmentError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), `unknown config fragment "dmcrypt"`) || !strings.Contains(err.Error(), "dmcrypt-swap") {
		t.Errorf("unknown fragment: %v", err)
	}
}

func TestMerge(t *testing.T) {
	base := []byte("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\n")
	out := string(Merge(base, []Option{{Name: "B", Value: "y"}, {Name: "A", Value: "n"}, {Name: "D", Value: "64"}}))
	want := "# CONFIG_A is not set\nCONFIG_B=y\nCONFIG_C=\"x\"\n# reprolab fragments\nCONFIG_D=64\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// The .config in testdata is the real result of tinyconfig + every shipped
// fragment + olddefconfig on v4.11 x86_64.
func TestVerifyRealConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/v4.11-x86_64.config")
	if err != nil {
		t.Fatal(err)
	}
	cfg := ParseConfig(data)
	opts := Select(allFragments(t), ver("4.11"), "x86_64")
	if dropped, err := Verify(opts, cfg, "", "x86"); err != nil || len(dropped) != 0 {
		t.Fatalf("real v4.11 config fails its own fragments: %v %v", err, dropped)
	}
	if cfg.Value("DEBUG_VM") != "y" || cfg.Value("IKCONFIG_PROC") != "y" || cfg.Value("MODULES") != "n" {
		t.Error("expected DEBUG_VM=y, IKCONFIG_PROC=y, no modules")
	}

	// Ask for what the tree cannot give: the error names the option, the
	// fragment line, and the dependencies from the tree's Kconfig.
	frag, _ := ParseFragment("extra.config", []byte("CONFIG_VIRTIO_MMIO=y\n#@ optional\nCONFIG_NOT_A_SYMBOL=y\nCONFIG_DM_CRYPT_TURBO=y\n"))
	tree := t.TempDir()
	kc, err := exec.Command("git", "-C", "/work/.mirror/HCLS+linux-4.11/repo", "show", "93c10f52:drivers/virtio/Kconfig").Output()
	if err != nil {
		t.Skip("v4.11 tree not available")
	}
	os.MkdirAll(filepath.Join(tree, "drivers/virtio"), 0o755)
	os.WriteFile(filepath.Join(tree, "drivers/virtio/Kconfig"), kc, 0o644)
	cfg["HAS_DMA"] = "n" // pretend, to see a value reported
	dropped, err := Verify(frag.Options, cfg, tree, "x86")
	var ve *VerifyError
	if !errors.As(err, &ve) || len(ve.Mismatches) != 2 {
		t.Fatalf("got %v", err)
	}
	msg := err.Error()
	for _, w := range []string{
		"CONFIG_VIRTIO_MMIO: extra.config:1 asks for y, final .config has n; defined at drivers/virtio/Kconfig:",
		"depends on HAS_IOMEM && HAS_DMA [HAS_IOMEM=y HAS_DMA=n]",
		"CONFIG_DM_CRYPT_TURBO: extra.config:4 asks for y, final .config has n; no Kconfig file of this kernel defines it",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q:\n%s", w, msg)
		}
	}
	if len(dropped) != 1 || dropped[0].Option.Name != "NOT_A_SYMBOL" {
		t.Errorf("optional option not reported as dropped: %+v", dropped)
	}
}

// Help text in Kconfig is prose that can start lines with "if" or "depends".
func TestKconfigHelpIsProse(t *testing.T) {
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "Kconfig"), []byte(`menu "m"
	depends on OUTER

config A
	bool "a"
	depends on B
	help
	  if you say Y here
	  depends on nothing at all

	  more text
if C
config D
	bool "d"
endif
endmenu
choice
	prompt "unwinder"
config E
	bool "e"
config F
	bool "f"
endchoice
`), 0o644)
	defs, err := FindDefinitions(tree, "x86", []string{"A", "D", "E"})
	if err != nil {
		t.Fatal(err)
	}
	var a, d []string
	for _, x := range defs["A"][0].DependsOn {
		a = append(a, x.Expr)
	}
	for _, x := range defs["D"][0].DependsOn {
		d = append(d, x.Expr)
	}
	if strings.Join(a, ";") != "OUTER (enclosing menu);B" || strings.Join(d, ";") != "OUTER (enclosing menu);C (enclosing if)" {
		t.Errorf("A: %v, D: %v", a, d)
	}
	if !defs["E"][0].InChoice || defs["A"][0].InChoice || strings.Join(defs["E"][0].ChoiceMembers, " ") != "E F" {
		t.Errorf("choice membership: %+v", defs)
	}
}

// On v4.11's real init/Kconfig, asking for SLUB unsets the allocator
// choice's other members (tinyconfig leaves SLOB=y).
func TestChoiceSiblingsReal(t *testing.T) {
	kc, err := exec.Command("git", "-C", "/work/.mirror/HCLS+linux-4.11/repo", "show", "93c10f52:init/Kconfig").Output()
	if err != nil {
		t.Skip("v4.11 tree not available")
	}
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "init"), 0o755)
	os.WriteFile(filepath.Join(tree, "init/Kconfig"), kc, 0o644)
	sib, err := ChoiceSiblings([]Option{{Name: "SLUB", Value: "y"}, {Name: "SLAB", Value: "n"}, {Name: "MEMCG", Value: "y"}}, tree, "x86")
	if err != nil {
		t.Fatal(err)
	}
	if len(sib) != 1 || sib[0].Name != "SLOB" || sib[0].Value != "n" || !sib[0].Optional {
		t.Errorf("siblings %+v", sib)
	}
}
