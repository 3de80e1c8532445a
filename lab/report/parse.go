package report

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// oopsKind describes one way a report starts: the first line's pattern, the type, and
// how to make the title. Titles use the wording kernel developers know from syzbot and
// LKML, made the same across kernel eras and arches: 6.x x86's "BUG: kernel NULL pointer
// dereference, address:" and arm64's "Unable to handle kernel NULL pointer dereference at
// virtual address" both become "BUG: unable to handle kernel NULL pointer dereference in
// FUNC", so one bug seen on both gets one title and one signature.
type oopsKind struct {
	re    *regexp.Regexp
	typ   Type
	title string // "%s" is replaced by the guilty function; "$1" by the first submatch
	// noFrames: the report carries no stack of its own worth naming (a bare panic
	// message); a missing trace does not make it corrupted.
	noFrames bool
	// fromLine: take the title's function from the first line itself (WARNING prints
	// "at file:line func+off/size"), falling back to the guilty frame.
	fromLine bool
}

var kinds = []oopsKind{
	// KASAN and UBSAN first: their first line also starts with "BUG:"/"UBSAN:".
	{re: regexp.MustCompile(`^BUG: KASAN: ([a-z-]+) in `), typ: KASAN, title: "KASAN: $1 $access in %s"},
	{re: regexp.MustCompile(`^UBSAN: ([a-z-]+) in `), typ: UBSAN, title: "UBSAN: $1 in %s"},
	{re: regexp.MustCompile(`^(?:BUG: kernel NULL pointer dereference, address|BUG: unable to handle kernel NULL pointer dereference at|Unable to handle kernel NULL pointer dereference at virtual address)`),
		typ: NullDeref, title: "BUG: unable to handle kernel NULL pointer dereference in %s"},
	{re: regexp.MustCompile(`^(?:BUG: unable to handle page fault for address|BUG: unable to handle kernel paging request at|Unable to handle kernel paging request at virtual address|Unable to handle kernel (?:read|write|execute) from)`),
		typ: PagingRequest, title: "BUG: unable to handle kernel paging request in %s"},
	{re: regexp.MustCompile(`^general protection fault`), typ: GPF, title: "general protection fault in %s"},
	{re: regexp.MustCompile(`^(?:list_add|list_del|list_add_rcu) corruption`), typ: ListCorruption, title: "BUG: corrupted list in %s"},
	{re: regexp.MustCompile(`^kernel BUG at `), typ: Bug, title: "kernel BUG in %s"},
	{re: regexp.MustCompile(`^BUG: Bad page state`), typ: BadPageState, title: "BUG: Bad page state in %s"},
	{re: regexp.MustCompile(`^BUG: Bad page map`), typ: BadPageState, title: "BUG: Bad page map in %s"},
	{re: regexp.MustCompile(`^(?:watchdog: |NMI watchdog: )?BUG: soft lockup`), typ: SoftLockup, title: "BUG: soft lockup in %s"},
	{re: regexp.MustCompile(`^(?:NMI watchdog: |watchdog: )?Watchdog detected hard LOCKUP`), typ: HardLockup, title: "watchdog: hard lockup in %s"},
	{re: regexp.MustCompile(`^(?:rcu: )?INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected (?:stall|stalls|expedited stalls)`), typ: RCUStall, title: "INFO: rcu detected stall in %s"},
	{re: regexp.MustCompile(`^INFO: task .+ blocked for more than \d+ seconds`), typ: HungTask, title: "INFO: task hung in %s"},
	{re: regexp.MustCompile(`^WARNING: `), typ: Warning, title: "WARNING in %s", fromLine: true},
	{re: regexp.MustCompile(`^divide error: `), typ: DivideError, title: "divide error in %s"},
	{re: regexp.MustCompile(`^invalid opcode: `), typ: InvalidOpcode, title: "invalid opcode in %s"},
	{re: regexp.MustCompile(`^Internal error: Oops - (?:Undefined instruction|undefined instruction)`), typ: InvalidOpcode, title: "invalid opcode in %s"},
	{re: regexp.MustCompile(`^Internal error: Oops - BUG`), typ: Bug, title: "kernel BUG in %s"},
	{re: regexp.MustCompile(`^Internal error: `), typ: Oops, title: "Oops in %s"},
	{re: regexp.MustCompile(`^BUG: (?:sleeping function called from invalid context|scheduling while atomic|spinlock|workqueue lockup|using smp_processor_id)`), typ: Bug, title: "BUG: $0 in %s"},
	{re: regexp.MustCompile(`^Kernel panic - not syncing: (.*)`), typ: Panic, title: "kernel panic: $1", noFrames: true},
}

