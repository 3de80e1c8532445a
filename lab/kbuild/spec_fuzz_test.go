package kbuild

import (
	"github.com/reprolab/reprolab/lab/fault"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadSpec: any kernel spec bytes load or fail as bad input, never panic; relative
// paths in a spec that loads are made relative to its folder.
// Run with: go test ./lab/kbuild -run '^$' -fuzz FuzzLoadSpec -fuzztime 30s
func FuzzLoadSpec(f *testing.F) {
	specs, _ := filepath.Glob("../../kconfigs/*.yaml")
	for _, p := range specs {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "kernel.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSpec(path)
		if err != nil {
			if !fault.IsInput(err) {
				t.Fatalf("not bad input: %T %v", err, err)
			}
			return
		}
		for _, p := range append(append([]string(nil), s.Patches...), s.Probes...) {
			if p != "" && !filepath.IsAbs(p) {
				t.Fatalf("path %q left relative to the working directory", p)
			}
		}
	})
}
