package vcstest

import "testing"

// The same edits give the same commit ids in two repositories (fixed identity and clock),
// which is what makes the CI history's ids the same on every machine.
func TestReproducibleIDs(t *testing.T) {
	make := func() []string {
		r := New(t, "")
		r.Write("Makefile", "VERSION = 6\nPATCHLEVEL = 1\n")
		hs := []string{r.Commit("import")}
		hs = append(hs, r.Linear(3, 1)...)
		r.Checkout(hs[1], "side")
		r.Write("side.txt", "s\n")
		r.Commit("side")
		r.Checkout("main", "")
		return append(hs, r.Merge("side", "merge side"))
	}
	a, b := make(), make()
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("commit %d: %s vs %s", i, a[i], b[i])
		}
	}
	r := Open(t, t.TempDir())
	if r.n != 0 {
		t.Errorf("Open of an empty folder: clock at %d", r.n)
	}
}
