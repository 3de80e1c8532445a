package report

import (
	"regexp"
	"strings"
	"testing"
)

// bodyRe is isBody as a regexp: the definition isBody must agree with.
var bodyRe = regexp.MustCompile(`^\s*(?:` +
	`\? |\[<(?:[0-9a-f]+| *\(_*ptrval_*\))>\]|[A-Za-z0-9_.$]+\+0x[0-9a-f]+/0x[0-9a-f]+|` + // frames
	`<(?:/?IRQ|/?TASK|/?NMI|/?SOFTIRQ|EOI)>|` +
	`(?:R[A-Z0-9]{1,2}|CS|DS|FS|GS|CR0|CR2|x\d+|pc|lr|sp|pstate|ORIG_RAX|EFLAGS)\s*:|` +
	`(?:RIP|RSP|Code|Call Trace|Call trace|Modules linked in|CPU|Hardware name|Workqueue|task|Process|Stack|Exception stack|PGD|pgd|Mem abort info|Data abort info|ESR|EC|SET|FnV|EA|S1PTW|CM|WnR|ISV|user pgd|swapper pgd|\[[0-9a-f]+\]|Kernel Offset|PHYS_OFFSET|CPU features|Memory Limit|page|flags|raw|head|page dumped because|page_owner|Disabling lock debugging|Oops|#PF|invalid opcode|Internal error|Tainted|NMI backtrace|Sending NMI|rcu|\(detected by|\(t=|\s*\d+-\.{3}|INFO: lockdep|Showing all locks|irq event stamp|hardirqs|softirqs|sysrq|Kernel panic|---\[ end|DR[0-7]|PKRU|note|Call Trace|Fixing recursive fault|Dumping ftrace|\s+\(ftrace|IP|hung_task|"echo 0 > /proc/sys/kernel/hung_task_timeout_secs"|task:|irq|Rebooting|SMP|Kernel|Preemption|Showing busy|Unable to handle|list_|kernel BUG|WARNING|BUG|general protection|divide error|KASAN|UBSAN|Read of size|Write of size|Memory state|Allocated by|Freed by|The buggy address|which belongs to the cache|[0-9a-f]{4}:|>?[0-9a-f]{16}:|\^|={20,}|-{20,}|comm "|hex dump|backtrace|unreferenced object|(?:[0-9a-f]{2} ){8}|kfence-#|allocated by task|freed by task|Out-of-bounds|Use-after-free|Invalid (?:read|write|free)|Corrupted memory|caller is|last function|#\d+: |\d+ locks? held by|-> #\d|stack backtrace|usercopy|ODEBUG|refcount_t|Workqueue|unregister_netdevice)` +
	`)`)

// TestIsBody: the hand-written isBody agrees with bodyRe on every line of the test logs.
func TestIsBody(t *testing.T) {
	n := 0
	for _, path := range cases(t) {
		for _, l := range splitLines(readCase(t, path).log) {
			if got, want := isBody(l.text), bodyRe.MatchString(l.text); got != want {
				t.Errorf("%s: isBody(%q) = %v, bodyRe says %v", path, l.text, got, want)
				if n++; n > 20 {
					t.FailNow()
				}
			}
		}
	}
}

// TestFrameLine: frameLine agrees with frameRe on every line of the test logs.
func TestFrameLine(t *testing.T) {
	extra := []string{"  ? [<ffffffff81000000>] ? foo.isra.1+0x1/0x20 [mod]", "bar+0x1/0x2 [mod x]", "x+0x/0x1", "[<ab>] y+0x1/0x2"}
	lines := extra
	for _, path := range cases(t) {
		for _, l := range splitLines(readCase(t, path).log) {
			lines = append(lines, l.text)
		}
	}
	for _, l := range lines {
		got, want := frameLine(l), frameRe.FindStringSubmatch(l)
		if (got == nil) != (want == nil) || got != nil && strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("frameLine(%q) = %q, frameRe says %q", l, got, want)
		}
	}
}

// TestInlineMarker: 3.x prints "<IRQ>  [<addr>] frame" on one line; the frame is kept.
func TestInlineMarker(t *testing.T) {
	for in, want := range map[string]string{
		" <IRQ>  [<ffffffff8163e7c3>] dump_stack+0x19/0x1b":  "dump_stack",
		" <EOI>  [<ffffffff81091f5e>] ? cpu_idle+0x8e/0x110": "cpu_idle",
		" <IRQ>": "",
	} {
		got := ""
		if sm := frameLine(inlineMarker(in)); sm != nil {
			got = sm[4]
		}
		if got != want {
			t.Errorf("frame of %q = %q, want %q", in, got, want)
		}
	}
}

// TestPrefixSpans: the printk prefixes are found where they are.
func TestPrefixSpans(t *testing.T) {
	for _, c := range []struct{ raw, ts, caller, text string }{
		{"[   12.345678][  T95] BUG: x", "12.345678", "T95", "BUG: x"},
		{"<4>[    0.000000] Linux", "0.000000", "", "Linux"},
		{"[    C1] rcu: y", "", "C1", "rcu: y"},
		{"plain", "", "", "plain"},
	} {
		l := splitLines([]byte(c.raw))[0]
		if l.ts != c.ts || l.caller != c.caller || l.text != c.text {
			t.Errorf("%q: ts %q caller %q text %q", c.raw, l.ts, l.caller, l.text)
		}
	}
}
