package report

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// rule describes one kind of report as data: how its first line looks, what its title
// is, which frames it also skips, and where its title's function comes from. The
// table follows the titles syzbot gives (the names kernel developers search lore and
// the syzbot dashboard by), made the same across kernel eras and arches.
type rule struct {
	start *regexp.Regexp
	typ   Type
	// title: "%s" is the guilty function, "$1".."$9" submatches of start, "$0" the whole
	// match without "BUG: ", "$access" Read or Write (KASAN's access line).
	title string
	// alt are alternative titles in the same format (syzbot's "bad-access in X" etc.), so a
	// bug seen once as a NULL deref and once as a paging request can be matched.
	alt []string
	// skip: frames this kind skips besides the shared infrastructure list, matched
	// anywhere in the name (lockdep's "lock", kmemleak's "alloc", ODEBUG's "timer_").
	skip *regexp.Regexp
	// lineFunc: the submatch of start that names a function ("in FUNC+0x", WARNING's
	// "at file:line FUNC+0x"); it is the first candidate, skipped like any frame.
	lineFunc int
	// funcRe: a later line of the report naming the function first (lockdep's "at:
	// FUNC+0x", the workqueue's "last function: FUNC"); the stack is the fallback.
	funcRe *regexp.Regexp
	// stall: the culprit of a stall is where the looping code was entered, not where the
	// timer interrupt caught it: the frame before the first dispatch anchor (syscall
	// entry, vfs_write, process_one_work, ...), after the interrupt entry.
	stall bool
	// from: where the stack that names the culprit begins, tried in order (see
	// stackFrom); nil means the crashing context's stack (the RIP/pc line, then the
	// first call trace). When none is found the title says "in corrupted".
	from []stackFrom
	// sigFrom: where the signature's frames come from when from finds no culprit
	// (the title then says "in corrupted", as syzbot's does): distribution kernels print
	// an RCU stall's interrupted registers instead of the interrupt's frames, and a bad
	// page without page_owner has no allocation stack, yet two such bugs must not sign
	// alike.
	sigFrom []stackFrom
	// needs: a line the report's text must hold for the title format to apply; without
	// it the report was cut short, and its title is its start line as printed (without
	// "BUG: "), as syzbot names it, and it is corrupted.
	needs *regexp.Regexp
	// hang: hung tasks are grouped by what they wait on (rtnl_lock, synchronize_rcu).
	hang bool
	// noFrames: the report needs no stack of its own; a missing trace is not corrupted.
	noFrames bool
	// oneLine: the report is its first line (and the same line repeated right after it,
	// as unregister_netdevice prints every 10 s): complete as soon as it is printed.
	oneLine bool
	// longHeader: paragraphs of text (lock chains, hex dumps) come before the stack, so
	// unrelated-looking lines do not end the report until a trace started.
	longHeader bool
	// untimed: also printed by user space with no printk timestamp (syzkaller's
	// executor prints "BUG: memory leak" and kmemleak's file contents).
	untimed bool
	// kernelText: only the kernel prints this line, so a console without timestamps
	// needs no report body after it to tell it from user space's output.
	kernelText bool
	// corrupted: this start line on its own means the real header was lost.
	corrupted string
	// sigTitle, when set, replaces title in the signature: the same bug on another arch.
	sigTitle string
	// dropOffsets: "+0x71/0xd0" after functions named in the title is removed.
	dropOffsets bool
	// lit is the literal text every match of start begins with (from the pattern), so
	// matchStart runs the regexp only on lines that begin with it.
	lit string
	// needle is the longest literal every match contains, checked before the regexp.
	needle string
}

// stackFrom says where in a report the stack that names its culprit begins: after the
// first line matching at (nil: the start line), then, with pc, at the next RIP/pc line
// (its function is the first frame), then, with trace, after the next "Call Trace:".
// The frames run from there to the next stack header. An RCU stall's stalled code
// follows the timer interrupt that caught it; a bad page's culprit is where the page
// was last allocated.
type stackFrom struct {
	at *regexp.Regexp
	// funcs: then the next nfuncs lines matching funcs each give a frame (submatch 1):
	// lockdep's "at: FUNC" lines. only: no trace after them. noSkip: the first of them
	// names the report whatever it is.
	funcs        *regexp.Regexp
	nfuncs       int
	only, noSkip bool
	// line: the start line's function (the rule's lineFunc) is the first frame.
	line      bool
	pc, trace bool
}

