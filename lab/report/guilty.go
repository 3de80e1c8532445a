package report

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// genericRe matches functions that are machinery around a crash rather than its cause:
// the reporting path (dump_stack, panic, die, __warn, report_bug), exception and fault
// entry on both arches, locking, scheduling and waiting primitives, the page allocator's
// checks, list debugging, sanitizer runtimes, watchdog and RCU stall printers, and
// interrupt entry. The guilty frame is the first frame that does not match.
var genericRe = regexp.MustCompile(`^(?:` +
	`dump_stack.*|__dump_stack|dump_backtrace|show_stack|show_regs|show_trace.*|print_.*|printk.*|_printk|vprintk.*|` +
	`panic|nmi_panic|__die.*|die|die_kernel_fault|oops_.*|do_trap|do_error_trap|handle_bug|report_bug|fixup_bug|__warn|warn_slowpath.*|__warn_printk|` +
	`exc_.*|asm_exc_.*|asm_sysvec_.*|sysvec_.*|do_divide_error|do_invalid_op|do_general_protection|do_int3|` +
	`page_fault.*|do_page_fault|__do_page_fault|do_user_addr_fault|do_kern_addr_fault|handle_page_fault|kernelmode_fixup_or_oops|no_context|__bad_area.*|bad_area.*|spurious_kernel_fault|async_page_fault|` +
	`el1_.*|el1h_.*|el0_.*|do_mem_abort|do_translation_fault|do_bad_area|__do_kernel_fault|do_el1_undef|do_undefinstr|bug_handler|brk_handler|call_break_hook|do_debug_exception|arm64_notify_die|undef_handler|` +
	`_raw_spin_.*|_raw_read_.*|_raw_write_.*|__raw_spin.*|queued_spin.*|native_queued_spin.*|do_raw_spin.*|spin_.*|lock_acquire|lock_release|mutex_lock.*|__mutex_lock.*|down_read|down_write|rwsem_.*|` +
	`schedule|__schedule|__switch_to|__switch_to_asm|context_switch|finish_task_switch.*|schedule_timeout|schedule_preempt_disabled|io_schedule.*|preempt_schedule.*|__cond_resched|_cond_resched|` +
	`wait_for_completion.*|__wait_for_common|wait_for_common.*|do_wait_for_common|msleep|usleep_range.*|` +
	`bad_page|free_page_is_bad.*|free_pages_prepare|check_free_page.*|free_unref_page.*|__free_pages.*|__free_one_page|free_pcppages_bulk|` +
	`__list_add_valid.*|__list_del_entry_valid.*|__list_add|list_add|list_del|` +
	`kasan_.*|__kasan_.*|__asan_.*|check_memory_region.*|ubsan_.*|__ubsan_.*|` +
	`watchdog_timer_fn|watchdog_overflow_callback|__hrtimer_run_queues|hrtimer_interrupt|__sysvec_apic_timer_interrupt|tick_sched_.*|update_process_times|` +
	`rcu_.*stall.*|rcu_sched_clock_irq|rcu_pending|rcu_dump_cpu_stacks|check_cpu_stall|nmi_cpu_backtrace.*|nmi_trigger_cpumask_backtrace|arch_trigger_cpumask_backtrace|trigger_single_cpu_backtrace|` +
	`nmi_handle|default_do_nmi|exc_nmi|end_repeat_nmi|ipi_handler|do_handle_IPI|` +
	`memcpy|memset|memmove|strcpy|strlen|__memcpy|__memset|` +
	`lkdtm_.*|` +
	`ret_from_fork|kthread|entry_SYSCALL.*|do_syscall_64|__x64_sys_.*|__arm64_sys_.*|invoke_syscall|el0_svc.*|do_el0_svc` +
	`)$`)

// guilty returns the index of the first frame that is neither unreliable nor generic,
// or of the first reliable frame when all are generic, or -1 without frames.
func guilty(fs []Frame, t Type) int {
	first := -1
	for i, f := range fs {
		if f.Unreliable || f.Inlined {
			continue
		}
		if first < 0 {
			first = i
		}
		if !genericRe.MatchString(cleanFunc(f.Func)) {
			return i
		}
	}
	return first
}

// sigFrames is how many frames from the guilty one go into the signature. Two: the
// guilty function and its caller. More would split one bug reached from different paths
// (v4.11's writeback NULL deref is reached from ext4, swap-over-dm-crypt and kswapd);
// fewer would merge different bugs that happen to fault in a shared helper.
const sigFrames = 2

// signature hashes the normalised title and the function names of the guilty frame and
// its caller. Offsets, addresses, CPU numbers, PIDs, timestamps and compiler suffixes
// are not part of it.
func signature(r *Report) string {
	h := sha256.New()
	h.Write([]byte(normalize(r.Title)))
	// A panic's message names it; its caller is not reliably printed (see panicTitle).
	if r.Guilty >= 0 && r.Type != Panic {
		n := 0
		for _, f := range r.Frames[r.Guilty:] {
			if f.Unreliable || f.Inlined {
				continue
			}
			h.Write([]byte{'\n'})
			h.Write([]byte(cleanFunc(f.Func)))
			if n++; n == sigFrames {
				break
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// SignatureFrames returns the function names that went into r's signature, for display.
func (r *Report) SignatureFrames() []string {
	var out []string
	if r.Guilty < 0 || r.Type == Panic {
		return nil
	}
	for _, f := range r.Frames[r.Guilty:] {
		if f.Unreliable || f.Inlined {
			continue
		}
		out = append(out, cleanFunc(f.Func))
		if len(out) == sigFrames {
			break
		}
	}
	return strings.Fields(strings.Join(out, " "))
}
