package probe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/reprolab/reprolab/lab/kbuild/kver"
	"github.com/reprolab/reprolab/lab/kbuild/treepath"
)

// FuzzParse: any probe spec bytes load or fail, never panic; a spec that loads names only
// files inside the tree, and inserting it into a small C file never panics either.
// Run with: go test ./lab/kbuild/probe -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	shipped, _ := filepath.Glob("../../../reproducers/*/probes/*.yaml")
	for _, p := range shipped {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	src := "static int f(int a)\n{\n\tint x = 0;\n\tif (a)\n\t\tx = g(a);\n\treturn x;\n}\n"
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, l := range append([]Location{s.Location}, variantLocations(s)...) {
			if l.File == "" {
				continue
			}
			if _, err := treepath.Clean(l.File); err != nil {
				t.Fatalf("accepted a file outside the tree: %q", l.File)
			}
		}
		if l, err := s.For(kver.Version{Major: 4, Minor: 11}); err == nil {
			_, _, _ = insert(src, s, l, kver.Version{Major: 4, Minor: 11})
		}
	})
}

func variantLocations(s *Spec) []Location {
	var out []Location
	for _, v := range s.Variants {
		out = append(out, v.Location)
	}
	return out
}