// The usual places, as syzbot reads them: a fault names the faulting instruction
// unless it is machinery, then the call trace; a trap with no trace of its own only the
// instruction; a WARNING the instruction, else the call trace; reports printed by a
// checker (lockdep, might_sleep, UBSAN) only the call trace; sanitizers the function of
// their first line, then the call trace.
var (
	pcTrace   = []stackFrom{{pc: true, trace: true}}
	pcOnly    = []stackFrom{{pc: true}}
	warnFrom  = []stackFrom{{pc: true}, {trace: true}}
	traceOnly = []stackFrom{{trace: true}}
	lineTrace = []stackFrom{{line: true, trace: true}}
)

// stallFrom: an RCU stall's stalled context, after the timer interrupt (the RIP line of
// the interrupted code, or the frames after the interrupt on 3.x, arm and arm64).
var stallFrom = []stackFrom{
	{at: re(`apic_timer_interrupt`), pc: true},
	{at: re(`apic_timer_interrupt|Exception stack|el1h_64_irq`)},
}

// faultFrom: the faulting instruction, then the call trace (soft lockups, stack guard).
var faultFrom = []stackFrom{{pc: true, trace: true}}

// rulesByFirst lists, for each first byte of a line, the rules (in order) whose start
// can match a line beginning with it: most console lines are rejected with one lookup.
var rulesByFirst [256][]int

func init() {
	for i := range rules {
		rules[i].lit = literalPrefix(rules[i].start.String())
		rules[i].needle = longestLiteral(rules[i].start.String())
		for b, ok := range firstBytes(rules[i].start.String()) {
			if ok {
				rulesByFirst[b] = append(rulesByFirst[b], i)
			}
		}
	}
}

// firstBytes returns which bytes a match of pat can begin with.
func firstBytes(pat string) (set [256]bool) {
	all := func() {
		for b := range set {
			set[b] = true
		}
	}
	r, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		all()
		return set
	}
	prog, err := syntax.Compile(r.Simplify())
	if err != nil {
		all()
		return set
	}
	seen := map[uint32]bool{}
	var walk func(pc uint32)
	walk = func(pc uint32) {
		if seen[pc] {
			return
		}
		seen[pc] = true
		in := prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			walk(in.Out)
			walk(in.Arg)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			walk(in.Out)
		case syntax.InstRune, syntax.InstRune1:
			if syntax.Flags(in.Arg)&syntax.FoldCase != 0 {
				all()
				return
			}
			for j := 0; j+1 < len(in.Rune) || in.Op == syntax.InstRune1 && j == 0; j += 2 {
				lo, hi := in.Rune[j], in.Rune[j]
				if in.Op == syntax.InstRune && j+1 < len(in.Rune) {
					hi = in.Rune[j+1]
				}
				for c := lo; c <= hi && c < 256; c++ {
					set[c] = true
				}
				if hi >= 128 {
					for c := 128; c < 256; c++ {
						set[c] = true
					}
				}
				if in.Op == syntax.InstRune1 {
					break
				}
			}
		default: // any rune, or an empty match
			all()
		}
	}
	walk(uint32(prog.Start))
	return set
}

// longestLiteral returns the longest literal string of the pattern's top-level
// sequence: text every match contains.
func longestLiteral(pat string) string {
	r, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return ""
	}
	r = r.Simplify()
	best := ""
	consider := func(x *syntax.Regexp) {
		if x.Op == syntax.OpLiteral && x.Flags&syntax.FoldCase == 0 && len(string(x.Rune)) > len(best) {
			best = string(x.Rune)
		}
	}
	if r.Op == syntax.OpConcat {
		for _, x := range r.Sub {
			consider(x)
		}
	} else {
		consider(r)
	}
	return best
}

// literalPrefix returns the literal text an anchored pattern begins with.
func literalPrefix(pat string) string {
	if !strings.HasPrefix(pat, "^") {
		return ""
	}
	var b strings.Builder
	for i := 1; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat) && strings.IndexByte(`.[]()+*?{}|^$\\`, pat[i+1]) >= 0:
			i++
			c = pat[i]
		case strings.IndexByte(`.[]()+*?{}|^$\\`, c) >= 0:
			return trimOptional(b.String(), pat, i)
		}
		b.WriteByte(c)
	}
	return b.String()
}

// trimOptional drops the last literal byte when the quantifier at pat[i] makes it
// optional or repeated ("\\.?", "s*").
func trimOptional(lit, pat string, i int) string {
	if len(lit) > 0 && strings.IndexByte("?*{", pat[i]) >= 0 {
		return lit[:len(lit)-1]
	}
	return lit
}

const fn = `([A-Za-z0-9_.$]+)` // a function name in a start line