// quick holds substrings at least one of which every start line contains, so most lines
// are rejected with a few Contains calls before any regexp runs.
var quick = []string{"BUG", "Unable to handle", "general protection", "corruption", "WARNING: ",
	"LOCKUP", "INFO: ", "error: ", "opcode: ", "Internal error", "Kernel panic", "UBSAN: "}

var quickBytes = func() [][]byte {
	var b [][]byte
	for _, q := range quick {
		b = append(b, []byte(q))
	}
	return b
}()

func matchStart(text string) (int, []string) {
	hit := false
	for _, q := range quick {
		if strings.Contains(text, q) {
			hit = true
			break
		}
	}
	if !hit {
		return -1, nil
	}
	t := strings.TrimLeft(text, " \t")
	for i := range kinds {
		if m := kinds[i].re.FindStringSubmatch(t); m != nil {
			return i, m
		}
	}
	return -1, nil
}

// endRe matches the line that closes a report. A panic that follows an oops closes with
// "---[ end Kernel panic"; the oops itself with "---[ end trace".
var endRe = regexp.MustCompile(`---\[ end (?:trace|Kernel panic)`)

// continues reports whether a start line inside an already open report is part of it
// rather than a new report: "invalid opcode" after "kernel BUG at", "Internal error"
// after arm64's "Unable to handle", the panic that an oops causes, the "kernel BUG at
// lib/list_debug.c" after "list_add corruption", and so on.
func continues(open, next *oopsKind, sinceStart int) bool {
	switch next.typ {
	case Panic:
		return true // a panic always ends whatever was being reported
	case InvalidOpcode:
		// x86 BUG() is ud2: "kernel BUG at" is followed by "invalid opcode".
		return open.typ == Bug || open.typ == ListCorruption || open.typ == Warning
	case Bug:
		if strings.Contains(next.re.String(), "Internal error") {
			// arm64 BUG(): "kernel BUG at" then "Internal error: Oops - BUG".
			return open.typ == Bug || open.typ == ListCorruption
		}
		// "list_add corruption." is followed by "kernel BUG at lib/list_debug.c".
		return open.typ == ListCorruption && sinceStart < 4
	case Oops:
		// arm64 prints the fault description, then "Mem abort info", ESR decoding and
		// page-table walk, then "Internal error: Oops:" (about 12 lines on 6.x).
		switch open.typ {
		case NullDeref, PagingRequest, Bug, ListCorruption:
			return sinceStart < 40
		}
	}
	return false
}

func findStart(log []byte, from int) (int, bool) {
	// Most console chunks hold no start marker at all: a few vectorised substring
	// searches settle that without cutting the chunk into lines.
	hit := false
	for _, q := range quickBytes {
		if bytes.Contains(log[from:], q) {
			hit = true
			break
		}
	}
	if !hit {
		return -1, false
	}
	lines := splitLines(log[from:])
	timed := firstTimed(lines) < len(lines)
	for i := range lines {
		if k, _ := kernelStartAt(lines, i, timed); k >= 0 {
			return from + lines[i].start, true
		}
	}
	return -1, false
}

// kernelStart is matchStart for lines the kernel printed. When a console shows printk
// timestamps (any line of what is parsed has one), a line without one came from user space (the reproducer, init,
// cryptsetup's "WARNING: ...") and starts no report, whatever it says. Consoles without
// timestamps (printk.time=0) are taken as they are.
func kernelStart(l line, timed bool) (int, []string) {
	if timed && l.ts == "" {
		return -1, nil
	}
	return matchStart(l.text)
}

