package report

import (
	"strings"
	"testing"
)

// TestLiteralPrefix: every rule's literal prefix really begins its matches.
func TestLiteralPrefix(t *testing.T) {
	for _, c := range []struct{ pat, want string }{
		{`^BUG: KASAN: ([a-z-]+) in `, "BUG: KASAN: "},
		{`^(?:WARNING: |INFO: )possible`, ""},
		{`^Booting the kernel\.?$`, "Booting the kernel"},
		{`^kernel BUG at lib/list_debug\.c`, "kernel BUG at lib/list_debug.c"},
		{`^WARNING:(?:.*? at)? lib/x`, "WARNING:"},
	} {
		if got := literalPrefix(c.pat); got != c.want {
			t.Errorf("literalPrefix(%q) = %q, want %q", c.pat, got, c.want)
		}
	}
}

// TestLongestLiteral: the needle is text every match of the rule contains.
func TestLongestLiteral(t *testing.T) {
	for _, c := range []struct{ pat, want string }{
		{`^WARNING:(?:.*? at)? lib/refcount\.c`, " lib/refcount.c"},
		{`^(?:WARNING: |\[ INFO: |INFO: )possible recursive locking detected`, "possible recursive locking detected"},
		{`^(?:a|b)`, ""},
	} {
		if got := longestLiteral(c.pat); got != c.want {
			t.Errorf("longestLiteral(%q) = %q, want %q", c.pat, got, c.want)
		}
	}
}

// TestQuick: findStart rejects chunks holding none of quick's strings, so every start
// line of the test logs must hold one; and the first-byte index agrees with the rules.
func TestQuick(t *testing.T) {
	for _, path := range cases(t) {
		for _, l := range splitLines(readCase(t, path).log) {
			k, _ := matchStart(l.text)
			if k < 0 {
				continue
			}
			hit := false
			for _, q := range quick {
				hit = hit || strings.Contains(l.text, q)
			}
			if !hit {
				t.Errorf("%s: start line %q holds none of quick's strings", path, l.text)
			}
		}
	}
	for _, line := range []string{"BUG: KASAN: use-after-free in foo+0x1/0x2", "[ INFO: possible recursive locking detected ]",
		"unreferenced object 0xffff888003f3a2c0 (size 88):", "rcu: INFO: rcu_preempt self-detected stall on CPU",
		"Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000"} {
		if k, _ := matchStart(line); k < 0 {
			t.Errorf("matchStart(%q): no rule", line)
		}
	}
}