func re(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// warnAt matches a WARN() from a source file in every era's format: "WARNING: CPU: 0 PID:
// 1 at lib/refcount.c:25 FUNC", 3.x's "WARNING: at lib/...", 6.18's "WARNING: lib/... at".
func warnAt(file string) *regexp.Regexp { return re(`^WARNING:(?:.*? at)? ` + file) }

// kasanAccessRe: KASAN's access line, "Read of size 8 at addr" / "Write at addr".
var kasanAccessRe = re(`(?:Read|Write) (?:of size|at addr) [0-9a-f]+`)

// lockAtFuncRe is lockdep's "at: FUNC+0x" with an optional 4.x address; pcFuncRe a
// 4.x "[<addr>] FUNC+0x" line.
var (
	lockAtFuncRe = re(`at:(?: \[<?(?:0x)?[0-9a-f]+>?\])? +([A-Za-z0-9_]+)[.+]`)
	pcFuncRe     = re(`\[<?(?:0x)?[0-9a-f]+>?\] +([A-Za-z0-9_]+)[.+]`)
)

// lockTaken: the lock named after the line saying what the task did with it.
func lockTaken(what string) []stackFrom {
	return []stackFrom{{at: re(regexp.QuoteMeta(what)), funcs: lockAtFuncRe, nfuncs: 1, only: true, noSkip: true}}
}

// lockAtRe is lockdep's "(&lock){+.+.}-{3:3}, at: FUNC+0x.." / 4.x "at: [<addr>] FUNC+0x".
var lockAtRe = re(`, at: (?:\[<[0-9a-f]+>\] )?` + fn + `\+0x`)

// rules, most specific first: the first rule whose start matches a line wins.
var rules = []rule{
	// KASAN, KMSAN, KCSAN, KFENCE: their first line also starts with "BUG:".
	{start: re(`^BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in ` + fn), typ: KASAN,
		title: "KASAN: invalid-free in %s", alt: []string{"invalid-free in %s"}, lineFunc: 1,
		skip: re(`slab_|kfree|vunmap|vfree|kmem_cache_free`), from: lineTrace},
	{start: re(`^BUG: KASAN: ([a-z-]+) in ` + fn), typ: KASAN, title: "KASAN: $1 $access in %s", needs: kasanAccessRe,
		alt: []string{"bad-access in %s"}, lineFunc: 2, skip: re(`kernel_fault|tag_check|mem_abort|^el1_|^el1h_`), from: lineTrace},
	{start: re(`^BUG: KASAN: ([a-z-]+) on address`), typ: KASAN, title: "KASAN: $1 $access", noFrames: true},
	{start: re(`^BUG: KMSAN: ([a-z-]+) in ` + fn), typ: KMSAN, title: "KMSAN: $1 in %s",
		alt: []string{"bad-access in %s"}, lineFunc: 2, from: []stackFrom{{}}, noFrames: true,
		// Crypto's generic routines are where uninit data is used, not where the bug is.
		skip: re(`alloc_skb|netlink_ack|netlink_rcv_skb|_encrypt$|^(?:crypto|cipher|drbg|rng)_`)},
	{start: re(`^BUG: KCSAN: (.*)`), typ: KCSAN, title: "KCSAN: $1", noFrames: true, dropOffsets: true},
	{start: re(`^BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in ` + fn), typ: KFENCE,
		title: "KFENCE: $1 $2 in %s", alt: []string{"bad-access in %s"}, lineFunc: 3, longHeader: true, from: []stackFrom{{line: true}}},
	{start: re(`^BUG: KFENCE: invalid free in ` + fn), typ: KFENCE, title: "KFENCE: invalid free in %s",
		alt: []string{"invalid-free in %s"}, lineFunc: 1, longHeader: true, from: []stackFrom{{line: true}}},
	{start: re(`^BUG: KFENCE: invalid (read|write) in ` + fn), typ: KFENCE, title: "KFENCE: invalid $1 in %s",
		alt: []string{"bad-access in %s"}, lineFunc: 2, longHeader: true, from: []stackFrom{{line: true}}},
	{start: re(`^BUG: KFENCE: memory corruption in ` + fn), typ: KFENCE, title: "KFENCE: memory corruption in %s",
		lineFunc: 1, longHeader: true, from: []stackFrom{{line: true}}},

	// Faults (6.12+ x86 prefixes "Oops: " to the trap's name). 6.x x86's "BUG: kernel NULL pointer dereference, address:" and arm64's
	// "Unable to handle kernel NULL pointer dereference at virtual address" get one title.
	{start: re(`^(?:BUG: kernel NULL pointer dereference, address|BUG: unable to handle kernel NULL pointer dereference|BUG: Kernel NULL pointer dereference|Unable to handle kernel NULL pointer dereference)`),
		typ: NullDeref, title: "BUG: unable to handle kernel NULL pointer dereference in %s", alt: []string{"bad-access in %s"}},
	{start: re(`^(?:BUG: unable to handle page fault for address|BUG: unable to handle kernel paging request|Unable to handle kernel paging request|Unable to handle kernel (?:read|write|execute) from|BUG: Unable to handle kernel data access)`),
		typ: PagingRequest, title: "BUG: unable to handle kernel paging request in %s", alt: []string{"bad-access in %s"}, from: pcTrace},
	{start: re(`^Unable to handle kernel access to user memory`), typ: PagingRequest,
		title: "BUG: unable to handle kernel access to user memory in %s", alt: []string{"bad-access in %s"}, from: pcTrace},
	{start: re(`^(?:Oops: )?(?:segment-related )?general protection fault`), typ: GPF, title: "general protection fault in %s", alt: []string{"bad-access in %s"}, from: pcTrace},
	{start: re(`^(?:Oops: )?stack segment: `), typ: GPF, title: "stack segment fault in %s", from: pcTrace},
	{start: re(`^PANIC: double fault`), typ: GPF, title: "PANIC: double fault in %s", from: pcOnly},
	{start: re(`^(?:Oops: )?(?:divide error|divide_error): `), typ: DivideError, title: "divide error in %s", from: pcOnly},
	{start: re(`^(?:Oops: )?invalid opcode: `), typ: InvalidOpcode, title: "invalid opcode in %s", from: pcOnly},
	{start: re(`^(?:Oops: )?int3: `), typ: Oops, title: "int3 in %s", from: pcTrace},
	{start: re(`^Internal error: Oops - BUG`), typ: Bug, title: "kernel BUG in %s", from: pcTrace},
	// arm64's undefined instruction is x86's invalid opcode: syzbot titles them apart, the
	// signature does not, so one bug seen on both arches is one bug.
	{start: re(`^Internal error: Oops - [Uu]ndefined instruction`), typ: InvalidOpcode, title: "Internal error in %s",
		alt: []string{"bad-access in %s"}, sigTitle: "invalid opcode in %s", from: pcTrace},
	{start: re(`^Internal error: `), typ: Oops, title: "Internal error in %s", alt: []string{"bad-access in %s"}, from: pcTrace},
	{start: re(`^Unhandled fault: `), typ: Oops, title: "Unhandled fault in %s", alt: []string{"bad-access in %s"}, from: pcTrace},
	{start: re(`^Alignment trap: `), typ: Oops, title: "Alignment trap in %s", from: pcTrace},

	// BUG()s with a known source file, and the messages printed just before them.
	{start: re(`^(?:list_add|list_del|list_add_rcu|list_del_rcu) corruption`), typ: ListCorruption,
		title: "BUG: corrupted list in %s", alt: []string{"bad-access in %s"}, from: traceOnly},
	{start: re(`^kernel BUG at lib/list_debug\.c`), typ: ListCorruption, title: "BUG: corrupted list in %s",
		alt: []string{"bad-access in %s"}, from: traceOnly},
	{start: re(`^usercopy: Kernel memory (?:exposure|overwrite) attempt detected`), typ: Usercopy,
		title: "BUG: bad usercopy in %s", skip: re(`usercopy|__check`), from: traceOnly},
	{start: re(`^kernel BUG at mm/usercopy\.c`), typ: Usercopy, title: "BUG: bad usercopy in %s", skip: re(`usercopy|__check`), from: traceOnly},
	{start: re(`^kernel BUG at `), typ: Bug, title: "kernel BUG in %s", skip: re(`^skb_`), from: pcTrace},
	{start: re(`^BUG kmalloc-.*: Object already free`), typ: Bug, title: "BUG: Object already free", noFrames: true},

	// Lockdep. 4.x and older print "[ INFO: ... ]" banners for the same reports, and
	// syzbot names those after the lock being taken, as printed, with nothing skipped.
	{start: re(`^WARNING: possible circular locking dependency detected`), typ: Lockdep,
		title: "possible deadlock in %s", longHeader: true, needs: re(`is trying to acquire lock`),
		skip: re(`process_one_work|flush_workqueue|drain_workqueue|destroy_workqueue`),
		from: []stackFrom{{funcs: lockAtFuncRe, nfuncs: 2}}},
	{start: re(`^(?:\[ )?INFO: possible circular locking dependency detected`), typ: Lockdep,
		title: "possible deadlock in %s", longHeader: true, from: lockTaken("is trying to acquire lock")},
	{start: re(`^(?:WARNING: |\[ INFO: |INFO: )possible recursive locking detected`), typ: Lockdep,
		title: "possible deadlock in %s", longHeader: true, from: lockTaken("is trying to acquire lock")},
	{start: re(`^(?:WARNING: |\[ INFO: |INFO: )possible irq lock inversion dependency detected`), typ: Lockdep,
		title: "possible deadlock in %s", longHeader: true, from: lockTaken("just changed the state of lock")},
	{start: re(`^WARNING: \S+-safe -> \S+-unsafe lock order detected`), typ: Lockdep,
		title: "possible deadlock in %s", longHeader: true, from: []stackFrom{{at: re(`which became .* at:`)}}},
	{start: re(`^(?:\[ INFO: |INFO: )?\S+-safe -> \S+-unsafe lock order detected`), typ: Lockdep,
		title: "possible deadlock in %s", longHeader: true, from: lockTaken("is trying to acquire")},
	{start: re(`^WARNING: inconsistent lock state`), typ: Lockdep,
		title: "inconsistent lock state in %s", longHeader: true, from: traceOnly},
	{start: re(`^(?:\[ INFO: |INFO: )inconsistent lock state`), typ: Lockdep,
		title: "inconsistent lock state in %s", longHeader: true, from: lockTaken("takes")},
	{start: re(`^(WARNING|BUG): bad unlock balance detected!`), typ: Lockdep, title: "$1: bad unlock balance in %s",
		longHeader: true, from: []stackFrom{{funcs: pcFuncRe, nfuncs: 1, trace: true}}},
	{start: re(`^WARNING: held lock freed!`), typ: Lockdep, title: "WARNING: held lock freed in %s",
		longHeader: true, from: []stackFrom{{funcs: lockAtFuncRe, nfuncs: 1, only: true, noSkip: true}}},
	{start: re(`^BUG: held lock freed!`), typ: Lockdep, title: "BUG: held lock freed in %s",
		longHeader: true, from: []stackFrom{{funcs: pcFuncRe, nfuncs: 1, only: true, noSkip: true}}},
	{start: re(`^(WARNING|BUG): .*still has locks held!`), typ: Lockdep, title: "$1: still has locks held in %s",
		longHeader: true, from: []stackFrom{{funcs: lockAtFuncRe, nfuncs: 1, only: true, noSkip: true}}},
	{start: re(`^(WARNING|BUG): lock held when returning to user space`), typ: Lockdep,
		title: "$1: lock held when returning to user space in %s", longHeader: true, noFrames: true,
		from: lockTaken("leaving the kernel with locks still held")},
	{start: re(`^WARNING: Nested lock was not taken`), typ: Lockdep, title: "WARNING: nested lock was not taken in %s", longHeader: true, from: warnFrom},
	{start: re(`^(?:\[ )?(WARNING|INFO): suspicious RCU usage`), typ: Lockdep, title: "$1: suspicious RCU usage in %s",
		needs: re(`[a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+`),
		skip:  re(`rcu|kmem|slab`), longHeader: true, from: traceOnly},
	{start: re(`^INFO: trying to register non-static key`), typ: Lockdep,
		title: "INFO: trying to register non-static key in %s", skip: re(`stack|lock|IRQ`), from: traceOnly},
	{start: re(`^BUG: Invalid wait context`), typ: Lockdep, title: "WARNING: locking bug in %s",
		skip: re(`lock_sock|release_sock`), longHeader: true, from: traceOnly},

	// WARN()s whose file says what they are.
	{start: warnAt(`lib/debugobjects\.c`), typ: Warning, title: "WARNING: ODEBUG bug in %s",
		skip: re(`debug_|rcu|hrtimer_|timer_|work_|percpu_|vunmap|vfree|__free_|kobject_`), from: warnFrom},
	{start: warnAt(`mm/usercopy\.c`), typ: Usercopy, title: "WARNING: bad usercopy in %s", skip: re(`usercopy|__check`), from: warnFrom},
	{start: warnAt(`lib/kobject\.c`), typ: Warning, title: "WARNING: kobject bug in %s", skip: re(`kobject_`), from: warnFrom},
	{start: warnAt(`fs/proc/generic\.c`), typ: Warning, title: "WARNING: proc registration bug in %s", skip: re(`proc_`), from: warnFrom},
	{start: warnAt(`lib/refcount\.c`), typ: Refcount, title: "WARNING: refcount bug in %s", skip: re(`refcount|kobject_`), from: warnFrom},
	{start: warnAt(`kernel/locking/lockdep\.c.*lock_`), typ: Lockdep, title: "WARNING: locking bug in %s",
		skip: re(`lock_sock|release_sock`), from: warnFrom},
	{start: warnAt(`mm/vmalloc\.c:\d+ __vmalloc_node`), typ: Warning, title: "WARNING: zero-size vmalloc in %s", from: warnFrom},
	{start: warnAt(`mm/\S+\.c:\d+ k?.?malloc`), typ: Warning, title: "WARNING: kmalloc bug in %s",
		skip: re(`kmalloc|krealloc|slab|kmem`), from: warnFrom},
	// 6.18's "WARNING: file:line at FUNC+0x.., CPU#0: comm/pid", 3.x–6.x's
	// "WARNING: CPU: 0 PID: 1 at file:line FUNC+0x..", 3.x's "WARNING: at file:line FUNC()".
	// The function comes from the stack (the RIP/pc line first), not the start line: the
	// line names the function that warned, often a helper (usb_submit_urb, __flush_work)
	// that a driver misused.
	{start: re(`^WARNING: .*? usb_submit_urb`), typ: Warning, title: "WARNING in %s/usb_submit_urb", from: warnFrom},
	{start: re(`^WARNING: (?:CPU: \d+ PID: -?\d+ )?at \S+ ` + fn), typ: Warning, title: "WARNING in %s", from: warnFrom},
	{start: re(`^WARNING: (?:\[.*?\] )?\S+:\d+ at (?:` + fn + `\+0x|0x)`), typ: Warning, title: "WARNING in %s", from: warnFrom},
	{start: re(`^WARNING: (?:CPU: \d+ PID: -?\d+ )?at \S+$`), typ: Warning, title: "WARNING in %s", from: warnFrom},

	// Other BUG:s.
	{start: re(`^BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)`),
		typ: Bug, title: "BUG: $1 $2 in %s", skip: re(`spin_|_lock|_unlock`), from: traceOnly},
	{start: re(`^(?:watchdog: |NMI watchdog: )?BUG: soft lockup`), typ: SoftLockup, title: "BUG: soft lockup in %s",
		alt: []string{"stall in %s"}, stall: true, from: faultFrom},
	{start: re(`^BUG: scheduling while atomic`), typ: AtomicSleep, title: "BUG: scheduling while atomic in %s", skip: re(`schedule`), from: traceOnly},
	{start: re(`^BUG: sleeping function called from invalid context`), typ: AtomicSleep,
		title: "BUG: sleeping function called from invalid context in %s", from: traceOnly},
	{start: re(`^BUG: using ([a-z_]+)\(\) in preemptible`), typ: AtomicSleep, title: "BUG: using $1() in preemptible code in %s",
		skip: re(`dump_stack|preempt|debug_|processor_id|this_cpu`), from: traceOnly},
	{start: re(`^BUG: workqueue leaked lock or atomic`), typ: Lockdep, title: "BUG: workqueue leaked lock or atomic in %s",
		funcRe: re(`last function: ` + fn), noFrames: true, longHeader: true},
	{start: re(`^BUG: workqueue lockup`), typ: Bug, title: "BUG: workqueue lockup", noFrames: true},
	{start: re(`^(?:BUG: memory leak$|unreferenced object 0x[0-9a-f]+ \(size \d+\):)`), typ: MemoryLeak, title: "memory leak in %s",
		skip:       re(`kmemleak|mmap|kmem|slab|alloc|create_object|idr_get|list_lru_init|kasprintf|kvasprintf|pcpu_create|strdup|strndup|memdup`),
		longHeader: true, untimed: true, from: []stackFrom{{at: re(`backtrace(?: \(crc [0-9a-f]*\))?:`)}}},
	{start: re(`^BUG: .*stack guard page was hit at`), typ: StackOverflow, title: "BUG: stack guard page was hit in %s",
		alt: []string{"stack-overflow in %s"}, stall: true, from: faultFrom},
	{start: re(`^BUG: Bad page (state|cache)`), typ: BadPageState, title: "BUG: Bad page $1 in %s", from: []stackFrom{{at: re(`page last allocated`)}}, sigFrom: traceOnly,
		skip: re(`^bad_page|(?:free|put|get|update|release)_page|free_unref|^_*folio|truncate_inode_pages|page_frag_free|alloc|vmap|page_owner`)},
	{start: re(`^BUG: Bad page map`), typ: BadPageState, title: "BUG: Bad page map", noFrames: true},
	{start: re(`^BUG: Bad rss-counter state`), typ: Bug, title: "BUG: Bad rss-counter state", noFrames: true},
	{start: re(`^BUG: non-zero (nr_ptes|nr_pmds) on freeing mm`), typ: Bug, title: "BUG: non-zero $1 on freeing mm", noFrames: true},
	{start: re(`^BUG: Dentry .* still in use \(\d+\) \[(unmount) of ([^\]]+)\]`), typ: Bug, title: "BUG: Dentry still in use in $1",
		alt: []string{"BUG: Dentry still in use [$1 of $2]"}},
	{start: re(`^BUG: Dentry .* still in use`), typ: Bug, title: "BUG: Dentry still in use in %s"},
	// Hashed pointers ("(ptrval)") leave the register's name out, as syzbot does.
	{start: re(`^WARNING: kernel stack regs at .*\(ptrval\) in \S* has bad '[^']+' value`), typ: Warning,
		title: "WARNING: kernel stack regs has bad value", noFrames: true},
	{start: re(`^WARNING: kernel stack frame pointer at .*\(ptrval\) in \S* has bad value`), typ: Warning,
		title: "WARNING: kernel stack regs has bad value", noFrames: true},
	{start: re(`^WARNING: kernel stack regs at [0-9a-f]+ in \S* has bad '([^']+)' value`), typ: Warning,
		title: "WARNING: kernel stack regs has bad '$1' value", noFrames: true},
	{start: re(`^WARNING: kernel stack frame pointer at [0-9a-f]+ in \S* has bad value`), typ: Warning,
		title: "WARNING: kernel stack frame pointer has bad value", noFrames: true},

	// Lockups, stalls, hangs.
	{start: re(`^(?:NMI watchdog: |watchdog: )?Watchdog detected hard LOCKUP`), typ: HardLockup, title: "watchdog: hard lockup in %s", stall: true},
	{start: re(`^(?:rcu: )?INFO: rcu_(?:preempt|sched|bh|tasks) (?:self-)?detected(?: expedited)? stall`), typ: RCUStall,
		title: "INFO: rcu detected stall in %s", alt: []string{"stall in %s"}, stall: true, skip: re(`apic_timer_interrupt|rcu`), from: stallFrom, sigFrom: faultFrom},
	{start: re(`^INFO: task .+ blocked (?:in I/O wait )?for more than \d+ seconds`), typ: HungTask, title: "INFO: task hung in %s",
		alt: []string{"hang in %s"}, hang: true, from: traceOnly},
	{start: re(`^INFO: task .* can't die for more than .* seconds`), typ: HungTask, title: "INFO: task can't die in %s",
		alt: []string{"hang in %s"}, skip: re(`schedule`), from: traceOnly},
	{start: re(`^unregister_netdevice: waiting for \S+ to become free`), typ: NetdevLeak,
		title: "unregister_netdevice: waiting for DEV to become free", noFrames: true, oneLine: true},

	// Sanitizers of undefined behaviour.
	{start: re(`^UBSAN: Undefined behaviour in`), typ: UBSAN, title: "UBSAN: undefined-behaviour in %s", skip: re(`ubsan|overflow`), from: traceOnly},
	{start: re(`^UBSAN: array-index-out-of-bounds in`), typ: UBSAN, title: "UBSAN: array-index-out-of-bounds in %s",
		alt: []string{"bad-access in %s"}, skip: re(`ubsan|overflow`), from: traceOnly},
	{start: re(`^UBSAN: (.*?) in `), typ: UBSAN, title: "UBSAN: $1 in %s", skip: re(`ubsan|overflow`), from: traceOnly},

	// Panics. After an oops they continue it; on their own most name themselves.
	{start: re(`^Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: ` + fn), typ: Panic,
		title: "kernel panic: stack is corrupted in %s", lineFunc: 1, noFrames: true},
	{start: re(`^Kernel panic - not syncing: stack-protector:`), typ: Panic, title: "kernel panic: stack is corrupted in %s",
		skip: re(`stack_chk`), from: traceOnly},
	{start: re(`^Kernel panic - not syncing: corrupted stack end`), typ: StackOverflow, title: "kernel panic: corrupted stack end in %s",
		alt: []string{"stack-overflow in %s"}, skip: re(`schedule|retint_kernel`), stall: true, from: traceOnly},
	{start: re(`^Kernel panic - not syncing: kernel stack overflow`), typ: StackOverflow, title: "kernel stack overflow in %s",
		alt: []string{"stack-overflow in %s"}, skip: re(`bad_stack`), stall: true, from: traceOnly},
	{start: re(`^Kernel panic - not syncing: Attempted to kill init!`), typ: Panic, title: "kernel panic: Attempted to kill init!", noFrames: true},
	{start: re(`^Kernel panic - not syncing: Couldn't open N_TTY ldisc`), typ: Panic, title: "kernel panic: Couldn't open N_TTY ldisc", noFrames: true},
	{start: re(`^Kernel panic - not syncing: Fatal exception`), typ: Panic, title: "kernel panic: Fatal exception", noFrames: true,
		corrupted: "truncated: a panic after an oops whose header is missing"},
	{start: re(`^Kernel panic - not syncing: panic_on_warn set`), typ: Panic, title: "kernel panic: panic_on_warn set", noFrames: true,
		corrupted: "truncated: a panic_on_warn panic whose WARNING is missing"},
	{start: re(`^Kernel panic - not syncing: hung_task: blocked tasks`), typ: Panic, title: "kernel panic: hung_task: blocked tasks", noFrames: true,
		corrupted: "truncated: a hung-task panic whose report is missing"},
	// Other panics are named by their message as printed (the signature normalises
	// numbers and addresses away).
	{start: re(`^Kernel panic - not syncing: (.*)`), typ: Panic, title: "kernel panic: $1", noFrames: true},

	// The fault line printed in two parts and the second lost.
	{start: re(`^BUG: (?:unable|Unable) to handle kernel\s*$`), typ: Oops, title: "BUG: unable to handle kernel", noFrames: true,
		corrupted: "truncated: the fault's description is cut off"},
	// Old KASAN's object history without its header; an "INFO:" cut off after the tag.
	{start: re(`^INFO: (Freed|Allocated) in (.*)`), typ: KASAN, title: "INFO: $1 in $2", noFrames: true,
		corrupted: "truncated: an old KASAN report's object history without its header"},
	{start: re(`^INFO:\s*$`), typ: Unknown, title: "INFO: corrupted", noFrames: true, corrupted: "truncated: an INFO: line cut off"},
	{start: re(`^VFS: Close: file count is 0`), typ: Bug, title: "VFS: Close: file count is zero (use-after-free)", noFrames: true, kernelText: true},
	{start: re(`^VFS: Busy inodes after unmount`), typ: Bug, title: "VFS: Busy inodes after unmount (use-after-free)", noFrames: true, kernelText: true},
	// No catch-all for other "WARNING: " lines: healthy kernels print some ("WARNING:
	// Spectre v2 mitigation leaves CPU vulnerable to RETBleed attacks", "WARNING: BIOS
	// bug: CPU MTRRs don't cover all of memory"), and a clean log must report nothing.
	// Any other BUG: is a bug; syzbot names it by its line as printed.
	{start: re(`^BUG: (.+)`), typ: Bug, title: "BUG: $1", noFrames: true},

	// A reboot nobody asked for: the decompressor's banner, or the kernel's own, after
	// kernel output (distribution kernels' decompressors print nothing).
	{start: re(`^Booting the kernel\.?$`), typ: Reboot, title: "unexpected kernel reboot", noFrames: true, oneLine: true},
	{start: re(`^Linux version \d+\.\d+`), typ: Reboot, title: "unexpected kernel reboot", noFrames: true, oneLine: true},
}

// quick holds substrings at least one of which every start line contains, so most lines
// are rejected with a few Contains calls before any regexp runs.
var quick = []string{"BUG", "Unable to handle", "general protection", "corruption", "WARNING: ",
	"LOCKUP", "INFO: ", "error: ", "opcode: ", "int3: ", "Internal error", "Kernel panic", "UBSAN: ",
	"unreferenced object", "usercopy: ", "VFS: ", "unregister_netdevice", "stack segment", "PANIC: ",
	"Unhandled fault", "Alignment trap", "Booting the kernel", "unsafe lock order", "Linux version"}

// ignoreRe matches kernel lines that look like a start but report nothing.
var ignoreRe = re(`^(?:(?i:WARNING: .* uses (?:deprecated v2 capabilities|wireless extensions))|WARNING: (?:/etc/ssh/moduli|workqueue cpumask|[Tt]he mand mount option|Unprivileged eBPF|See https|kernel not compiled with CPU_SRSO|fbcon: Driver)|INFO: (?:lockdep is turned off|Stall ended before state dump start|NMI handler|recovery required on readonly filesystem|sys_.* is not present|no syscalls can create resource)|BUG: no syscalls can create resource)`)

// titleOf fills in a rule's title format.
func titleOf(format string, m []string, access, fn string) string {
	t := format
	if strings.Contains(t, "$access") {
		t = strings.Replace(t, "$access", access, 1)
	}
	for i := len(m) - 1; i >= 1; i-- { // $10 never occurs; high first so $1 does not eat $12
		if strings.Contains(t, "$") {
			t = strings.ReplaceAll(t, "$"+string(rune('0'+i%10)), strings.TrimSpace(m[i]))
		}
	}
	if strings.Contains(t, "$0") {
		t = strings.ReplaceAll(t, "$0", strings.TrimPrefix(m[0], "BUG: "))
	}
	if strings.Contains(t, "%s") {
		t = strings.Replace(t, "%s", fn, 1)
	}
	return t
}
