//go:build linux

package main

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadAll loads a real module list with a loader that takes time and records what it
// saw: every early module in list order, then the gate, then the late ones; every module only after its
// dependencies; independent late modules side by side; failures counted, not fatal.
func TestLoadAll(t *testing.T) {
	f, err := os.Open("testdata/modules-debian-amd64")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mods, err := readModuleList(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 19 {
		t.Fatalf("read %d modules, want 19", len(mods))
	}
	var (
		mu         sync.Mutex
		loaded     = map[string]bool{}
		order      []string
		running    int
		maxRunning int
		gated      bool
	)
	byPath := map[string]kmod{}
	for _, m := range mods {
		byPath[m.path] = m
	}
	load := func(p string) error {
		mu.Lock()
		for _, d := range byPath[p].deps {
			if !loaded[d] {
				t.Errorf("%s loaded before its dependency %s", p, d)
			}
		}
		if !byPath[p].early && !gated {
			t.Errorf("late %s loaded before the gate opened", p)
		}
		order = append(order, p)
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		loaded[p] = true
		mu.Unlock()
		if p == "crc16.ko" {
			return errors.New("no such device")
		}
		return nil
	}
	res := loadAll(mods, load, func() {
		mu.Lock()
		defer mu.Unlock()
		gated = true
		for _, m := range mods {
			if m.early != loaded[m.path] {
				t.Errorf("gate with %s loaded=%v", m.path, loaded[m.path])
			}
		}
	})
	if !gated {
		t.Error("the late modules did not wait for the gate")
	}
	if res.loaded != 18 || res.failed != 1 {
		t.Errorf("loaded %d failed %d, want 18 and 1", res.loaded, res.failed)
	}
	if got := strings.Join(order[:6], " "); got != "virtio_ring.ko virtio.ko virtio_pci_legacy_dev.ko virtio_pci_modern_dev.ko virtio_pci.ko virtio_console.ko" {
		t.Errorf("early modules loaded as %s", got)
	}
	if maxRunning < 3 {
		t.Errorf("at most %d modules loaded at once; the late ones are independent enough for more", maxRunning)
	}
	// 6 early ones in a row, then the late ones in at most 2 more rounds (dm-crypt after
	// dm-mod, ext4 after jbd2...), each 20 ms.
	if res.total > 6*20*time.Millisecond+3*20*time.Millisecond+200*time.Millisecond {
		t.Errorf("loading took %v: the late modules did not load in parallel", res.total)
	}
	if res.early < 6*20*time.Millisecond || res.early > res.total {
		t.Errorf("early phase %v of %v", res.early, res.total)
	}
}

func TestReadModuleListErrors(t *testing.T) {
	for _, in := range []string{"virtio.ko\n", "soon virtio.ko\n", "early\n"} {
		if _, err := readModuleList(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), modulesList+":1") {
			t.Errorf("%q: err = %v, want one naming %s:1", in, err, modulesList)
		}
	}
}
