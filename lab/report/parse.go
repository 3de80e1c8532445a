package report

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

var quickBytes = func() [][]byte {
	var b [][]byte
	for _, q := range quick {
		b = append(b, []byte(q))
	}
	return b
}()

func matchStart(text string) (int, []string) {
	t := strings.TrimLeft(text, " \t")
	if t == "" {
		return -1, nil
	}
	// 4.x lockdep and debug banners: "[ BUG: bad unlock balance detected! ]".
	if len(t) > 4 && strings.HasPrefix(t, "[ ") && strings.HasSuffix(t, " ]") { // not "[ ]" (fuzz)
		if k, m := matchStart1(t[2 : len(t)-2]); k >= 0 {
			return k, m
		}
	}
	if k, m := matchStart1(t); k >= 0 {
		return k, m
	}
	// A kernel line run into the end of another kernel line ("...allocation failure:
	// 34359738352 bytes[   76.471107] BUG: unable to handle ..."): the report starts at
	// the inner timestamp.
	if strings.IndexByte(t, '[') > 0 {
		if inner, ok := embeddedKernelText(t); ok {
			return matchStart1(inner)
		}
	}
	return -1, nil
}

func matchStart1(t string) (int, []string) {
	if t == "" { // an embedded kernel line with no text after its timestamp (fuzz)
		return -1, nil
	}
	cand := rulesByFirst[t[0]]
	if len(cand) == 0 {
		return -1, nil
	}
	ignored := false
	for _, i := range cand {
		ru := &rules[i]
		if !strings.HasPrefix(t, ru.lit) || !strings.Contains(t, ru.needle) {
			continue
		}
		if m := ru.start.FindStringSubmatch(t); m != nil {
			if !ignored && ignoreRe.MatchString(t) {
				return -1, nil
			}
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
// lib/list_debug.c" after "list_add corruption", kmemleak's objects after "BUG: memory
// leak", and so on.
func continues(open, next *rule, sinceStart int) bool {
	switch {
	case isPanic(next):
		return true // a panic always ends whatever was being reported
	case next.typ == Reboot || next.typ == NetdevLeak:
		return false
	case next.typ == InvalidOpcode:
		// x86 BUG() is ud2: "kernel BUG at" is followed by "invalid opcode".
		switch open.typ {
		case Bug, ListCorruption, Warning, Usercopy, Refcount:
			return true
		}
	case next.typ == Bug && strings.Contains(next.start.String(), "Internal error"):
		// arm64 BUG(): "kernel BUG at" then "Internal error: Oops - BUG".
		switch open.typ {
		case Bug, ListCorruption, Usercopy:
			return true
		}
	case next.typ == open.typ && (open.typ == ListCorruption || open.typ == Usercopy || open.typ == MemoryLeak && strings.HasPrefix(open.start.String(), "^(?:BUG: memory leak")):
		// "list_add corruption." / "usercopy: ..." then "kernel BUG at lib/list_debug.c"
		// / "mm/usercopy.c"; "BUG: memory leak" then its first "unreferenced object".
		return sinceStart < 4
	case next.typ == Oops:
		// arm64 prints the fault description, then "Mem abort info", ESR decoding and
		// page-table walk, then "Internal error: Oops:" (about 12 lines on 6.x).
		switch open.typ {
		case NullDeref, PagingRequest, Bug, ListCorruption, Usercopy, KASAN, StackOverflow:
			return sinceStart < 40
		case Oops:
			// 4.x arm64 "Unhandled fault: ..." then "Internal error: : 96000010".
			return strings.Contains(open.start.String(), "Unhandled fault") && sinceStart < 10
		}
	case open.typ == StackOverflow && next.typ == GPF:
		// "BUG: stack guard page was hit" then "kernel stack overflow (double-fault)".
		return sinceStart < 40
	}
	return false
}

// isPanic: the rule is for a "Kernel panic - not syncing" line.
func isPanic(r *rule) bool { return strings.HasPrefix(r.start.String(), "^Kernel panic") }

func findStart(log []byte, from int) (int, bool) { return findStartSeen(log, from, false) }

// findStartSeen is findStart for a window of a stream: seen says kernel output came
// before the window (so a boot banner in it is a reboot).
func findStartSeen(log []byte, from int, seen bool) (int, bool) {
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
		if k, _ := kernelStartAt(lines, i, timed); k >= 0 && !spuriousReboot(lines, i, k, seen) {
			return from + lines[i].start, true
		}
	}
	return -1, false
}

// spuriousReboot: the decompressor's "Booting the kernel." is a reboot only after the
// kernel already printed something (not on the first boot) and when no report came
// before it (a panic's reboot is expected).
func spuriousReboot(lines []line, i, k int, seen bool) bool {
	if rules[k].typ != Reboot {
		return false
	}
	return !seen && !runningBefore(lines[:i])
}

// runningBefore: a line of ls has a printk timestamp past boot (not 0.000000): the
// kernel was up, so a new boot banner means it rebooted.
func runningBefore(ls []line) bool {
	for _, l := range ls {
		if l.ts != "" && strings.Trim(l.ts, "0.") != "" {
			return true
		}
	}
	return false
}

// kernelStart is matchStart for lines the kernel printed. When a console shows printk
// timestamps (any line of what is parsed has one), a line without one came from user space (the reproducer, init,
// cryptsetup's "WARNING: ...") and starts no report, whatever it says. Consoles without
// timestamps (printk.time=0) are taken as they are.
func kernelStart(l line, timed bool) (int, []string) {
	return matchStart(l.text)
}

// kernelStartAt is kernelStart for lines[i] with a look at the next line. Without
// timestamps nothing tells a kernel "WARNING:" from a tool's, so the start must be
// followed by a line only a kernel report prints (registers, "Modules linked in", a
// call trace, ...). A live watcher thus sees such a report one line later.
func kernelStartAt(lines []line, i int, timed bool) (int, []string) {
	// Every line is asked several times (by the parse loop, by the extent of each open
	// report); the rule it matches is kept in the line.
	if lines[i].rule == 1 {
		return -1, nil
	}
	k, m := kernelStart(lines[i], timed)
	if k < 0 {
		lines[i].rule = 1 // matches no rule, whatever comes next
	}
	if k < 0 || lines[i].ts != "" || rules[k].kernelText {
		return k, m
	}
	// Sanitizers print a paragraph (access, task, blank line) before the first line only a
	// kernel prints: look a few non-empty lines on.
	// In a console with timestamps, an untimed report goes on untimed (the kernel's
	// console lost its prefixes); a timestamped line after a user-space "WARNING:" does
	// not make it the kernel's.
	seen := 0
	for j := i + 1; j < len(lines) && seen < 6; j++ {
		if strings.TrimSpace(lines[j].text) == "" || timed && lines[j].ts != "" {
			continue
		}
		seen++
		if kernelOnlyRe.MatchString(lines[j].text) {
			return k, m
		}
	}
	return -1, nil
}

func matchStartOK(text string) (int, bool) {
	k, _ := matchStart(text)
	return k, k >= 0
}

// kernelOnlyRe matches lines that only a kernel report prints.
var kernelOnlyRe = regexp.MustCompile(`^\s*(?:Modules linked in:|CPU: \d+ PID: \d+|Hardware name:|Call Trace:|Call trace:|RIP: [0-9a-f]{4}:|IP: |#PF: |Oops: |PGD |Mem abort info:|pc : |PC is at |Internal error: |invalid opcode: |rcu: |\s*\d+-\.\.\.|\(detected by|\s*Tainted: |"echo 0 > /proc/sys/kernel/hung_task_timeout_secs"|task:\S+\s+state:|page:[0-9a-f]+ |Kernel Offset:|---\[ end |\[<(?:[0-9a-f]+| *\(_*ptrval_*\))>\] |[A-Za-z0-9_.$]+\+0x[0-9a-f]+/0x[0-9a-f]+|comm "[^"]*", pid \d+, jiffies|unreferenced object 0x|(?:Read|Write) of size \d+ at addr|(?:read|write)(?: \(marked\))? to 0x[0-9a-f]+ of \d+ bytes by|(?:Out-of-bounds|Use-after-free|Invalid) (?:read|write|free) (?:at|of) 0x|Uninit was (?:created|stored))`)

// isBody reports whether a line belongs to a report's body even though it does not
// start one: stack frames, register dumps and the fixed headers printed around them. The
// extent of a report without an end marker (lockups, stalls, hung tasks, bad pages) is
// its last body line before unrelated output. It runs on every line of every report, so
// it is written out by hand (bodyRe in the tests is the same set as a regexp, 20 times
// slower).
func isBody(text string) bool {
	t := strings.TrimLeft(text, " \t\n\f\r")
	if t == "" {
		return false
	}
	switch t[0] {
	case '?':
		return strings.HasPrefix(t, "? ")
	case '<':
		return strings.HasPrefix(t, "<IRQ>") || strings.HasPrefix(t, "</IRQ>") || strings.HasPrefix(t, "<TASK>") ||
			strings.HasPrefix(t, "</TASK>") || strings.HasPrefix(t, "<NMI>") || strings.HasPrefix(t, "</NMI>") ||
			strings.HasPrefix(t, "<SOFTIRQ>") || strings.HasPrefix(t, "</SOFTIRQ>") || strings.HasPrefix(t, "<EOI>")
	case '[':
		if strings.HasPrefix(t, "[<") {
			end := strings.Index(t, ">]")
			if end > 2 && (isHex(t[2:end]) || isPtrval(t[2:end])) {
				return true
			}
		}
		end := strings.IndexByte(t, ']')
		if end > 1 && isHex(t[1:end]) {
			return true
		}
	case '^':
		return true
	case '=':
		return len(t) >= 20 && strings.Trim(t[:20], "=") == ""
	case '-':
		return len(t) >= 20 && strings.Trim(t[:20], "-") == "" || strings.HasPrefix(t, "---[ end") || strings.HasPrefix(t, "-> #") && len(t) > 4 && isDigit(t[4])
	case '>':
		return len(t) > 17 && t[17] == ':' && isHex(t[1:17])
	case '(':
		return strings.HasPrefix(t, "(t=") || strings.HasPrefix(t, "(detected by") || strings.HasPrefix(t, "(ftrace") && len(t) < len(text)
	case '"':
		return strings.HasPrefix(t, `"echo 0 > /proc/sys/kernel/hung_task_timeout_secs"`)
	case '#':
		i := 1
		for i < len(t) && isDigit(t[i]) {
			i++
		}
		return i > 1 && strings.HasPrefix(t[i:], ": ") || strings.HasPrefix(t, "#PF")
	}
	if isFrameText(t) || isRegister(t) {
		return true
	}
	// hex words: "ffff8880...: ", code bytes "0000:", kmemleak's "6b 6b 6b ..." dump,
	// "0-...." RCU stall CPU lines, "2 locks held by".
	if isHex(t[:1]) || isDigit(t[0]) {
		if len(t) > 4 && t[4] == ':' && isHex(t[:4]) || len(t) > 16 && t[16] == ':' && isHex(t[:16]) {
			return true
		}
		if len(t) >= 24 && hexPairs(t, 8) {
			return true
		}
		i := 0
		for i < len(t) && isDigit(t[i]) {
			i++
		}
		if i > 0 && (strings.HasPrefix(t[i:], "-...") || strings.HasPrefix(t[i:], " lock held by") || strings.HasPrefix(t[i:], " locks held by")) {
			return true
		}
	}
	for _, p := range bodyPrefixes[t[0]] {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// bodyWords are the fixed headers of report bodies (isBody matches them as prefixes).
var bodyWords = []string{"RIP", "RSP", "Code", "Call Trace", "Call trace", "Modules linked in", "CPU", "Hardware name",
	"Workqueue", "task", "Process", "Stack", "Exception stack", "PGD", "pgd", "Mem abort info", "Data abort info", "ESR",
	"EC", "SET", "FnV", "EA", "S1PTW", "CM", "WnR", "ISV", "user pgd", "swapper pgd", "Kernel Offset", "PHYS_OFFSET",
	"CPU features", "Memory Limit", "page", "flags", "raw", "head", "page dumped because", "page_owner",
	"Disabling lock debugging", "Oops", "#PF", "invalid opcode", "Internal error", "Tainted", "NMI backtrace",
	"Sending NMI", "rcu", "INFO: lockdep", "Showing all locks", "irq event stamp", "hardirqs", "softirqs", "sysrq",
	"Kernel panic", "DR0", "DR1", "DR2", "DR3", "DR4", "DR5", "DR6", "DR7", "PKRU", "note", "Fixing recursive fault",
	"Dumping ftrace", "IP", "hung_task", "irq", "Rebooting", "SMP", "Kernel", "Preemption", "Showing busy",
	"Unable to handle", "list_", "kernel BUG", "WARNING", "BUG", "general protection", "divide error", "KASAN", "UBSAN",
	"Read of size", "Write of size", "Memory state", "Allocated by", "Freed by", "The buggy address",
	"which belongs to the cache", "comm \"", "hex dump", "backtrace", "unreferenced object", "kfence-#",
	"allocated by task", "freed by task", "Out-of-bounds", "Use-after-free", "Invalid read", "Invalid write",
	"Invalid free", "Corrupted memory", "caller is", "last function", "stack backtrace", "usercopy", "ODEBUG",
	"refcount_t", "unregister_netdevice"}

// bodyPrefixes indexes bodyWords by first byte.
var bodyPrefixes = func() map[byte][]string {
	m := map[byte][]string{}
	for _, w := range bodyWords {
		m[w[0]] = append(m[w[0]], w)
	}
	return m
}()

// registerNames start register-dump lines ("RAX: ", "x29: ", "pc : ", "ORIG_RAX: ").
var registerNames = map[string]bool{"CS": true, "DS": true, "FS": true, "GS": true, "CR0": true, "CR2": true, "pc": true,
	"lr": true, "sp": true, "pstate": true, "ORIG_RAX": true, "EFLAGS": true}

func isRegister(t string) bool {
	i := 0
	for i < len(t) && (t[i] >= 'A' && t[i] <= 'Z' || t[i] >= 'a' && t[i] <= 'z' || isDigit(t[i]) || t[i] == '_') {
		i++
	}
	if i == 0 {
		return false
	}
	j := i
	for j < len(t) && strings.IndexByte(" \t\n\f\r", t[j]) >= 0 { // regexp's \s
		j++
	}
	if j >= len(t) || t[j] != ':' {
		return false
	}
	w := t[:i]
	switch {
	case registerNames[w]:
		return true
	case w[0] == 'R' && i >= 2 && i <= 3 && allUpperDigit(w[1:]):
		return true
	case w[0] == 'x' && i >= 2 && allDigit(w[1:]):
		return true
	}
	return false
}

// isFrameText: "func+0x1f/0x30" at the start of t.
func isFrameText(t string) bool {
	i := 0
	for i < len(t) && isNameByte(t[i]) {
		i++
	}
	if i == 0 || !strings.HasPrefix(t[i:], "+0x") {
		return false
	}
	j := i + 3
	k := j
	for k < len(t) && isHexByte(t[k]) {
		k++
	}
	if k == j || !strings.HasPrefix(t[k:], "/0x") {
		return false
	}
	return k+3 < len(t) && isHexByte(t[k+3])
}

func hexPairs(t string, n int) bool {
	for i := 0; i < n; i++ {
		if len(t) < 3*i+3 || !isHexByte(t[3*i]) || !isHexByte(t[3*i+1]) || t[3*i+2] != ' ' {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '$'
}

func isHexByte(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return len(s) > 0
}

func allDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return len(s) > 0
}

func allUpperDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'A' && s[i] <= 'Z' || isDigit(s[i])) {
			return false
		}
	}
	return true
}

// parse splits log into reports. A report runs from its start line to the first of: an
// end marker (plus a directly following panic and its own end), the next start line
// that is not a continuation, or the last body line before maxGap unrelated lines.
func parse(log []byte) []*Report {
	return parseState(log, &state{})
}

// state carries what a streaming parse knows about the log before its window.
type state struct {
	kernelSeen bool // kernel output came before (a "Booting the kernel." is a reboot)
	reported   bool // a report came before (a reboot after it is expected)
	// interleaved: an interleaved report came before (a lone "invalid opcode [#2]"
	// continues one of them)
	interleaved bool
}

func parseState(log []byte, st *state) []*Report {
	lines := splitLines(log)
	var reports []*Report
	prevLast := -1
	timedFrom := firstTimed(lines)
	for i := 0; i < len(lines); {
		k, m := kernelStartAt(lines, i, timedFrom < len(lines))
		if k >= 0 && rules[k].typ == Reboot && (st.reported || len(reports) > 0 || spuriousReboot(lines, i, k, st.kernelSeen)) {
			k = -1
		}
		if k < 0 {
			i++
			continue
		}
		first, last, complete, nested := extentNested(lines, i, k)
		if len(reports) > 0 && first <= prevLast && !reports[len(reports)-1].Corrupted {
			first = prevLast + 1 // a "cut here" banner is never part of two reports
		}
		prevLast = last
		r := build(log, lines[first:last+1], &rules[k], m, titleLines(lines, i, &rules[k], timedFrom < len(lines), nested, last))
		r.Start, r.End = lines[first].start, lines[last].end
		r.Text = log[r.Start:r.End]
		switch {
		case r.Corrupted:
		case rules[k].corrupted != "":
			r.Corrupted, r.CorruptedReason = true, rules[k].corrupted
		case !complete && (inTrace(lines[first:last+1]) || !rules[k].noFrames && !anyTraceStart(lines[first:last+1])):
			// Cut inside its stack, or before the stack began: the frames that
			// matter may be missing. (A log that simply ends after a whole stack
			// is not: consoles are often saved right after the report.)
			// A live console caught mid-report, or a guest that died while printing:
			// the trace may lack the frames that matter.
			r.Corrupted, r.CorruptedReason = true, "truncated: the log ends inside the report"
		case last+1 < len(lines) && inTrace(lines[first:last+1]) && startsReportAfterBanner(lines, last+1, timedFrom < len(lines)):
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
		if (rules[k].typ == InvalidOpcode || rules[k].typ == Oops) && !r.Corrupted && laterOops(lines[i].text) && (st.interleaved || anyInterleaved(reports)) {
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

// maxHeader bounds the text a longHeader report (lockdep, kmemleak, KFENCE) prints before
// its stack.
const maxHeader = 120

// traceStartRe matches the lines a stack trace follows: "Call Trace:", kmemleak's
// "backtrace:", KFENCE's access line.
var traceStartRe = regexp.MustCompile(`^(?:Call [Tt]race:|backtrace(?: \(crc [0-9a-f]+\))?:$|(?:Out-of-bounds|Use-after-free|Invalid) (?:read|write|free) (?:at|of) 0x|Corrupted memory at 0x)`)

func traceStart(t string) bool {
	if len(t) == 0 || (t[0] != 'C' && t[0] != 'b' && t[0] != 'O' && t[0] != 'U' && t[0] != 'I') {
		return false
	}
	return traceStartRe.MatchString(t)
}

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
	if rules[k].oneLine {
		last = i
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j].text) == "" {
				continue
			}
			if nk, _ := kernelStartAt(lines, j, lines[i].ts != ""); nk != k {
				break
			}
			last = j
		}
		return first, last, true, -1
	}
	gap := 0
	sawEnd := false
	timed := lines[i].ts != ""
	caller := taskCaller(lines[i])
	for j := i + 1; j < len(lines); j++ {
		text := lines[j].text
		if timed && lines[j].ts == "" && !rules[k].untimed && strings.TrimSpace(text) != "" {
			// User space writing to the console between the kernel's lines (a
			// reproducer's progress): neither part of the report nor the end of it,
			// unless it starts one of the reports user space prints (a memory leak).
			if nk, _ := kernelStartAt(lines, j, true); nk < 0 {
				continue
			}
		}
		if c := firstNonSpace(text); (c == 'r' || c == 'A' || c == 'R') && shutdownRe.MatchString(text) {
			// whichever task prints it (init's reboot is not the reporting task)
			return first, last, true, nested
		}
		if caller != "" && otherTask(lines[j], caller) {
			if nk, _ := kernelStartAt(lines, j, timed); nk < 0 {
				continue // another task's line (printk caller ids): not this report's
			}
		}
		if nk, _ := kernelStartAt(lines, j, timed); nk >= 0 {
			if sawEnd && !isPanic(&rules[nk]) {
				return first, last, true, nested
			}
			if !continues(&rules[k], &rules[nk], j-i) {
				if sawTrace || nested >= 0 {
					return first, last, true, nested
				}
				nested = j
			}
			last, gap = j, 0
			continue
		}
		if traceStart(strings.TrimSpace(text)) {
			sawTrace = true
		}
		if closesSanitizer(&rules[k], text) {
			// KASAN, KFENCE, KMSAN, KCSAN and UBSAN close with the "====" line they
			// opened with.
			last, gap, sawEnd = j, 0, true
			continue
		}
		if strings.Contains(text, "---[ end") && endRe.MatchString(text) {
			last, gap = j, 0
			if strings.Contains(text, "end Kernel panic") {
				return first, last, true, nested
			}
			sawEnd = true
			continue
		}
		if isBody(text) {
			last, gap = j, 0
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		gap++
		limit := maxGap
		if rules[k].longHeader && !sawTrace && j-i < maxHeader {
			limit = maxHeader // lock chains and hex dumps before the stack
		}
		if gap >= limit || (sawEnd && gap >= 2) {
			return first, last, true, nested
		}
	}
	// The log ended. A report that printed its end marker (or a panic, after which
	// nothing else runs) is whole; otherwise more could still come.
	return first, last, sawEnd || panicDone(lines[i:last+1]), nested
}

func closesSanitizer(ru *rule, text string) bool {
	switch ru.typ {
	case KASAN, KFENCE, KMSAN, KCSAN, UBSAN:
		t := strings.TrimSpace(text)
		return len(t) >= 20 && strings.Trim(t, "=") == ""
	}
	return false
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

// startsReportAfterBanner is startsReport at i or within the next lines: a "cut here"
// banner and the WARN() message can come before the start line.
func startsReportAfterBanner(lines []line, i int, timed bool) bool {
	for j := i; j < len(lines) && j <= i+3; j++ {
		if startsReport(lines, j, timed) {
			return true
		}
	}
	return false
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
		case strings.HasPrefix(t, "Call Trace:"), strings.HasPrefix(t, "Call trace:"), strings.HasPrefix(t, "backtrace"):
			open = true
		case t == "</TASK>", strings.HasPrefix(t, "Code:"), strings.HasPrefix(t, "RIP: 0033"),
			strings.HasPrefix(t, "---["), strings.HasPrefix(t, "Kernel panic"):
			open = false
		}
	}
	if !open {
		return false
	}
	// arm64 and 4.x traces have no closing line: one that ends in a task's first frame
	// (user-space entry, kthread start, idle entry) is whole. Stale "? " entries after
	// it do not count.
	for i := len(ls) - 1; i >= 0; i-- {
		sm := frameLine(ls[i].text)
		if sm == nil {
			return false
		}
		if sm[1] != "" || sm[3] != "" {
			continue
		}
		return !rootRe.MatchString(sm[4])
	}
	return false
}

// rootRe matches the outermost frames of a kernel stack: where a trace ends.
var rootRe = regexp.MustCompile(`^(?:entry_SYSENTER_compat|sysenter_flags_fixed|sysenter_dispatch|int_ret_from_sys_call|tracesys_phase2|system_call_fastpath|ret_from_syscall|el0_svc|el0_svc_naked|work_pending|ret_fast_syscall|el0t_64_sync|el0_sync|el0t_64_irq|ret_from_fork|kthread|__primary_switched|__secondary_switched|secondary_start_kernel|start_kernel|cpu_startup_entry|entry_SYSCALL_64_after_hwframe|entry_SYSCALL_64_fastpath|secondary_startup_64.*|start_secondary|x86_64_start_reservations|x86_64_start_kernel)$`)

// complete is Complete: the first report in log has ended.
func complete(log []byte) bool {
	lines := splitLines(log)
	timedFrom := firstTimed(lines)
	for i := range lines {
		if k, _ := kernelStartAt(lines, i, timedFrom < len(lines)); k >= 0 && !spuriousReboot(lines, i, k, false) {
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
	frameRe = regexp.MustCompile(`^\s*(\? )?(?:\[<(?:([0-9a-f]+)| *\(_*ptrval_*\))>\] )?(\? )?([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[([^\]\s]+)\])?`)
)

// titleLines returns the lines a report's title is read from, as syzbot reads them: from
// its start line at i to the next start of a report (panics, traps and a netdevice
// wait do not count: they continue the report), the lines of its own context only
// (timestamped kernel lines, or its printk caller's, and other CPUs' after "Sending
// NMI"), and nothing from a "Kernel panic" on once the report has 22 lines: a panic
// caused by the report repeats its stack.
//
// An interleaved report (nested >= 0) keeps the lines of its own extent, past the other
// report's start.
func titleLines(lines []line, i int, ru *rule, timed bool, nested, last int) []line {
	caller := lines[i].caller
	own := lines[i].ts != "" // an untimed start (a console without timestamps) keeps untimed lines
	out := []line{lines[i]}
	cpus, skip := false, false
	for j := i + 1; j < len(lines) && j-i < maxTitleScan && len(out) < maxTitleLines; j++ {
		l := lines[j]
		// With printk caller ids the context's lines go on through other contexts'
		// reports; a new report of its own ends it.
		if caller != "" && l.caller != caller && !cpus {
			continue // another context's line: neither the title's text nor its end
		}
		if k, _ := kernelStartAt(lines, j, timed); k >= 0 && !continuesTitle(&rules[k]) && !continues(ru, &rules[k], j-i) && (nested < 0 || j > last) {
			break
		}
		switch {
		case own && l.ts == "":
			continue
		case caller != "" && l.caller != caller && !(cpus && strings.HasPrefix(l.caller, "C")):
			continue
		}
		if strings.Contains(l.text, "Sending NMI from CPU") {
			cpus = true
		}
		if len(out) > 22 && (strings.Contains(l.text, "Kernel panic - not syncing") || strings.Contains(l.text, "WARNING: possible circular locking dependency detected")) {
			skip = true
		}
		if !skip && !strings.Contains(l.text, "Disabling lock debugging due to kernel taint") {
			out = append(out, l)
		}
	}
	return out
}

// maxTitleScan and maxTitleLines bound the text a title is read from, so a console of
// many reports is parsed in linear time; a stack is never that far from its report's
// start.
const (
	maxTitleScan  = 5000
	maxTitleLines = 2000
)

// continuesTitle: a start line that goes on with the report before it for its title.
func continuesTitle(ru *rule) bool {
	return isPanic(ru) || ru.typ == InvalidOpcode || ru.typ == NetdevLeak ||
		strings.HasPrefix(ru.start.String(), "^PANIC: double fault") || strings.HasPrefix(ru.start.String(), "^Internal error")
}

func build(log []byte, ls []line, ru *rule, m []string, wide []line) *Report {
	r := &Report{Type: ru.typ, CPU: -1, PID: -1, Guilty: -1}
	// What another task printed meanwhile (CONFIG_PRINTK_CALLER ids) and what user
	// space wrote between the kernel's lines (no timestamp in a timed report) are not
	// this report's.
	c := taskCaller(ls[0])
	if c == "" && len(ls) > 1 {
		c = taskCaller(ls[1])
	}
	timed := ls[0].ts != "" && !ru.untimed
	if c != "" || timed {
		kept := make([]line, 0, len(ls))
		for _, l := range ls {
			if c != "" && otherTask(l, c) || timed && l.ts == "" && strings.TrimSpace(l.text) != "" {
				continue
			}
			kept = append(kept, l)
		}
		ls = kept
	}
	startText, startIdx := "", 0
	for i, l := range ls {
		if k, _ := kernelStart(l, ls[0].ts != ""); k >= 0 {
			startText, startIdx = strings.TrimSpace(l.text), i
			break
		}
	}
	if sm := lockupTaskRe.FindStringSubmatch(startText); sm != nil {
		r.CPU, _ = strconv.Atoi(sm[1])
		r.Comm = strings.Clone(sm[2])
		r.PID, _ = strconv.Atoi(sm[3])
	}
	if sm := hungTaskRe.FindStringSubmatch(startText); sm != nil {
		r.Comm = strings.Clone(sm[1])
		r.PID, _ = strconv.Atoi(sm[2])
	}
	r.Frames, r.Others = frames(ls, r, ru)
	if r.Arch == "" {
		r.Arch = archOf(r.Frames)
	}
	if r.Arch == "" {
		r.Arch = hardwareArch(ls)
	}
	if !ru.noFrames && (ru.from == nil && len(r.Frames) == 0 || ru.from != nil && !hasStack(wide)) {
		r.Corrupted, r.CorruptedReason = true, "no stack trace"
	}
	if cpus := cpuHeaders(ls); cpus > 1 {
		r.Corrupted, r.CorruptedReason = true, "interleaved: lines of several CPUs' reports"
	}
	if why := corruption(ls); why != "" && !r.Corrupted {
		r.Corrupted, r.CorruptedReason = true, why
	}
	fn := ""
	if ru.from != nil {
		fn = "corrupted"
		for n, f := range append(ru.from, ru.sigFrom...) {
			if n == len(ru.from) && fn != "corrupted" {
				break
			}
			lf := ""
			if f.line && ru.lineFunc > 0 && ru.lineFunc < len(m) {
				lf = m[ru.lineFunc]
			}
			fs, ok := markedStack(wide, f, lf)
			if !ok {
				continue
			}
			idx, name := -1, ""
			switch {
			case ru.stall:
				idx, name = stallPick(fs, ru)
			case ru.hang:
				idx, name = hangFrame(fs, ru)
			case f.noSkip:
				idx = 0
			default:
				idx = guilty(fs, ru)
			}
			if idx < 0 {
				continue
			}
			fn = fs[idx].Func
			if name != "" {
				fn = name
			}
			// The signature's frames are the crashing stack's from the culprit on
			// when it holds the culprit; else (stalls, where the stalled code's
			// stack is elsewhere) the stack the culprit was found in.
			r.Guilty = -1
			for i, f := range r.Frames {
				if !f.Unreliable && !f.Inlined && cleanFunc(f.Func) == cleanFunc(fs[idx].Func) {
					r.Guilty = i
					break
				}
			}
			if r.Guilty < 0 {
				r.Frames, r.Guilty = fs, idx
			}
			if n >= len(ru.from) {
				fn = "corrupted" // the signature's frames only
			}
			break
		}
		if fn == "corrupted" && !r.Corrupted {
			r.Corrupted, r.CorruptedReason = true, "no stack names the culprit"
		}
	}
	// Candidates named by the report's text come first: the start line's function, then
	// lines like lockdep's "at: FUNC"; each is skipped like a frame would be.
	var cands []string
	if ru.lineFunc > 0 && ru.lineFunc < len(m) {
		cands = append(cands, m[ru.lineFunc])
	}
	if ru.funcRe != nil {
		for _, l := range ls[startIdx:] {
			if sm := ru.funcRe.FindStringSubmatch(strings.TrimSpace(l.text)); sm != nil {
				cands = append(cands, sm[1])
			}
		}
	}
	for _, c := range cands {
		if fn != "" {
			break
		}
		if !skipped(cleanFunc(c), ru) {
			fn = c
			break
		}
	}
	if ru.from != nil {
		// named above
	} else if fn != "" {
		for i, f := range r.Frames {
			if !f.Unreliable && cleanFunc(f.Func) == cleanFunc(fn) {
				r.Guilty = i
				break
			}
		}
		if r.Guilty < 0 && ru.funcRe == nil {
			// A function the stack does not show: the signature's frames come from
			// the stack below it.
			r.Guilty = guilty(r.Frames, ru)
		}
	} else {
		name := ""
		switch {
		case ru.stall:
			r.Guilty = stallFrame(r.Frames, ru)
		case ru.hang:
			r.Guilty, name = hangFrame(r.Frames, ru)
		}
		if r.Guilty < 0 {
			r.Guilty = guilty(r.Frames, ru)
		}
		if r.Guilty >= 0 {
			fn = r.Frames[r.Guilty].Func
		}
		if name != "" {
			fn = name
		}
		if fn == "" && len(cands) > 0 {
			fn = cands[0]
		}
	}
	fn = stripFramePrefix(cleanFunc(fn))
	access := "Read"
	if strings.Contains(ru.title, "$access") {
		// "Read of size 1 at addr ..." / "Write of size 8 ...": syzbot titles say which.
		for _, l := range wide {
			t := strings.TrimSpace(l.text)
			if strings.HasPrefix(t, "Write of size") || strings.HasPrefix(t, "Write at addr") {
				access = "Write"
				break
			}
			if strings.HasPrefix(t, "Read of size") || strings.HasPrefix(t, "Read at addr") {
				break // the first access line is this report's (wide text runs on past it)
			}
		}
	}
	if strings.Contains(ru.title, "%s") && fn == "" {
		fn = "corrupted"
		if !r.Corrupted {
			r.Corrupted, r.CorruptedReason = true, "no stack trace to name the guilty function"
		}
	}
	r.Title = titleOf(ru.title, m, access, fn)
	if ru.needs != nil && !anyLine(wide, ru.needs) {
		r.Title = strings.TrimPrefix(strings.TrimSpace(wide[0].text), "BUG: ")
		r.AltTitles = nil
		if !r.Corrupted {
			r.Corrupted, r.CorruptedReason = true, "truncated: the report's text stops before "+ru.needs.String()
		}
	}
	if ru.dropOffsets {
		r.Title = offsetRe.ReplaceAllString(r.Title, "")
	}
	for _, a := range ru.alt {
		if ru.needs == nil || r.AltTitles != nil || anyLine(wide, ru.needs) {
			r.AltTitles = append(r.AltTitles, titleOf(a, m, access, fn))
		}
	}
	// The corrupted-title check looks at the title as printed, before its numbers go.
	if strings.Contains(r.Title, "[") && timestampInTitleRe.MatchString(r.Title) && !r.Corrupted {
		r.Corrupted, r.CorruptedReason = true, "interleaved: a printk timestamp inside the title"
	}
	r.Title = stableTitle(r.Title)
	for i, a := range r.AltTitles {
		r.AltTitles[i] = stableTitle(a)
	}
	r.sigTitle = r.Title
	if ru.sigTitle != "" {
		r.sigTitle = titleOf(ru.sigTitle, m, access, fn)
	}
	r.Signature = signature(r)
	return r
}

var offsetRe = regexp.MustCompile(`\+0x[0-9a-f]+/0x[0-9a-f]+`)

// timestampInTitleRe: another line's printk prefix merged into the start line.
var timestampInTitleRe = regexp.MustCompile(`\[ *[0-9]+\.[0-9]+\]`)

// markedStack returns the frames of the stack f points at in ls (ls[0] is the start
// line), and whether it was found.
func markedStack(ls []line, f stackFrom, lineFunc string) ([]Frame, bool) {
	i := 0
	var fs []Frame
	if f.line {
		if lineFunc == "" {
			return nil, false
		}
		fs = append(fs, Frame{Func: strings.Clone(lineFunc)})
		i = 1
	}
	if f.at != nil {
		for i < len(ls) && !f.at.MatchString(ls[i].text) {
			if faultLine(ls[i].text) {
				return nil, false
			}
			i++
		}
		if i == len(ls) {
			return nil, false
		}
		i++
	}
	for n := 0; f.funcs != nil && n < f.nfuncs; n++ {
		for i < len(ls) && !f.funcs.MatchString(ls[i].text) {
			if faultLine(ls[i].text) {
				return nil, false
			}
			i++
		}
		if i == len(ls) {
			return fs, len(fs) > 0
		}
		fs = append(fs, Frame{Func: strings.Clone(f.funcs.FindStringSubmatch(ls[i].text)[1])})
		i++
	}
	if f.only {
		return fs, len(fs) > 0
	}
	if f.pc {
		for i < len(ls) && !pcLine(ls[i].text) {
			if faultLine(ls[i].text) {
				return nil, false
			}
			i++
		}
		if i == len(ls) {
			return fs, len(fs) > 0 // a part not found leaves what came before
		}
		if sm := pcRe.FindStringSubmatch(ls[i].text); sm[1] != "" {
			fs = append(fs, Frame{Func: strings.Clone(sm[1])})
		}
		i++
	}
	if f.trace {
		for i < len(ls) && !stackHeader(strings.TrimSpace(ls[i].text)) {
			if faultLine(ls[i].text) {
				return nil, false
			}
			i++
		}
		if i == len(ls) {
			return fs, len(fs) > 0
		}
		i++
	}
	for ; i < len(ls); i++ {
		t := strings.TrimSpace(ls[i].text)
		if stackHeader(t) {
			break
		}
		if faultLine(t) {
			// A fault injection's stack printed into the report: what follows cannot
			// be told apart from the report's own frames.
			return nil, false
		}
		if sm := armFromLine(t); sm != nil {
			// Both ends of the call, as syzbot reads them: the first frame is
			// otherwise only in the link register.
			fs = append(fs, Frame{Func: strings.Clone(sm[1])})
			if sm[2] != "" {
				fs = append(fs, Frame{Func: strings.Clone(sm[2])})
			}
		} else if name := looseFrame(inlineMarker(t)); name != "" {
			fs = append(fs, Frame{Func: strings.Clone(name)})
		}
	}
	return fs, len(fs) > 0
}

// pcRe finds the faulting instruction's line: x86's "RIP: 0010:func+0x..", 3.x's "IP:
// [<addr>] func+0x..", arm64's "pc : func+0x..", 4.x arm64's "PC is at func+0x..", or an
// address the kernel could not name (no function then).
var pcRe = regexp.MustCompile(`(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:\[<?(?:0x)?[0-9a-f]+>?\] +){0,2}([A-Za-z0-9_]+)(?:\.|\+)|(?:[0-9]+:)?0x[0-9a-f]+|(?:[0-9]+:)?\[<?(?:0x)?[0-9a-f]+>?\] +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))`)

// looseFrame is looseFrameRe's submatch written out (TestLooseFrame holds them equal):
// it runs on every line of a title's text.
func looseFrame(t string) string {
	for n := 0; n < 2 && strings.HasPrefix(t, "["); n++ {
		end := strings.Index(t, "] ")
		if end < 0 {
			break
		}
		a := strings.TrimSuffix(strings.TrimPrefix(t[1:end], "<"), ">")
		if p := strings.TrimLeft(a, " "); len(p) > 2 && p[0] == '(' && p[len(p)-1] == ')' && strings.Trim(p[1:len(p)-1], "_") == "ptrval" {
			a = "0" // a hashed pointer, "(____ptrval____)"
		}
		if !isHex(strings.TrimPrefix(a, "0x")) {
			break
		}
		t = t[end+2:]
	}
	i := 0
	for i < len(t) && (isNameByte(t[i]) && t[i] != '.' && t[i] != '$') {
		i++
	}
	if i == 0 || i == len(t) || t[i] != '.' && t[i] != '+' {
		return ""
	}
	return t[:i]
}

// pcLine is pcRe.MatchString for lines that can match.
func pcLine(t string) bool {
	return (strings.Contains(t, "IP") || strings.Contains(t, "pc ") || strings.Contains(t, "PC is at")) && pcRe.MatchString(t)
}

// looseFrameRe reads a stack line as syzbot does: an optional address or two, then a
// name followed by "+" (an offset) or "." (a compiler suffix). "? " frames do not match.
// An address may be "(____ptrval____)" (kmemleak's console lines before the CRNG is up).
var looseFrameRe = regexp.MustCompile(`^(?:\[<?(?:(?:0x)?[0-9a-f]+| *\(_*ptrval_*\))>?\] ){0,2}([A-Za-z0-9_]+)[.+]`)

// faultInjectionRe: a frame of the fault injection's stack.
var faultInjectionRe = regexp.MustCompile(`^(?:\[<?(?:0x)?[0-9a-f]+>?\] )?should_fail(?:slab)?(?:\.[a-z0-9.]+)?\+0x`)

// hasStack: ls hold a stack header with a frame in the 15 lines after it.
func hasStack(ls []line) bool {
	for i, l := range ls {
		// KFENCE's stack follows its access line ("Out-of-bounds read at 0x..."), with no
		// header of its own
		if t := strings.TrimSpace(l.text); !stackHeader(t) && !traceStart(t) {
			continue
		}
		for j := i + 1; j < len(ls) && j <= i+15; j++ {
			t := strings.TrimSpace(ls[j].text)
			if stackHeader(t) {
				break
			}
			if strings.Contains(t, "(stack is not available)") || looseFrame(inlineMarker(t)) != "" || armFromRe.MatchString(t) {
				return true
			}
		}
	}
	return false
}

// anyTraceStart: ls hold a stack header ("Call Trace:", kmemleak's "backtrace:").
func anyTraceStart(ls []line) bool {
	for _, l := range ls {
		if traceStart(strings.TrimSpace(l.text)) {
			return true
		}
	}
	return false
}

var needles sync.Map // *regexp.Regexp -> string

// needleOf returns the longest literal every match of re contains ("" if none).
func needleOf(re *regexp.Regexp) string {
	if v, ok := needles.Load(re); ok {
		return v.(string)
	}
	n := longestLiteral(re.String())
	needles.Store(re, n)
	return n
}

// faultLine: a frame of a fault injection's stack, printed into the report: from
// there on the report's own frames cannot be told apart from it.
func faultLine(t string) bool {
	return strings.Contains(t, "should_fail") && faultInjectionRe.MatchString(strings.TrimSpace(t))
}

// anyLine: some line of ls matches re.
func anyLine(ls []line, re *regexp.Regexp) bool {
	lit := needleOf(re)
	for _, l := range ls {
		if strings.Contains(l.text, lit) && re.MatchString(l.text) {
			return true
		}
	}
	return false
}

func armFromLine(t string) []string {
	if !strings.Contains(t, ") from [<") {
		return nil
	}
	return armFromRe.FindStringSubmatch(t)
}

// armFromRe: 32-bit arm's "[<8010e300>] (show_stack) from [<8018de80>] (rcu_check_callbacks+0x7a0/0x7a8)".
var armFromRe = regexp.MustCompile(`^\[<[0-9a-f]+>\] \(([A-Za-z0-9_.$]+)\) from (?:\[<[0-9a-f]+>\] \(([A-Za-z0-9_]+)[.+])?`)

// stackHeader: a line that begins a new stack in a report (KFENCE's access line does
// not: its stack follows it).
func stackHeader(t string) bool {
	// "Call Trace:" can follow a 4.x stack dump's words on the same line.
	return t != "" && strings.IndexByte("CABFUb", t[0]) >= 0 && stackHeaderRe.MatchString(t) ||
		strings.Contains(t, "Call Trace") || strings.Contains(t, "Call trace")
}

var stackHeaderRe = regexp.MustCompile(`^(?:Call [Tt]race|Allocated:|Allocated by task \d+:|Freed:|Freed by task \d+:|backtrace(?: \(crc [0-9a-f]*\))?:|Backtrace:|Uninit was stored to memory at)`)

// titleNumbers make a title the same across runs, as syzbot's are: a PID, address,
// IP address, line number, offset, CPU number or other number printed in the text a
// title quotes becomes a placeholder; applied in order.
var titleNumbers = []struct {
	re   *regexp.Regexp
	with string
}{
	{re(`syz-executor\.?[0-9]+(?:[/:][0-9]+)?`), "syz-executor"},
	{re(`syzkaller[0-9]+(?:[/:][0-9]+)?`), "syzkaller"},
	{re(`([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}`), "${1}ADDR"},
	{re(`[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}`), "IP"},
	{re(`(\.\w+)(?::[0-9]+)+`), "${1}:LINE"},
	{re(`([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+`), "${1}"},
	{re(`CPU#[0-9]+`), "CPU"},
	{re(`(\W)(\d+)(\W|$)`), "${1}NUM${3}"},
	{re(`(\W)(\d+)(\W|$)`), "${1}NUM${3}"}, // again: "0,1,2" overlaps
	{re(`\d{7,}`), "NUM"},
}

// stableTitle replaces the numbers, drops control bytes, squeezes blanks and caps the
// length at 120 (a title from interleaved lines can be very long).
func stableTitle(t string) string {
	if strings.IndexFunc(t, func(r rune) bool { return r >= '0' && r <= '9' || r < 0x20 || r >= 0x7f || r == '\t' }) < 0 {
		return t
	}
	for _, n := range titleNumbers {
		t = n.re.ReplaceAllString(t, n.with)
	}
	b := make([]byte, 0, len(t))
	prev := byte(' ')
	for i := 0; i < len(t) && i < 120; i++ {
		c := t[i]
		switch {
		case c == '\t':
			c = ' '
		case c < 0x20 || c >= 0x7f:
			continue
		}
		if c == ' ' && prev == ' ' {
			continue
		}
		b = append(b, c)
		prev = c
	}
	return strings.TrimSpace(string(b))
}

// hardwareArch: QEMU's machine names in "Hardware name:" lines.
func hardwareArch(ls []line) string {
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		if !strings.HasPrefix(t, "Hardware name: ") {
			continue
		}
		switch {
		case strings.Contains(t, "QEMU Standard PC"):
			return "x86_64"
		case strings.Contains(t, "linux,dummy-virt"), strings.Contains(t, "QEMU KVM Virtual Machine"):
			return "arm64"
		}
	}
	return ""
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

// taskCaller returns the line's printk caller id if it is a task's ("T95"), else "".
func taskCaller(l line) string {
	if strings.HasPrefix(l.caller, "T") {
		return l.caller
	}
	return ""
}

// otherTask: the line was printed by a task other than caller (CPU contexts such as
// NMI backtraces of other CPUs are kept).
func otherTask(l line, caller string) bool {
	return strings.HasPrefix(l.caller, "T") && l.caller != caller
}

// allocTraceRe: KASAN's and KFENCE's other stacks.
var allocTraceRe = regexp.MustCompile(`^(?:Allocated|Freed|allocated|freed|Last potentially related work creation|Second to last potentially related work creation) by task \d+`)

// corruption finds what makes a report unreliable beyond its extent: a stack header
// ("Call Trace:", "backtrace:", "Freed by task N:") with no frame after it.
func corruption(ls []line) string {
	for i, l := range ls {
		t := strings.TrimSpace(l.text)
		if !traceStart(t) && !(t != "" && strings.IndexByte("AFafLS", t[0]) >= 0 && allocTraceRe.MatchString(t)) {
			continue
		}
		ok := false
		for j := i + 1; j < len(ls) && j <= i+15 && !ok; j++ {
			u := strings.TrimSpace(ls[j].text)
			ok = frameLine(u) != nil || strings.Contains(u, "(stack is not available)") || strings.HasPrefix(u, "<")
		}
		if !ok {
			return "no frames after " + strings.TrimSuffix(t, ":")
		}
	}
	return ""
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
		if !strings.HasPrefix(t, "CPU: ") {
			continue
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
func frames(ls []line, r *Report, ru *rule) ([]Frame, []string) {
	var fs []Frame
	var others []string
	var other strings.Builder
	inTrace, traceDone, inOther := false, false, false
	var lr *Frame
	for _, l := range ls {
		t := strings.TrimRight(l.text, " ")
		trimmed := strings.TrimSpace(t)
		if r.Kernel == "" && !inOther && strings.HasPrefix(trimmed, "CPU: ") {
			if sm := cpuLineRe.FindStringSubmatch(trimmed); sm != nil {
				r.CPU, _ = strconv.Atoi(sm[1])
				r.PID, _ = strconv.Atoi(sm[2])
				r.Comm = strings.Clone(sm[3])
				r.Kernel = strings.Clone(sm[4])
			}
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
		if sm := ripLine(trimmed); sm != nil {
			if strings.HasPrefix(trimmed, "RIP") {
				r.Arch = "x86_64"
			} else {
				r.Arch = "arm64"
			}
			if inTrace && !strings.HasPrefix(trimmed, "RIP: 0033") && len(fs) > 0 && interruptEntryRe.MatchString(cleanFunc(fs[len(fs)-1].Func)) {
				// 6.x prints the interrupted context's registers inside the trace,
				// after its interrupt entry (RCU stalls): that RIP is a real frame.
				f := Frame{Func: strings.Clone(sm[3]), Module: strings.Clone(sm[6])}
				f.Off, _ = strconv.ParseUint(sm[4], 16, 64)
				f.Size, _ = strconv.ParseUint(sm[5], 16, 64)
				fs = append(fs, f)
				continue
			}
			// Only the first RIP/pc of the crashing context is the fault site; later
			// ones (4.x interrupted-context dumps, "RIP: 0033" user space) are not.
			if len(fs) == 0 && !traceDone && !strings.HasPrefix(trimmed, "RIP: 0033") {
				f := Frame{Func: strings.Clone(sm[3]), Module: strings.Clone(sm[6])}
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
		if sm := lrLine(trimmed); sm != nil && lr == nil && !traceDone {
			lr = &Frame{Func: strings.Clone(sm[1]), Module: strings.Clone(sm[4])}
			lr.Off, _ = strconv.ParseUint(sm[2], 16, 64)
			lr.Size, _ = strconv.ParseUint(sm[3], 16, 64)
			continue
		}
		if traceStart(trimmed) || ru != nil && ru.typ == KMSAN && !inTrace && !traceDone && len(fs) == 0 && strings.HasPrefix(trimmed, "BUG: KMSAN:") {
			// KMSAN prints its stack right after its first line.
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
		if sm := frameLine(inlineMarker(t)); sm != nil {
			f := Frame{Func: strings.Clone(sm[4]), Module: strings.Clone(sm[7]), Unreliable: sm[1] != "" || sm[3] != ""}
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
		if sm := rawFrameRe.FindStringSubmatch(trimmed); sm != nil {
			// An address the kernel could not name (a module's init section freed,
			// kmemleak's "[<addr>] 0xffffffffc01d2036", 6.x's "? 0xffffffffa0000000"
			// for a module's base): kept, never the culprit.
			a := sm[1]
			if a == "" {
				a = strings.TrimPrefix(sm[2], "0x")
			}
			pc, _ := strconv.ParseUint(a, 16, 64)
			fs = append(fs, Frame{PC: pc, Unreliable: true})
			continue
		}
		switch {
		case strings.HasPrefix(trimmed, "<") && strings.HasSuffix(trimmed, ">"):
			// <TASK>, <IRQ>, <NMI>, <SOFTIRQ>, <EOI>: only x86 marks stack sections (a
			// workqueue or lockdep report has no registers to tell the arch by)
			if r.Arch == "" {
				r.Arch = "x86_64"
			}
			continue
		case strings.HasPrefix(trimmed, "Exception stack"),
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

// ripLine, lrLine and frameLine run their regexps only on lines that can match.
func ripLine(t string) []string {
	if !strings.HasPrefix(t, "RIP: ") && !strings.HasPrefix(t, "pc : ") && !strings.HasPrefix(t, "PC is at ") {
		return nil
	}
	return ripRe.FindStringSubmatch(t)
}

func lrLine(t string) []string {
	if !strings.HasPrefix(t, "lr : ") && !strings.HasPrefix(t, "LR is at ") {
		return nil
	}
	return lrRe.FindStringSubmatch(t)
}

// frameLine is frameRe.FindStringSubmatch written out: it runs on every trace line.
// TestFrameLine holds it to frameRe.
func frameLine(t string) []string {
	if !strings.Contains(t, "+0x") {
		return nil
	}
	s := strings.TrimLeft(t, " \t\n\f\r") // regexp's \s
	var sm [8]string
	if strings.HasPrefix(s, "? ") {
		sm[1], s = "? ", s[2:]
	}
	if strings.HasPrefix(s, "[<") {
		end := strings.Index(s, ">] ")
		if end > 2 && isHex(s[2:end]) {
			sm[2], s = s[2:end], s[end+3:]
		} else if end > 2 && isPtrval(s[2:end]) {
			s = s[end+3:] // an address printk would not show yet: no PC
		}
	}
	if strings.HasPrefix(s, "? ") {
		sm[3], s = "? ", s[2:]
	}
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == 0 || !strings.HasPrefix(s[i:], "+0x") {
		return nil
	}
	sm[4] = s[:i]
	j := i + 3
	k := j
	for k < len(s) && isHexByte(s[k]) {
		k++
	}
	if k == j || !strings.HasPrefix(s[k:], "/0x") {
		return nil
	}
	sm[5] = s[j:k]
	l := k + 3
	m := l
	for m < len(s) && isHexByte(s[m]) {
		m++
	}
	if m == l {
		return nil
	}
	sm[6] = s[l:m]
	end := m
	if strings.HasPrefix(s[m:], " [") {
		n := m + 2
		for n < len(s) && s[n] != ']' && s[n] != ' ' && s[n] != '\t' && s[n] != '\n' && s[n] != '\r' && s[n] != '\f' {
			n++
		}
		if n < len(s) && s[n] == ']' && n > m+2 {
			sm[7], end = s[m+2:n], n+1
		}
	}
	sm[0] = t[:len(t)-len(s)+end] // s is a suffix of t
	return sm[:]
}

// isPtrval: the placeholder %p prints for addresses before its hashing key is ready
// (early boot, or a TCG guest without entropy): "(____ptrval____)", 4.x "   (ptrval)".
func isPtrval(a string) bool {
	a = strings.TrimLeft(a, " ")
	return strings.HasPrefix(a, "(") && strings.HasSuffix(a, ")") && strings.Trim(a[1:len(a)-1], "_") == "ptrval"
}

// inlineMarker drops a 3.x "<IRQ>  " or "<EOI>  " that shares its line with a frame.
func inlineMarker(t string) string {
	u := strings.TrimLeft(t, " ")
	for _, m := range []string{"<IRQ>", "<EOI>", "<NMI>"} {
		if strings.HasPrefix(u, m) && len(u) > len(m) && u[len(m)] == ' ' {
			return u[len(m):]
		}
	}
	return t
}

func firstNonSpace(s string) byte {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return s[i]
		}
	}
	return 0
}

var rawFrameRe = regexp.MustCompile(`^(?:\? )?(?:\[<([0-9a-f]+)>\] )?(0x[0-9a-f]+|\(null\))$`)

var hexDumpRe = regexp.MustCompile(`^[0-9a-f]{4}:\s`)