// kernelStartAt is kernelStart for lines[i] with a look at the next line. Without
// timestamps nothing tells a kernel "WARNING:" from a tool's, so the start must be
// followed by a line only a kernel report prints (registers, "Modules linked in", a
// call trace, ...). A live watcher thus sees such a report one line later.
func kernelStartAt(lines []line, i int, timed bool) (int, []string) {
	k, m := kernelStart(lines[i], timed)
	if k < 0 || lines[i].ts != "" {
		return k, m
	}
	for j := i + 1; j < len(lines) && j <= i+3; j++ {
		if strings.TrimSpace(lines[j].text) == "" {
			continue
		}
		if kernelOnlyRe.MatchString(lines[j].text) {
			return k, m
		}
		if _, ok := matchStartOK(lines[j].text); !ok || j > i+1 {
			break
		}
		// Another start (arm64's "Internal error" after "Unable to handle"): look on.
	}
	return -1, nil
}

func matchStartOK(text string) (int, bool) {
	k, _ := matchStart(text)
	return k, k >= 0
}

// kernelOnlyRe matches lines that only a kernel report prints.
var kernelOnlyRe = regexp.MustCompile(`^\s*(?:Modules linked in:|CPU: \d+ PID: \d+|Hardware name:|Call Trace:|Call trace:|RIP: [0-9a-f]{4}:|IP: |#PF: |Oops: |PGD |Mem abort info:|pc : |PC is at |Internal error: |invalid opcode: |rcu: |\s*\d+-\.\.\.|\(detected by|\s*Tainted: |"echo 0 > /proc/sys/kernel/hung_task_timeout_secs"|task:\S+\s+state:|page:[0-9a-f]+ |Kernel Offset:|---\[ end |\[<[0-9a-f]+>\] |[A-Za-z0-9_.$]+\+0x[0-9a-f]+/0x[0-9a-f]+)`)

// bodyRe matches lines that belong to a report's body even though they do not start
// one: stack frames, register dumps and the fixed headers printed around them. The
// extent of a report without an end marker (lockups, stalls, hung tasks, bad pages) is
// its last body line before unrelated output.
var bodyRe = regexp.MustCompile(`^\s*(?:` +
	`\? |\[<[0-9a-f]+>\]|[A-Za-z0-9_.$]+\+0x[0-9a-f]+/0x[0-9a-f]+|` + // frames
	`<(?:/?IRQ|/?TASK|/?NMI|/?SOFTIRQ|EOI)>|` +
	`(?:R[A-Z0-9]{1,2}|CS|DS|FS|GS|CR0|CR2|x\d+|pc|lr|sp|pstate|ORIG_RAX|EFLAGS)\s*:|` +
	`(?:RIP|RSP|Code|Call Trace|Call trace|Modules linked in|CPU|Hardware name|Workqueue|task|Process|Stack|Exception stack|PGD|pgd|Mem abort info|Data abort info|ESR|EC|SET|FnV|EA|S1PTW|CM|WnR|ISV|user pgd|swapper pgd|\[[0-9a-f]+\]|Kernel Offset|PHYS_OFFSET|CPU features|Memory Limit|page|flags|raw|head|page dumped because|page_owner|Disabling lock debugging|Oops|#PF|invalid opcode|Internal error|Tainted|NMI backtrace|Sending NMI|rcu|\(detected by|\(t=|\s*\d+-\.{3}|INFO: lockdep|Showing all locks|irq event stamp|hardirqs|softirqs|sysrq|Kernel panic|---\[ end|DR[0-7]|PKRU|note|Call Trace|Fixing recursive fault|Dumping ftrace|\s+\(ftrace|IP|hung_task|"echo 0 > /proc/sys/kernel/hung_task_timeout_secs"|task:|irq|Rebooting|SMP|Kernel|Preemption|Showing busy|Unable to handle|list_|kernel BUG|WARNING|BUG|general protection|divide error|KASAN|UBSAN|Read of size|Write of size|Memory state|Allocated by|Freed by|The buggy address|which belongs to the cache|[0-9a-f]{4}:|>?[0-9a-f]{16}:|\^|={20,})` +
	`)`)

func isBody(text string) bool {
	return bodyRe.MatchString(text)
}

