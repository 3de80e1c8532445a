package spec

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadSpecs: each testdata file states on its first line the error it must produce.
func TestBadSpecs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 8 {
		t.Fatalf("only %d bad specs in testdata", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := firstLineAfter(t, f, "# error: ")
			_, err := LoadReproducer(f)
			if err == nil {
				t.Fatalf("loaded without error, want %q", want)
			}
			if !strings.Contains(err.Error(), f) {
				t.Errorf("error does not name the file: %v", err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, want)
			}
		})
	}
}

func firstLineAfter(t *testing.T, path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	line, ok := strings.CutPrefix(sc.Text(), prefix)
	if !ok {
		t.Fatalf("%s: first line must be %q<expected error>", path, prefix)
	}
	return line
}

// TestShippedReproducers loads every reproducer in the repository: a shipped spec that does
// not load is a bug.
func TestShippedReproducers(t *testing.T) {
	specs, _ := filepath.Glob("../../reproducers/*/repro.yaml")
	if len(specs) == 0 {
		t.Fatal("no shipped reproducers found")
	}
	for _, p := range specs {
		if _, err := LoadReproducer(p); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestSeedSpec(t *testing.T) {
	r, err := LoadReproducer("../../reproducers/memcg-writeback-null/repro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r.Guest.CPUs != 2 || r.Guest.Memory.MB() != 256 {
		t.Errorf("guest %d CPUs %d MiB, want the hand-measured 2 CPUs 256 MiB", r.Guest.CPUs, r.Guest.Memory.MB())
	}
	var cmds []string
	for _, s := range r.Setup {
		cmds = append(cmds, s.Command())
	}
	all := strings.Join(cmds, "\n")
	for _, want := range []string{"reprolab-agent dmcrypt-swap serial:swap", "reprolab-agent mount-ext4 serial:data /mnt/ext4", "reprolab-agent fill-tmpfs /mnt/fill 200 226", "setsid sh -c 'while :; do cat /mnt/fill/fill.*"} {
		if !strings.Contains(all, want) {
			t.Errorf("setup commands lack %q:\n%s", want, all)
		}
	}
	if !strings.Contains(r.Run, "bs=1M count=100") {
		t.Errorf("run %q is not the seed's dd loop", r.Run)
	}
	if r.Budget.IterationTimeout.Std() != 3*time.Minute {
		t.Errorf("iteration timeout %s", r.Budget.IterationTimeout.Std())
	}
	for title, want := range map[string]bool{
		"BUG: unable to handle kernel NULL pointer dereference in test_clear_page_writeback": true,
		"kernel panic: sysrq triggered crash":                                                false,
	} {
		if got := r.Reproduces(title); got != want {
			t.Errorf("Reproduces(%q) = %v, want %v", title, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"256M": 256 << 20, "1G": 1 << 30, "4096K": 4 << 20, "512": 512, "2g": 2 << 30, "1T": 1 << 40} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-1M", "1P", "1.5G", "9999999999T"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}
