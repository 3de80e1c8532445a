package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWithNewInode(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "pristine")
	link := filepath.Join(dir, "sub", "tree-copy")
	if err := os.WriteFile(orig, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Link(orig, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(orig); string(b) != "old" {
		t.Errorf("write went through the hard link: pristine now %q", b)
	}
	if b, _ := os.ReadFile(link); string(b) != "new" {
		t.Errorf("content %q", b)
	}
	if st, _ := os.Stat(link); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "sub", ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := Write(filepath.Join(dir, "new", "deep", "f"), []byte("x"), 0o644); err != nil {
		t.Errorf("missing folders: %v", err)
	}
}