// parse splits log into reports. A report runs from its start line to the first of: an
// end marker (plus a directly following panic and its own end), the next start line
// that is not a continuation, or the last body line before maxGap unrelated lines.
func parse(log []byte) []*Report {
	lines := splitLines(log)
	var reports []*Report
	prevLast := -1
	timedFrom := firstTimed(lines)
	for i := 0; i < len(lines); {
		k, m := kernelStartAt(lines, i, timedFrom < len(lines))
		if k < 0 {
			i++
			continue
		}
		first, last, complete, nested := extentNested(lines, i, k)
		if len(reports) > 0 && first <= prevLast && !reports[len(reports)-1].Corrupted {
			first = prevLast + 1 // a "cut here" banner is never part of two reports
		}
		prevLast = last
		r := build(log, lines[first:last+1], &kinds[k], m)
		r.Start, r.End = lines[first].start, lines[last].end
		r.Text = log[r.Start:r.End]
		switch {
		case r.Corrupted:
		case !complete:
			// A live console caught mid-report, or a guest that died while printing:
			// the trace may lack the frames that matter.
			r.Corrupted, r.CorruptedReason = true, "truncated: the log ends inside the report"
		case last+1 < len(lines) && inTrace(lines[first:last+1]) && startsReport(lines, last+1, timedFrom < len(lines)):
			// Another CPU's report began while this one's stack was still printing;
			// what follows the cut cannot be told apart from the other report.
			r.Corrupted, r.CorruptedReason = true, "interrupted: another report starts inside this one's stack trace"
		}
		if nested >= 0 && !r.Corrupted {
			r.Corrupted, r.CorruptedReason = true, "interleaved: another report starts inside this one"
		}
		if len(reports) > 0 && reports[len(reports)-1].nestedAt == i && !r.Corrupted {
			r.Corrupted, r.CorruptedReason = true, "interleaved: starts inside another report"
		}
		// x86 "invalid opcode: 0000 [#2]" (or arm64 "Internal error: ... [#2]") on its
		// own, after interleaved reports, is the second half of one of them.
		if (kinds[k].typ == InvalidOpcode || kinds[k].typ == Oops) && !r.Corrupted && laterOops(lines[i].text) && anyInterleaved(reports) {
			r.Corrupted, r.CorruptedReason = true, "interleaved: continues an earlier interleaved report"
		}
		r.complete = complete
		reports = append(reports, r)
		i = last + 1
		if nested >= 0 {
			r.nestedAt = nested
			i = nested
		}
	}
	return reports
}

// maxGap is how many consecutive unrelated lines end a report that has no end marker.
// Console lines from user space (the reproducer, init) interleave with an oops; a
// handful is tolerated, more means the kernel moved on.
const maxGap = 4

// shutdownRe matches the kernel's last words before the machine stops or reboots:
// nothing can follow, so an open report is complete.
var shutdownRe = regexp.MustCompile(`^(?:reboot: (?:Power down|Restarting system|System halted)|ACPI: PM: Preparing to enter system sleep state|Rebooting in \d+ seconds)`)

// extent finds the lines of the report starting at lines[i]. complete is false when the
// log ended while the report could still have been going on.
func extent(lines []line, i, k int) (first, last int, complete bool) {
	first, last, complete, _ = extentNested(lines, i, k)
	return first, last, complete
}

// extentNested is extent that also returns nested: the index of the first line that
// starts another report while this one had not yet printed its stack ("Call Trace:"),
// or -1. Two CPUs oopsing at once interleave their headers like that; the open report
// goes on past the foreign start line, and the parser resumes at nested for the other.
func extentNested(lines []line, i, k int) (first, last int, complete bool, nested int) {
	nested = -1
	sawTrace := false
	first, last = i, i
	// The "cut here" banner, the "list_add corruption" message and "Bad page state"
	// preamble belong to the report that follows them.
	// KASAN and UBSAN open with a line of "=" signs.
	for j := i - 1; j >= 0 && j >= i-2; j-- {
		if t := strings.TrimSpace(lines[j].text); strings.Contains(t, "------------[ cut here ]") || len(t) >= 20 && strings.Trim(t, "=") == "" {
			first = j
		}
	}
	gap := 0
	sawEnd := false
	timed := lines[i].ts != ""
	for j := i + 1; j < len(lines); j++ {
		text := lines[j].text
		if nk, _ := kernelStartAt(lines, j, timed); nk >= 0 {
			if sawEnd && kinds[nk].typ != Panic {
				return first, last, true, nested
			}
			if !continues(&kinds[k], &kinds[nk], j-i) {
				if sawTrace || nested >= 0 {
					return first, last, true, nested
				}
				nested = j
			}
			last, gap = j, 0
			continue
		}
		if t := strings.TrimSpace(text); strings.HasPrefix(t, "Call Trace:") || strings.HasPrefix(t, "Call trace:") {
			sawTrace = true
		}
		if endRe.MatchString(text) {
			last, gap = j, 0
			if strings.Contains(text, "end Kernel panic") {
				return first, last, true, nested
			}
			sawEnd = true
			continue
		}
		if shutdownRe.MatchString(text) {
			return first, last, true, nested
		}
		if isBody(text) {
			last, gap = j, 0
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		gap++
		if gap >= maxGap || (sawEnd && gap >= 2) {
			return first, last, true, nested
		}
	}
	// The log ended. A report that printed its end marker (or a panic, after which
	// nothing else runs) is whole; otherwise more could still come.
	return first, last, sawEnd || panicDone(lines[i:last+1]), nested
}

// panicDone reports whether ls hold a panic that finished printing: after the panic
// line (and its stack) the kernel prints "Kernel Offset:" (KASLR builds), "Rebooting in"
// (panic=N) or, since 4.17ish, "---[ end Kernel panic". After that nothing else comes.
func panicDone(ls []line) bool {
	panicked := false
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		if strings.HasPrefix(t, "Kernel panic - not syncing") {
			panicked = true
		} else if panicked && (strings.HasPrefix(t, "Kernel Offset:") || strings.HasPrefix(t, "Rebooting in")) {
			return true
		}
	}
	return false
}