// TestRuleLines: one start line per kind, in the printk format of the kernel that prints
// it, is matched by the rule meant for it (not shadowed by an earlier, broader one) and
// by findStart's quick strings. Formats are written from the kernel's printk calls.
func TestRuleLines(t *testing.T) {
	for _, c := range []struct{ line, title string }{
		{"BUG: KASAN: double-free in rl_double_free+0x22/0x40", "KASAN: invalid-free in %s"},
		{"BUG: KASAN: slab-out-of-bounds in memcmp+0x9f/0xd0", "KASAN: $1 $access in %s"},
		{"BUG: KMSAN: uninit-value in foo+0x1be/0x380", "KMSAN: $1 in %s"},
		{"BUG: KCSAN: data-race in foo / bar", "KCSAN: $1"},
		{"BUG: KFENCE: use-after-free read in rl_kfence_uaf+0x6a/0xa0", "KFENCE: $1 $2 in %s"},
		{"BUG: KFENCE: invalid free in foo+0x1/0x2", "KFENCE: invalid free in %s"},
		{"BUG: kernel NULL pointer dereference, address: 0000000000000000", "BUG: unable to handle kernel NULL pointer dereference in %s"},
		{"BUG: unable to handle kernel NULL pointer dereference at 0000000000000008", "BUG: unable to handle kernel NULL pointer dereference in %s"},
		{"Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000", "BUG: unable to handle kernel NULL pointer dereference in %s"},
		{"BUG: unable to handle page fault for address: ffffc90000a4d000", "BUG: unable to handle kernel paging request in %s"},
		{"Unable to handle kernel paging request at virtual address ffff800008a4d000", "BUG: unable to handle kernel paging request in %s"},
		{"Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN", "general protection fault in %s"},
		{"divide error: 0000 [#1] PREEMPT SMP NOPTI", "divide error in %s"},
		{"Oops: divide error: 0000 [#1] PREEMPT SMP NOPTI", "divide error in %s"},
		{"Internal error: Oops - Undefined instruction: 0000000002000000 [#1] PREEMPT SMP", "Internal error in %s"},
		{"Internal error: synchronous external abort: 0000000096000010 [#1] PREEMPT SMP", "Internal error in %s"},
		{"Unhandled fault: synchronous external abort (0x96000010) at 0xffff000008a4d000", "Unhandled fault in %s"},
		{"usercopy: Kernel memory exposure attempt detected from SLUB object 'kmalloc-16' (offset 0, size 24)!", "BUG: bad usercopy in %s"},
		{"kernel BUG at mm/usercopy.c:99!", "BUG: bad usercopy in %s"},
		{"kernel BUG at lib/list_debug.c:30!", "BUG: corrupted list in %s"},
		{"kernel BUG at fs/ext4/inode.c:1234!", "kernel BUG in %s"},
		{"WARNING: possible circular locking dependency detected", "possible deadlock in %s"},
		{"[ INFO: possible circular locking dependency detected ]", "possible deadlock in %s"},
		{"WARNING: possible recursive locking detected", "possible deadlock in %s"},
		{"WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", "possible deadlock in %s"},
		{"WARNING: inconsistent lock state", "inconsistent lock state in %s"},
		{"WARNING: bad unlock balance detected!", "$1: bad unlock balance in %s"},
		{"WARNING: held lock freed!", "WARNING: held lock freed in %s"},
		{"WARNING: suspicious RCU usage", "$1: suspicious RCU usage in %s"},
		{"INFO: trying to register non-static key.", "INFO: trying to register non-static key in %s"},
		{"WARNING: CPU: 0 PID: 95 at lib/debugobjects.c:505 debug_print_object+0x8d/0xb0", "WARNING: ODEBUG bug in %s"},
		{"WARNING: CPU: 0 PID: 95 at lib/refcount.c:25 refcount_warn_saturate+0x97/0x110", "WARNING: refcount bug in %s"},
		{"WARNING: CPU: 1 PID: 95 at mm/util.c:596 kvmalloc_node+0xc6/0x130", "WARNING: kmalloc bug in %s"},
		{"WARNING: CPU: 1 PID: 95 at drivers/foo/bar.c:12 foo_probe+0x1/0x2 [foo]", "WARNING in %s"},
		{"WARNING: at fs/foo.c:12 foo_write+0x1/0x2()", "WARNING in %s"},
		{"WARNING: drivers/foo/bar.c:12 at foo_probe+0x1/0x2, CPU#0: sh/95", "WARNING in %s"},
		{"BUG: spinlock bad magic on CPU#0, sh/95", "BUG: $1 $2 in %s"},
		{"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:95]", "BUG: soft lockup in %s"},
		{"BUG: scheduling while atomic: sh/95/0x00000002", "BUG: scheduling while atomic in %s"},
		{"BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580", "BUG: sleeping function called from invalid context in %s"},
		{"BUG: using __this_cpu_read() in preemptible [00000000] code: sh/95", "BUG: using $1() in preemptible code in %s"},
		{"BUG: using smp_processor_id() in preemptible [00000000] code: sh/95", "BUG: using $1() in preemptible code in %s"},
		{"BUG: workqueue leaked lock or atomic: kworker/0:1/0x00000000/23", "BUG: workqueue leaked lock or atomic in %s"},
		{"BUG: memory leak", "memory leak in %s"},
		{"unreferenced object 0xffff888003f3a2c0 (size 88):", "memory leak in %s"},
		{"BUG: stack guard page was hit at 00000000d1c0a7b1 (stack is 0000000047f5b91e..00000000a5e3f5c6)", "BUG: stack guard page was hit in %s"},
		{"BUG: Bad page state in process sh  pfn:05c00", "BUG: Bad page $1 in %s"},
		{"BUG: Bad rss-counter state mm:00000000b5fe5b8b type:MM_ANONPAGES val:1", "BUG: Bad rss-counter state"},
		{"rcu: INFO: rcu_preempt self-detected stall on CPU", "INFO: rcu detected stall in %s"},
		{"INFO: rcu_sched detected stalls on CPUs/tasks:", "INFO: rcu detected stall in %s"},
		{"INFO: task sh:95 blocked for more than 2 seconds.", "INFO: task hung in %s"},
		{"unregister_netdevice: waiting for rl0 to become free. Usage count = 2", "unregister_netdevice: waiting for DEV to become free"},
		{"UBSAN: array-index-out-of-bounds in drivers/foo.c:12:3", "UBSAN: array-index-out-of-bounds in %s"},
		{"UBSAN: shift-out-of-bounds in drivers/foo.c:12:3", "UBSAN: $1 in %s"},
		{"Kernel panic - not syncing: corrupted stack end detected inside scheduler", "kernel panic: corrupted stack end in %s"},
		{"Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009", "kernel panic: Attempted to kill init!"},
		{"Kernel panic - not syncing: Fatal exception", "kernel panic: Fatal exception"},
		{"Kernel panic - not syncing: sysrq triggered crash", "kernel panic: $1"},
		{"PANIC: double fault, error_code: 0x0", "PANIC: double fault in %s"},
		{"BUG: unable to handle kernel", "BUG: unable to handle kernel"},
		{"BUG: Dentry ffff888003f3a2c0{i=1,n=x}  still in use (1) [unmount of tmpfs tmpfs]", "BUG: Dentry still in use in $1"},
		{"BUG: looking up invalid subclass: 8", "BUG: $1"},
		{"Booting the kernel.", "unexpected kernel reboot"},
	} {
		k, _ := matchStart(c.line)
		if k < 0 {
			t.Errorf("%q: no rule", c.line)
			continue
		}
		if rules[k].title != c.title {
			t.Errorf("%q: rule %q, want %q", c.line, rules[k].title, c.title)
		}
		hit := false
		for _, q := range quick {
			hit = hit || strings.Contains(c.line, q)
		}
		if !hit {
			t.Errorf("%q: none of quick's strings (findStart would skip it)", c.line)
		}
	}
}

// TestLooseFrame holds looseFrame to looseFrameRe on frame lines of every era and on
// lines that only look like frames.
func TestLooseFrame(t *testing.T) {
	for _, l := range []string{
		"dump_stack+0x1db/0x2d0", "[<ffffffff81d90889>] dump_stack+0xc1/0x128",
		"[<ffffffff81d90889>] [<ffffffff81d90889>] foo.cold+0x1/0x2", "? foo+0x1/0x2",
		"[<00000000>] (null)", "ata1.00: configured", "Modules linked in: foo", "x29: ffff",
		"[<zz>] foo+0x1", "[<ffff>]foo+0x1", "foo", "foo+", "[<0x1234>] bar.isra.0+0x1/0x2", "",
		"[<(____ptrval____)>] kmemleak_alloc+0x1/0x2", "[< (ptrval)>] foo+0x1", "[<(ptrval>] foo+0x1",
	} {
		want := ""
		if sm := looseFrameRe.FindStringSubmatch(l); sm != nil {
			want = sm[1]
		}
		if got := looseFrame(l); got != want {
			t.Errorf("looseFrame(%q) = %q, want %q", l, got, want)
		}
	}
}
