package matrix

import (
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: any matrix spec bytes load or fail as bad input (lab/fault), never panic;
// a spec that loads has a safe name, runs, arches, kernels, and exclude/expect_crash values
// that exist on their axes, and expands to cells whose IDs are safe folder names.
// Run with: go test ./lab/matrix -fuzz FuzzLoad -fuzztime 30s
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, p := range append(files, "../../reproducers/memcg-writeback-null/matrix.yaml") {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte("name: t\nrun: \"true\"\nbudget: {iterations: 1}\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "matrix.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Load(path)
		if err != nil {
			if !fault.IsInput(err) {
				t.Fatalf("not bad input: %T %v", err, err)
			}
			return
		}
		if !nameRE.MatchString(s.Name) || s.Budget.Runs <= 0 || len(s.Axes.Arch) == 0 || len(s.Axes.Kernel) == 0 {
			t.Fatalf("accepted an unusable matrix: %+v", s)
		}
		values := s.axisValues()
		for _, m := range append(append([]Match(nil), s.Exclude...), s.ExpectCrash...) {
			for k, v := range m {
				if !contains(values[k], v) {
					t.Fatalf("accepted %s=%q, not on the axis %v", k, v, values[k])
				}
			}
		}
		cells, err := s.Cells(nil)
		if err != nil {
			return
		}
		for _, c := range cells {
			if id := s.RunID(c, 1); filepath.Base(id) != id || id == ".." {
				t.Fatalf("run id %q is not one folder name", id)
			}
		}
	})
}