var oopsCountRe = regexp.MustCompile(`\[#([2-9]|\d\d+)\]`)

func laterOops(text string) bool { return oopsCountRe.MatchString(text) }

func anyInterleaved(rs []*Report) bool {
	for _, r := range rs {
		if r.Corrupted && strings.HasPrefix(r.CorruptedReason, "interleaved") {
			return true
		}
	}
	return false
}

// firstTimed returns the index of the first line with a printk timestamp, or len(ls).
func firstTimed(ls []line) int {
	for i, l := range ls {
		if l.ts != "" {
			return i
		}
	}
	return len(ls)
}

func startsReport(lines []line, i int, timed bool) bool {
	k, _ := kernelStartAt(lines, i, timed)
	return k >= 0
}

// inTrace reports whether the last line of ls is a stack frame of an unfinished trace:
// a "Call Trace:" was opened and no closing line ("</TASK>", "Code:", end marker, a
// user-space "RIP: 0033") followed it.
func inTrace(ls []line) bool {
	open := false
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case strings.HasPrefix(t, "Call Trace:"), strings.HasPrefix(t, "Call trace:"):
			open = true
		case t == "</TASK>", strings.HasPrefix(t, "Code:"), strings.HasPrefix(t, "RIP: 0033"),
			strings.HasPrefix(t, "---["), strings.HasPrefix(t, "Kernel panic"):
			open = false
		}
	}
	if !open {
		return false
	}
	sm := frameRe.FindStringSubmatch(ls[len(ls)-1].text)
	// arm64 traces have no closing line: one that ends in a task's first frame
	// (user-space entry, kthread start, idle entry) is whole.
	return sm != nil && !rootRe.MatchString(sm[4])
}

// rootRe matches the outermost frames of a kernel stack: where a trace ends.
var rootRe = regexp.MustCompile(`^(?:el0t_64_sync|el0_sync|el0t_64_irq|ret_from_fork|kthread|__primary_switched|__secondary_switched|secondary_start_kernel|start_kernel|cpu_startup_entry|entry_SYSCALL_64_after_hwframe|entry_SYSCALL_64_fastpath|secondary_startup_64.*|start_secondary|x86_64_start_reservations|x86_64_start_kernel)$`)

// complete is Complete: the first report in log has ended.
func complete(log []byte) bool {
	lines := splitLines(log)
	timedFrom := firstTimed(lines)
	for i := range lines {
		if k, _ := kernelStartAt(lines, i, timedFrom < len(lines)); k >= 0 {
			_, _, c := extent(lines, i, k)
			return c
		}
	}
	return false
}

