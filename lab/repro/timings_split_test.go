package repro

import (
	"math"
	"testing"
)

func TestSplitBeforeClock(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		beforeClock, entered float64
		firmware, early      float64
	}{
		{"arm64: entered early, clock late", 0.44, 0.12, 0.12, 0.32},
		{"entry not seen", 0.44, -1, 0.44, 0},
		{"entry seen after the clock started", 0.10, 0.15, 0.10, 0},
		{"entered at QEMU start", 0.30, 0, 0, 0.30},
		{"nothing before the clock", 0, 0.05, 0, 0},
	} {
		fw, early := splitBeforeClock(tc.beforeClock, tc.entered)
		if math.Abs(fw-tc.firmware) > 1e-9 || math.Abs(early-tc.early) > 1e-9 {
			t.Errorf("%s: firmware %.3f early %.3f, want %.3f %.3f", tc.name, fw, early, tc.firmware, tc.early)
		}
	}
}
