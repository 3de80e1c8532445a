package treepath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/fault"
)

func TestResolve(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "tree")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root + "/mm", root + "/include/linux", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "mm/memcontrol.c"), []byte("x\n"), 0o644)
	os.WriteFile(filepath.Join(outside, "victim.c"), []byte("x\n"), 0o644)
	links := map[string]string{
		"mm/out":          outside,                  // a folder link leaving the tree
		"mm/victim.c":     "../../outside/victim.c", // a file link leaving the tree
		"mm/inside.c":     "memcontrol.c",           // a link that stays inside
		"include/mm":      "../mm",                  // a folder link that stays inside
		"mm/dangling.c":   "/nonexistent/file.c",
		"include/escape2": "../../tree/../outside",
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		rel, reason string // reason "" = allowed
	}{
		{"mm/memcontrol.c", ""},
		{"mm/new-file.c", ""},
		{"new/dir/file.c", ""},
		{"mm/inside.c", ""},
		{"include/mm/memcontrol.c", ""},
		{"./mm/../mm/memcontrol.c", ""},
		{"../outside/victim.c", "climbs out"},
		{"mm/../../outside/victim.c", "climbs out"},
		{"..", "climbs out"},
		{".", "climbs out"},
		{"", "is empty"},
		{"/etc/passwd", "is absolute"},
		{outside + "/victim.c", "is absolute"},
		{"mm/out/victim.c", "symlink"},
		{"mm/out/new.c", "symlink"},
		{"mm/victim.c", "symlink"},
		{"include/escape2/victim.c", "symlink"},
		{"mm/dangling.c", "dangling symlink"},
		{"mm/x\x00.c", "NUL"},
	} {
		got, err := Resolve(root, c.rel)
		if c.reason == "" {
			if err != nil || !Within(root, got) {
				t.Errorf("Resolve(%q) = %q, %v; want a path inside the tree", c.rel, got, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), "inside the kernel tree") {
			t.Errorf("Resolve(%q) = %q, %v; want an error saying %q", c.rel, got, err, c.reason)
			continue
		}
		if !fault.IsInput(err) {
			t.Errorf("Resolve(%q): %v is not bad input", c.rel, err)
		}
	}
}

// A tree reached through a symlink (a cache folder on another disk) is still the tree.
func TestRootThroughSymlink(t *testing.T) {
	base := t.TempDir()
	os.MkdirAll(filepath.Join(base, "real/mm"), 0o755)
	os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "link"))
	if _, err := Resolve(filepath.Join(base, "link"), "mm/x.c"); err != nil {
		t.Fatal(err)
	}
}