var (
	cpuLineRe = regexp.MustCompile(`^CPU: (\d+) PID: (\d+) Comm: (.+?) (?:Not tainted|Tainted: .*?)\s+(\S+) #`)
	// "[sh:95]" at the end of a soft lockup line, "INFO: task sh:95 blocked".
	lockupTaskRe = regexp.MustCompile(`CPU#(\d+) stuck for \d+s! \[(.+):(\d+)\]`)
	hungTaskRe   = regexp.MustCompile(`INFO: task (.+):(\d+) blocked`)
	warnLineRe   = regexp.MustCompile(`^WARNING: (?:CPU: (\d+) PID: (\d+) )?at (\S+) ([A-Za-z0-9_.$]+)\+0x`)
	// x86 "RIP: 0010:func+0x6e/0x2f0", 4.x "RIP: 0010:[<ffffffff8118a0ae>]  [<...>] func+0x..";
	// arm64 "pc : func+0x../0x..", 4.x arm64 "PC is at func+0x../0x..".
	// arm64 "lr : func+0x24/0x40 [mod]" (6.x) / "LR is at func+0x../0x.." (4.x).
	lrRe  = regexp.MustCompile(`^(?:lr : (?:\[<[0-9a-f]+>\] )?|LR is at )([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[(\S+)\])?`)
	ripRe = regexp.MustCompile(`^(?:RIP: [0-9a-f]{4}:(?:\[<([0-9a-f]+)>\]\s+(?:\[<[0-9a-f]+>\]\s+)?)?|pc : (?:\[<([0-9a-f]+)>\] )?|PC is at )([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[(\S+)\])?`)
	// A frame line: optional "? ", optional "[<addr>] ", func+off/size, optional [module].
	frameRe = regexp.MustCompile(`^\s*(\? )?(?:\[<([0-9a-f]+)>\] )?(\? )?([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[([^\]\s]+)\])?`)
)

func build(log []byte, ls []line, kind *oopsKind, m []string) *Report {
	r := &Report{Type: kind.typ, CPU: -1, PID: -1, Guilty: -1}
	var lineFunc string
	startText := ""
	for _, l := range ls {
		if k, _ := kernelStart(l, ls[0].ts != ""); k >= 0 {
			startText = strings.TrimSpace(l.text)
			break
		}
	}
	if sm := lockupTaskRe.FindStringSubmatch(startText); sm != nil {
		r.CPU, _ = strconv.Atoi(sm[1])
		r.Comm = sm[2]
		r.PID, _ = strconv.Atoi(sm[3])
	}
	if sm := hungTaskRe.FindStringSubmatch(startText); sm != nil {
		r.Comm = sm[1]
		r.PID, _ = strconv.Atoi(sm[2])
	}
	if sm := warnLineRe.FindStringSubmatch(startText); sm != nil {
		lineFunc = sm[4]
	}
	r.Frames, r.Others = frames(ls, r)
	if r.Arch == "" {
		r.Arch = archOf(r.Frames)
	}
	if len(r.Frames) == 0 && !kind.noFrames {
		r.Corrupted, r.CorruptedReason = true, "no stack trace"
	}
	if cpus := cpuHeaders(ls); cpus > 1 {
		r.Corrupted, r.CorruptedReason = true, "interleaved: lines of several CPUs' reports"
	}
	if kind.fromLine && lineFunc != "" {
		for i, f := range r.Frames {
			if !f.Unreliable && f.Func == lineFunc {
				r.Guilty = i
				break
			}
		}
	}
	if r.Guilty < 0 {
		r.Guilty = guilty(r.Frames, kind.typ)
	}
	fn := ""
	if r.Guilty >= 0 {
		fn = cleanFunc(r.Frames[r.Guilty].Func)
	} else if lineFunc != "" {
		fn = cleanFunc(lineFunc)
	}
	title := kind.title
	if kind.typ == KASAN {
		// "Read of size 1 at addr ..." / "Write of size 8 ...": syzbot titles say which.
		access := "Read"
		for _, l := range ls {
			if strings.HasPrefix(strings.TrimSpace(l.text), "Write of size") {
				access = "Write"
				break
			}
		}
		title = strings.Replace(title, "$access", access, 1)
	}
	if len(m) > 1 {
		title = strings.ReplaceAll(title, "$1", strings.TrimSpace(m[1]))
	}
	title = strings.ReplaceAll(title, "$0", strings.TrimPrefix(m[0], "BUG: "))
	if strings.Contains(title, "%s") {
		if fn == "" {
			fn = "unknown"
			r.Corrupted, r.CorruptedReason = true, "no stack trace to name the guilty function"
		}
		title = strings.Replace(title, "%s", fn, 1)
	}
	if kind.typ == Panic {
		title = panicTitle(m[1])
	}
	r.Title = title
	r.Signature = signature(r)
	return r
}

