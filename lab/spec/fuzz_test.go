package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseReproducer: any bytes must load or fail with a message, never panic, and a spec
// that loads holds only values a run can use (a safe name, 1–64 vCPUs, a sane memory size,
// a positive iteration timeout). Seeds: testdata/fuzz plus every shipped and bad spec.
// Run with: go test ./lab/spec -fuzz FuzzParseReproducer -fuzztime 30s
func FuzzParseReproducer(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	shipped, _ := filepath.Glob("../../reproducers/*/repro.yaml")
	for _, p := range append(files, shipped...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReproducer(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if ValidName(r.Name) != nil || r.Guest.CPUs < 1 || r.Guest.CPUs > MaxCPUs ||
			r.Guest.Memory.MB() < 64 || int64(r.Guest.Memory) > MaxMemory || r.Budget.IterationTimeout <= 0 ||
			r.Budget.Iterations < 0 || r.Budget.Duration < 0 || (r.Budget.Iterations == 0 && r.Budget.Duration == 0) {
			t.Fatalf("accepted an unusable spec: %+v", r)
		}
		for _, s := range r.Setup {
			_ = s.Command()
		}
	})
}
