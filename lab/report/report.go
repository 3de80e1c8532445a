// Package report finds kernel crash reports (oopses, BUGs, WARNINGs, panics, lockups,
// stalls, hung tasks, KASAN/UBSAN) in a guest's serial console, for x86-64 and arm64 and
// for both the 4.x and 6.x output formats, and turns each into a stable title and
// signature so the same bug seen on another run, CPU or arch is recognised as the same.
//
// The console is treated as bytes: it can contain several reports, lines from several
// CPUs interleaved, and output that stops mid-report because the guest died. Parse never
// fails; a report it could not make sense of is marked Corrupted with a reason.
//
// Each kind of report is a row of the rules table (rules.go): its start line, title
// format, the frames it skips, where the stack that names its culprit is (the faulting
// instruction then the call trace, the call trace only, the sanitizer's own line,
// lockdep's "at:" lines, the code a timer interrupt caught), alternative titles.
// Titles follow syzbot's ("KASAN: use-after-free Read in tty_release", "possible
// deadlock in rl_deadlock", "WARNING: refcount bug in X") and are read the way syzbot
// reads them: from the start line to the next report's start in the report's own
// printk context, naming the first frame there that is not one of the helpers syzbot's
// titles pass over (infraParts: sanitizer runtimes, reporting, allocators, locking,
// string and copy helpers, device-model teardown, ...) nor in the kind's skip list, nor
// an unreliable "? " frame; "in corrupted" when there is none. Stalls are named after
// the entry point of the looping code, hung tasks after what they wait on. Numbers,
// addresses and PIDs in a title become placeholders. TestExternalCorpus measures all
// this against an outside corpus of titled logs (REPROLAB_REPORT_CORPUS). Signatures
// hash the normalised title and the guilty frame's caller, so the same bug from another
// run, CPU, arch or kernel era matches (testdata/signatures.txt holds the real pairs).
//
// Symbolizer adds file:line and inlined frames from a vmlinux with DWARF; Symbolize
// never changes a report's title or signature. ParseBacktraces and CrashBacktraces read
// the crash utility's `bt` output for vmcores.
package report

import (
	"encoding/json"
	"io"
)

// Type classifies a report by its first line.
type Type string

// Report types. The set follows what kernel developers call these crashes.
const (
	NullDeref      Type = "NULL-deref"
	PagingRequest  Type = "paging-request"
	Bug            Type = "BUG"
	GPF            Type = "GPF"
	Warning        Type = "WARNING"
	Panic          Type = "panic"
	BadPageState   Type = "bad-page-state"
	SoftLockup     Type = "soft-lockup"
	HardLockup     Type = "hard-lockup"
	RCUStall       Type = "rcu-stall"
	HungTask       Type = "hung-task"
	KASAN          Type = "KASAN"
	UBSAN          Type = "UBSAN"
	DivideError    Type = "divide-error"
	InvalidOpcode  Type = "invalid-opcode"
	ListCorruption Type = "list-corruption"
	Oops           Type = "oops"
	KMSAN          Type = "KMSAN"
	KCSAN          Type = "KCSAN"
	KFENCE         Type = "KFENCE"
	Lockdep        Type = "lockdep"
	MemoryLeak     Type = "memory-leak"
	AtomicSleep    Type = "atomic-sleep"
	Refcount       Type = "refcount"
	Usercopy       Type = "usercopy"
	StackOverflow  Type = "stack-overflow"
	NetdevLeak     Type = "netdev-leak"
	Reboot         Type = "reboot"
	Unknown        Type = "unknown"
)

// Frame is one entry of a stack trace.
type Frame struct {
	Func    string // symbol name, "" for an unresolved raw PC
	Off     uint64 // offset into Func
	Size    uint64 // size of Func
	Module  string // "" for vmlinux
	PC      uint64 // raw address when the kernel printed one (4.x, arm64 4.x), else 0
	File    string // filled by Symbolizer
	Line    int    // filled by Symbolizer
	Inlined bool   // an inlined frame expanded by Symbolizer; it precedes its caller
	// Unreliable marks 6.x "? func" entries: stale return addresses on the stack that
	// the unwinder did not prove are part of the call chain.
	Unreliable bool
}

// Report is one crash report found in a console log.
type Report struct {
	Type  Type
	Title string
	// AltTitles are other names syzbot may give the same bug ("bad-access in X" for a
	// NULL deref, a paging request and a GPF alike), for matching across kinds.
	AltTitles []string
	// Signature is a hex SHA-256 prefix over the normalised title and the top guilty
	// frames (function names only), so that addresses, offsets, CPU numbers, PIDs and
	// timestamps do not change it.
	Signature string
	// Start and End are byte offsets of the report in the log given to Parse:
	// log[Start:End] is the report text.
	Start, End int
	Text       []byte
	// Frames is the crashing task's stack, innermost first, as printed (including
	// unreliable "?" frames, flagged). Guilty is the index in Frames of the frame the
	// title names (-1 when none): the first frame that is not generic machinery.
	Frames          []Frame
	Guilty          int
	Corrupted       bool
	CorruptedReason string
	CPU             int    // CPU the report was printed for, -1 if unknown
	PID             int    // -1 if unknown
	Comm            string // crashing task's name
	Kernel          string // kernel release from the CPU: line
	Arch            string // "x86_64" or "arm64", from the register dump
	// Others holds backtraces of other CPUs/tasks printed inside the report
	// (NMI backtraces, "Showing all locks", hung-task lists), as raw text.
	Others []string

	complete  bool
	sigTitle  string // the title the signature hashes (rule.sigTitle)
	nestedAt  int    // line index where an interleaved report starts inside this one
	faultSite bool   // Frames[0] is the faulting instruction (RIP/pc), not a return address
}

// Parse returns every report in log, in order.
func Parse(log []byte) []*Report {
	return parse(log)
}

// ContainsCrash reports cheaply whether log contains the start of any report.
func ContainsCrash(log []byte) bool {
	_, ok := findStart(log, 0)
	return ok
}

// Complete reports whether the first report starting in log has ended: an end marker
// ("---[ end trace", a finished panic), the guest's shutdown, or a few lines of
// unrelated output follow it. A live console watcher calls it to know it holds the whole
// oops. Reports without an end marker (soft lockups, RCU stalls, hung tasks, bad page
// state) are complete only once other output follows, so a watcher should also stop
// waiting after a quiet spell.
func Complete(log []byte) bool {
	return complete(log)
}

// WriteTo writes a human-readable report: title, type, signature, the raw text and the
// (symbolized) trace.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	return r.writeTo(w)
}

// MarshalJSON writes Text as a string (not base64) so JSON reports are readable.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		*plain
		Text string
	}{(*plain)(r), string(r.Text)})
}
