package report

import (
	"bytes"
	"testing"
)

// BenchmarkParse measures Parse throughput over all real test logs (boot logs included,
// as a console watcher sees them); go test -bench reports it as MB/s.
func BenchmarkParse(b *testing.B) {
	var all []byte
	for _, path := range cases(b) {
		all = append(all, readCase(b, path).log...)
	}
	b.SetBytes(int64(len(all)))
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		n = len(Parse(all))
	}
	b.ReportMetric(float64(n), "reports/op")
}

// BenchmarkContainsCrash: the watcher's per-chunk check, on logs without a crash.
func BenchmarkContainsCrash(b *testing.B) {
	tc := readCase(b, "testdata/linux/x86-clean.txt")
	chunk := bytes.Repeat(tc.log, 4)
	b.SetBytes(int64(len(chunk)))
	for i := 0; i < b.N; i++ {
		if ContainsCrash(chunk) {
			b.Fatal("crash in a clean log")
		}
	}
}

// BenchmarkSymbolize: time to symbolize one report against Debian's debug vmlinux
// (skipped without it), reported per report.
func BenchmarkSymbolize(b *testing.B) {
	tc := readCase(b, "testdata/linux/x86-paging.txt")
	r := Parse(tc.log)[0]
	s, err := NewSymbolizer(vmlinuxFor(b, r), r.Arch)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	frames := r.Frames
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Frames = append([]Frame(nil), frames...)
		if err := s.Symbolize(r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(frames)), "frames/report")
}

// BenchmarkSymbolizeCold: a fresh symbolizer for one report, as `reprolab report
// -vmlinux` pays it once: reading vmlinux's symbol table and llvm-symbolizer loading
// DWARF on its first query.
func BenchmarkSymbolizeCold(b *testing.B) {
	tc := readCase(b, "testdata/linux/x86-paging.txt")
	r := Parse(tc.log)[0]
	vmlinux := vmlinuxFor(b, r)
	frames := r.Frames
	for i := 0; i < b.N; i++ {
		s, err := NewSymbolizer(vmlinux, r.Arch)
		if err != nil {
			b.Fatal(err)
		}
		r.Frames = append([]Frame(nil), frames...)
		if err := s.Symbolize(r); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
