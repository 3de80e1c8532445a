package nightly

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/reprolab/reprolab/lab/fault"
)

// FuzzLoad: any nightly.yaml bytes load or fail as bad input, never panic; a config that
// loads has trees and cells, positive runs and no negative durations.
// Run with: go test ./lab/nightly -run '^$' -fuzz FuzzLoad -fuzztime 30s
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	path := filepath.Join(f.TempDir(), "nightly.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			if !fault.IsInput(err) {
				t.Fatalf("not bad input: %v", err)
			}
			return
		}
		if len(c.Trees) == 0 || len(c.Cells) == 0 || c.Bisect.Duration < 0 || c.Bisect.MaxEnd < 0 {
			t.Fatalf("accepted an unusable config: %+v", c)
		}
		for _, cl := range c.Cells {
			if cl.Runs <= 0 || cl.Duration < 0 {
				t.Fatalf("accepted cell %+v", cl)
			}
		}
	})
}
