package report

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestKallsymsHost reads this machine's own /proc/kallsyms (real addresses as root) and
// names addresses inside known functions.
func TestKallsymsHost(t *testing.T) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	syms, err := ParseKallsyms(f)
	if err != nil {
		t.Skipf("host kallsyms unusable (not root?): %v", err)
	}
	f2, _ := os.Open("/proc/kallsyms")
	defer f2.Close()
	sc := bufio.NewScanner(f2)
	checked := 0
	for sc.Scan() && checked < 200 {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || (fs[1] != "T" && fs[1] != "t") {
			continue
		}
		a, _ := strconv.ParseUint(fs[0], 16, 64)
		fr, ok := syms.Lookup(a)
		if !ok || fr.Off != 0 {
			t.Errorf("%s at %x → %+v %v", fs[2], a, fr, ok)
			continue
		}
		// Aliases share an address; any of them is a right name.
		if fr.Size > 1 {
			if in, ok := syms.Lookup(a + 1); !ok || in.Func != fr.Func || in.Off != 1 {
				t.Errorf("%x+1 → %+v", a, in)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no text symbols checked")
	}
	if _, ok := syms.Lookup(1); ok {
		t.Error("address 1 named")
	}
}

func TestKallsymsUnprivileged(t *testing.T) {
	_, err := ParseKallsyms(strings.NewReader("0000000000000000 T _text\n0000000000000000 t do_one_initcall\n"))
	if err == nil || !strings.Contains(err.Error(), "CAP_SYSLOG") {
		t.Errorf("zeroed listing: %v", err)
	}
}
