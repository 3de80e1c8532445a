package qemu

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Accel selects how QEMU executes the guest.
type Accel string

// Accelerators. Auto tries KVM and falls back to TCG when KVM is absent or does not
// actually run a guest.
const (
	Auto Accel = "auto"
	KVM  Accel = "kvm"
	TCG  Accel = "tcg"
)

// ParseAccel validates a --accel value.
func ParseAccel(s string) (Accel, error) {
	switch Accel(s) {
	case Auto, KVM, TCG:
		return Accel(s), nil
	}
	return "", fmt.Errorf("unknown accelerator %q: use auto, kvm or tcg", s)
}

// KVMWindow is how long a KVM guest gets to print its first console byte before auto
// decides KVM is unusable. A kernel prints within ~1 s of QEMU start under KVM and within
// ~2 s even under TCG, so silence after this long means the accelerator, not the kernel.
// (On some hosts /dev/kvm exists but guests hang in decompression, or "-cpu host" aborts
// with "failed to set MSR": both look exactly like this.)
var KVMWindow = 8 * time.Second

// kvmOpenable reports whether /dev/kvm can be opened read-write, with the reason if not.
func kvmOpenable() (bool, string) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Sprintf("/dev/kvm: %v", err)
	}
	unix.Close(fd)
	return true, ""
}

// verdict is what the lab learned about KVM on this host, cached on disk so that only the
// first run on a host with a broken KVM pays the detection window.
type verdict struct {
	Usable bool      `json:"usable"`
	Reason string    `json:"reason"`
	When   time.Time `json:"when"`
}

// verdictTTL bounds how long a cached "KVM is broken" is trusted: a host reboot or module
// change may fix it.
const verdictTTL = 24 * time.Hour

func verdictPath(cacheDir string, arch Arch) string {
	h := sha256.New()
	uname := unix.Utsname{}
	_ = unix.Uname(&uname)
	h.Write(uname.Release[:])
	h.Write(uname.Version[:])
	if out, err := exec.Command(arch.Binary(), "--version").Output(); err == nil {
		h.Write(out)
	}
	return filepath.Join(cacheDir, "accel", "kvm-"+string(arch)+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".json")
}

func loadVerdict(cacheDir string, arch Arch) (verdict, bool) {
	if cacheDir == "" {
		return verdict{}, false
	}
	data, err := os.ReadFile(verdictPath(cacheDir, arch))
	if err != nil {
		return verdict{}, false
	}
	var v verdict
	if json.Unmarshal(data, &v) != nil || time.Since(v.When) > verdictTTL {
		return verdict{}, false
	}
	return v, true
}

func saveVerdict(cacheDir string, arch Arch, v verdict) {
	if cacheDir == "" {
		return
	}
	p := verdictPath(cacheDir, arch)
	if os.MkdirAll(filepath.Dir(p), 0o755) != nil {
		return
	}
	data, _ := json.Marshal(v)
	_ = os.WriteFile(p, data, 0o644)
}

// initialAccel is the accelerator to try first and, for Auto, whether a fallback is allowed.
func initialAccel(req Accel, arch Arch, cacheDir string, say func(string)) (Accel, error) {
	switch req {
	case TCG:
		return TCG, nil
	case KVM:
		if !arch.native() {
			return "", fmt.Errorf("--accel kvm: %s guests cannot use KVM on a %s host; use --accel tcg", arch, hostArch())
		}
		if ok, why := kvmOpenable(); !ok {
			return "", fmt.Errorf("--accel kvm: %s; load the kvm module and check permissions, or use --accel tcg", why)
		}
		return KVM, nil
	}
	if !arch.native() {
		return TCG, nil
	}
	if ok, why := kvmOpenable(); !ok {
		say("KVM not available (" + why + "): using TCG")
		return TCG, nil
	}
	if v, ok := loadVerdict(cacheDir, arch); ok && !v.Usable {
		say(fmt.Sprintf("KVM found unusable on this host at %s (%s): using TCG", v.When.Format(time.RFC3339), v.Reason))
		return TCG, nil
	}
	return KVM, nil
}

func hostArch() string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		return "this"
	}
	return strings.TrimSpace(string(out))
}

// KVMVerdict returns what an earlier run learned about KVM for arch on this host: known is
// false when no run has tried it recently.
func KVMVerdict(cacheDir string, arch Arch) (usable bool, reason string, known bool) {
	v, ok := loadVerdict(cacheDir, arch)
	return v.Usable, v.Reason, ok
}