// archOf guesses the arch from arch-specific entry frames when no register dump said
// it (panics, hung tasks and bad pages print only a stack).
func archOf(fs []Frame) string {
	for _, f := range fs {
		switch {
		case strings.HasPrefix(f.Func, "el0t_"), strings.HasPrefix(f.Func, "el1h_"), strings.HasPrefix(f.Func, "__arm64_sys_"),
			f.Func == "invoke_syscall", f.Func == "__primary_switched", f.Func == "__secondary_switched", f.Func == "dump_backtrace":
			return "arm64"
		case strings.HasPrefix(f.Func, "entry_SYSCALL_64"), f.Func == "do_syscall_64", strings.HasPrefix(f.Func, "asm_exc_"),
			strings.HasPrefix(f.Func, "asm_sysvec_"), strings.HasPrefix(f.Func, "__x64_sys_"), f.Func == "secondary_startup_64_no_verify":
			return "x86_64"
		}
	}
	return ""
}

// panicTitle names a bare panic by its message with numbers and addresses removed. The
// caller of panic() is not in the title: panic() does not return, so on arm64 the return
// address printed for its caller lies past the caller's end, in the next function.
func panicTitle(msg string) string {
	return "kernel panic: " + strings.TrimSpace(normalize(msg))
}

// cpuHeaders counts the distinct "CPU: N PID: M" headers in ls outside other-CPU
// backtraces: more than one means two reports' lines are mixed.
func cpuHeaders(ls []line) int {
	seen := map[string]bool{}
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		if strings.HasPrefix(t, "NMI backtrace for cpu") {
			break
		}
		if sm := cpuLineRe.FindStringSubmatch(t); sm != nil {
			seen[sm[1]+"/"+sm[2]] = true
		}
	}
	return len(seen)
}

var numRe = regexp.MustCompile(`(?:0x)?[0-9a-fA-F]{6,}|\d+`)

// normalize replaces addresses and numbers with placeholders so that runs differing
// only in them compare equal.
func normalize(s string) string {
	return numRe.ReplaceAllStringFunc(s, func(x string) string {
		if len(x) >= 6 || strings.HasPrefix(x, "0x") {
			return "ADDR"
		}
		return "NUM"
	})
}

// cleanFunc drops compiler suffixes (".constprop.0", ".isra.3", ".part.1", ".cold") that
// vary with compiler and config but not with the bug.
func cleanFunc(f string) string {
	if i := strings.IndexByte(f, '.'); i > 0 {
		return f[:i]
	}
	return f
}

