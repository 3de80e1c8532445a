package repro

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/hostload"
)

// Outcome is how a run ended. Exactly one per run.
type Outcome string

// Outcomes. Only Crashed is a reproduction; BootFailed blames the kernel under test but is
// not a crash; InfraError blames the lab or the host and says nothing about the kernel.
const (
	Crashed     Outcome = "crashed"
	Hung        Outcome = "hung"
	Survived    Outcome = "survived"
	BootFailed  Outcome = "boot-failed"
	InfraError  Outcome = "infra-error"
	Interrupted Outcome = "interrupted"
	Running     Outcome = "running" // meta.json of a run still in progress (or killed)
)

// ExitCode maps an outcome to reprolab's documented exit status.
func (o Outcome) ExitCode() int {
	switch o {
	case Survived:
		return 0
	case Crashed:
		return 1
	case InfraError:
		return 3
	case Hung:
		return 4
	case BootFailed:
		return 5
	case Interrupted:
		return 130
	}
	return 3
}

// Crash summarises one crash report found on the console.
type Crash struct {
	Title     string `json:"title"`
	Type      string `json:"type"`
	Signature string `json:"signature"`
	Corrupted bool   `json:"corrupted,omitempty"`
	File      string `json:"file"` // report file, relative to the run dir
}

// Result is everything a run produced; it is also meta.json.
type Result struct {
	RunID       string  `json:"run_id"`
	Dir         string  `json:"-"`
	Outcome     Outcome `json:"outcome"`
	Error       string  `json:"error,omitempty"`
	Arch        string  `json:"arch"`
	Accel       string  `json:"accel,omitempty"`
	Kernel      string  `json:"kernel"`
	KernelSHA   string  `json:"kernel_sha256,omitempty"`
	Vmlinux     string  `json:"vmlinux,omitempty"`
	Modules     string  `json:"modules,omitempty"`
	Cmdline     string  `json:"cmdline"`
	Spec        string  `json:"spec"`
	SpecName    string  `json:"spec_name"`
	CPUs        int     `json:"cpus"`
	MemoryMB    int     `json:"memory_mb"`
	Iterations  int     `json:"iterations"`                // completed iterations
	CrashedIter int     `json:"crash_iteration,omitempty"` // iteration running when the crash came (0 = during boot/setup)
	Budget      struct {
		Iterations int     `json:"iterations,omitempty"`
		Seconds    float64 `json:"seconds,omitempty"`
	} `json:"budget"`
	Reproduced bool    `json:"reproduced"` // crashed with a title the spec expects
	Crashes    []Crash `json:"crashes,omitempty"`
	Vmcore     string  `json:"vmcore,omitempty"`
	// Backtraces is crash(8)'s `bt -a` on the vmcore: every CPU's active task.
	Backtraces string `json:"backtraces,omitempty"`
	// BacktracesFrom says how: "crash(8) bt -a", or on arm64 without it "registers +
	// frame pointers" (QEMU's vCPU registers and a walk of the stopped guest's stacks).
	BacktracesFrom string `json:"backtraces_from,omitempty"`
	// Events are guest events during the loop that are neither crashes nor host faults
	// (the OOM killer), each with its report file.
	Events []Event `json:"events,omitempty"`
	// Hang is what every CPU and blocked task was doing when the run hung (hang.txt).
	Hang *HangSummary `json:"hang,omitempty"`

	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished,omitempty"`
	BootSeconds  float64   `json:"boot_seconds,omitempty"`           // QEMU start → agent answers SSH
	KernelToInit float64   `json:"kernel_to_init_seconds,omitempty"` // kernel's own timestamp when /init started
	LoopSeconds  float64   `json:"loop_seconds,omitempty"`
	TimeToCrash  float64   `json:"time_to_crash_seconds,omitempty"` // from loop start
	Host         string    `json:"host"`
	QEMUArgs     []string  `json:"qemu_args,omitempty"`
	// Snapshot is "prepared" (this run booted, set up and saved the state) or "restored"
	// (it started from a saved state); empty for a plain fresh boot. Reseed says how the
	// restored guest's randomness and client key were renewed.
	BootEntry   string `json:"boot_entry,omitempty"` // "pvh": QEMU entered the uncompressed vmlinux
	Snapshot    string `json:"snapshot,omitempty"`
	SnapshotDir string `json:"snapshot_dir,omitempty"`
	Reseed      string `json:"reseed,omitempty"`
	// Timings is where every second went (see timings.go).
	Timings Timings `json:"timings"`
	// HostLoad is the host's load average when the run started and when it ended: a race's
	// rate changes several-fold with host load, so a rate is only comparable with its load.
	HostLoad    *hostload.Load `json:"host_load,omitempty"`
	HostLoadEnd *hostload.Load `json:"host_load_end,omitempty"`
}

// WriteMeta writes meta.json atomically and durably: a reader (or a resumed matrix) sees
// either the previous or the new state, never half a file, and never a finished run whose
// artifacts are not yet on disk (they are synced before this is called).
func (r *Result) WriteMeta() error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(r.Dir, "meta.json"), append(data, '\n'))
}

// ReadMeta loads a run's meta.json.
func ReadMeta(dir string) (*Result, error) {
	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	r.Dir = dir
	return &r, nil
}

func writeFileSync(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o644)
}