// frames collects the crashing context's stack: the faulting function from RIP/pc
// first, then the first call trace. Backtraces of other CPUs ("NMI backtrace for cpu N"
// sections after the first trace) are returned as text in others.
func frames(ls []line, r *Report) ([]Frame, []string) {
	var fs []Frame
	var others []string
	var other strings.Builder
	inTrace, traceDone, inOther := false, false, false
	var lr *Frame
	for _, l := range ls {
		t := strings.TrimRight(l.text, " ")
		trimmed := strings.TrimSpace(t)
		if sm := cpuLineRe.FindStringSubmatch(trimmed); sm != nil && r.Kernel == "" && !inOther {
			r.CPU, _ = strconv.Atoi(sm[1])
			r.PID, _ = strconv.Atoi(sm[2])
			r.Comm = sm[3]
			r.Kernel = sm[4]
		}
		if strings.HasPrefix(trimmed, "NMI backtrace for cpu") && (len(fs) > 0 || traceDone) {
			if inOther && other.Len() > 0 {
				others = append(others, other.String())
			}
			other.Reset()
			inOther, inTrace, traceDone = true, false, true
		}
		if inOther {
			other.WriteString(trimmed)
			other.WriteByte('\n')
			continue
		}
		if sm := ripRe.FindStringSubmatch(trimmed); sm != nil {
			if strings.HasPrefix(trimmed, "RIP") {
				r.Arch = "x86_64"
			} else {
				r.Arch = "arm64"
			}
			// Only the first RIP/pc of the crashing context is the fault site; later
			// ones (4.x interrupted-context dumps, "RIP: 0033" user space) are not.
			if len(fs) == 0 && !traceDone && !strings.HasPrefix(trimmed, "RIP: 0033") {
				f := Frame{Func: sm[3], Module: sm[6]}
				f.Off, _ = strconv.ParseUint(sm[4], 16, 64)
				f.Size, _ = strconv.ParseUint(sm[5], 16, 64)
				pc := sm[1] + sm[2]
				if pc != "" {
					f.PC, _ = strconv.ParseUint(pc, 16, 64)
				}
				fs = append(fs, f)
				r.faultSite = true
			}
			continue
		}
		if sm := lrRe.FindStringSubmatch(trimmed); sm != nil && lr == nil && !traceDone {
			lr = &Frame{Func: sm[1], Module: sm[4]}
			lr.Off, _ = strconv.ParseUint(sm[2], 16, 64)
			lr.Size, _ = strconv.ParseUint(sm[3], 16, 64)
			continue
		}
		if strings.HasPrefix(trimmed, "Call Trace:") || strings.HasPrefix(trimmed, "Call trace:") {
			if traceDone || inTrace {
				// A second trace in one report (4.x prints the interrupted context
				// inline; that stays part of the first). Anything else: stop.
				if !inTrace {
					continue
				}
			}
			inTrace = true
			continue
		}
		if !inTrace {
			continue
		}
		if sm := frameRe.FindStringSubmatch(t); sm != nil {
			f := Frame{Func: sm[4], Module: sm[7], Unreliable: sm[1] != "" || sm[3] != ""}
			f.Off, _ = strconv.ParseUint(sm[5], 16, 64)
			f.Size, _ = strconv.ParseUint(sm[6], 16, 64)
			if sm[2] != "" {
				f.PC, _ = strconv.ParseUint(sm[2], 16, 64)
			}
			// A return address is never a function's first instruction: "func+0x0"
			// means a call to a noreturn function (panic, BUG) was the last
			// instruction of the function before func. The console cannot name that
			// caller (a symbolizer can, from PC-1), so the frame is not trusted.
			if f.Off == 0 && len(fs) > 0 {
				f.Unreliable = true
			}
			// arm64 (and 4.x arm64) start the trace with the faulting function again.
			if len(fs) == 1 && fs[0].Func == f.Func && fs[0].Off == f.Off {
				if fs[0].PC == 0 {
					fs[0].PC = f.PC
				}
				continue
			}
			fs = append(fs, f)
			continue
		}
		switch {
		case strings.HasPrefix(trimmed, "<") && strings.HasSuffix(trimmed, ">"),
			strings.HasPrefix(trimmed, "Exception stack"),
			hexDumpRe.MatchString(trimmed),
			strings.HasPrefix(trimmed, "RSP:"), strings.HasPrefix(trimmed, "RAX:"),
			strings.HasPrefix(trimmed, "RDX:"), strings.HasPrefix(trimmed, "RBP:"),
			strings.HasPrefix(trimmed, "R10:"), strings.HasPrefix(trimmed, "R13:"):
			continue
		}
		inTrace, traceDone = false, true
	}
	if inOther && other.Len() > 0 {
		others = append(others, other.String())
	}
	return withLR(fs, lr, r.faultSite), others
}

// withLR puts arm64's link register into the stack where the unwinder cannot see it. A
// fault in a leaf function (no frame record of its own) unwinds from the caller's frame
// record, so the caller is missing from "Call trace:" although lr points into it; x86
// shows that caller, and without it one bug would get two signatures across arches.
// When the faulting function is not a leaf, lr points back into itself (it already
// called something) or at the next frame (the trace has it), and nothing is added.
func withLR(fs []Frame, lr *Frame, faultSite bool) []Frame {
	if lr == nil || !faultSite || len(fs) == 0 || lr.Func == fs[0].Func {
		return fs
	}
	for _, f := range fs[1:] {
		if f.Unreliable {
			continue
		}
		if f.Func == lr.Func {
			return fs
		}
		break
	}
	out := make([]Frame, 0, len(fs)+1)
	out = append(out, fs[0], *lr)
	return append(out, fs[1:]...)
}

var hexDumpRe = regexp.MustCompile(`^[0-9a-f]{4}:\s`)
