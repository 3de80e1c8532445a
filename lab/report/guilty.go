package report

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
)

// infraFrames are the functions that are machinery around a crash rather than its
// cause, shared by every kind of report: the reporting path (dump_stack, printk, panic,
// die, __warn, report_bug), exception and fault entry on x86-64 and arm64, the
// sanitizer runtimes (KASAN, KMSAN, KCSAN, UBSAN, kcov), lockdep's checking and printing,
// locking, scheduling and waiting primitives, memory and string helpers, refcount and
// debug-object checks, allocator internals, watchdog, RCU and stall printers, interrupt
// and syscall entry. A task's backtrace (sysrq, vmcore) is named after its first frame
// outside them and infraParts; a crash report's title uses infraParts alone, as
// syzbot's do (see isReportInfra). One anchored pattern per entry; ".*" marks a family.
var infraFrames = []string{
	// reporting
	`dump_stack.*`, `__dump_stack`, `dump_backtrace`, `show_stack`, `show_regs`, `show_trace.*`, `__show_regs`,
	`print_.*`, `printk.*`, `_printk`, `vprintk.*`, `__printk.*`, `printk_.*`, `console_unlock`, `sched_show_task`,
	`show_state_filter`, `debug_show_all_locks`, `walk_stack`, `arch_stack_walk`, `stack_trace_save.*`,
	`panic`, `nmi_panic`, `__die.*`, `die`, `die_kernel_fault`, `oops_.*`, `do_trap`, `do_error_trap`, `handle_bug`,
	`report_bug`, `fixup_bug`, `__warn`, `warn_slowpath.*`, `__warn_printk`, `warn_alloc`, `warn_bogus.*`,
	`__report_bad_irq`, `bust_spinlocks`, `check_panic_on_warn`, `hex_dump_to_buffer`,
	// exception and fault entry, x86-64
	`exc_.*`, `asm_exc_.*`, `asm_sysvec_.*`, `sysvec_.*`, `__sysvec_.*`, `do_divide_error`, `do_invalid_op`, `invalid_op`,
	`do_general_protection`, `general_protection`, `do_int3`, `int3`, `do_trap_no_signal`, `math_error`,
	`page_fault.*`, `do_page_fault`, `__do_page_fault`, `do_user_addr_fault`, `do_kern_addr_fault`, `handle_page_fault`,
	`kernelmode_fixup_or_oops`, `no_context`, `__bad_area.*`, `bad_area.*`, `spurious_kernel_fault`, `async_page_fault`,
	`error_entry`, `error_exit`, `ret_from_intr`, `retint_kernel`, `common_interrupt`, `apic_timer_interrupt`,
	`smp_apic_timer_interrupt`, `irq_exit.*`, `__irq_exit_rcu`, `irq_enter.*`, `handle_irq`, `do_IRQ`,
	// exception and fault entry, arm64
	`el1_.*`, `el1h_.*`, `el0_.*`, `el0t_.*`, `do_mem_abort`, `do_translation_fault`, `do_bad_area`, `__do_kernel_fault`,
	`do_kernel_fault`, `do_el1_undef`, `do_undefinstr`, `bug_handler`, `brk_handler`, `call_break_hook`,
	`do_debug_exception`, `arm64_notify_die`, `undef_handler`, `do_sp_pc_abort`, `do_alignment_fault`, `do_bad`,
	`do_page_fault`, `do_el1_bti`, `die_kernel_fault`, `arm64_enter_.*`, `arm64_exit_.*`, `handle_domain_irq`,
	`gic_handle_irq`, `call_on_irq_stack`, `do_interrupt_handler`, `el1_interrupt`,
	// sanitizers and coverage
	`kasan_.*`, `__kasan_.*`, `__asan_.*`, `asan_.*`, `check_memory_region.*`, `kmsan_.*`, `__kmsan_.*`, `__msan_.*`,
	`kcsan_.*`, `__kcsan_.*`, `__tsan_.*`, `ubsan_.*`, `__ubsan_.*`, `__sanitizer_.*`, `write_comp_data`,
	`check_heap_object`, `check_object`, `read_word_at_a_time`, `kfence_.*`, `__kfence_.*`, `kfence_handle_page_fault`,
	// lockdep and lock debugging
	`lockdep_.*`, `__lockdep_.*`, `lock_acquire.*`, `__lock_acquire.*`, `lock_release`, `__lock_release`,
	`lock_acquired`, `lock_contended`, `lock_is_held_type`, `__lock_is_held`, `lock_class.*`, `mark_lock.*`,
	`mark_usage`, `mark_held_locks`, `reacquire_held_locks`, `check_noncircular`, `check_prev_add`, `check_prevs_add`,
	`check_deadlock`, `check_irq_usage`, `check_usage.*`, `validate_chain`, `__bfs`, `add_chain_cache`,
	`check_flags.*`, `debug_check_no_locks_freed`, `debug_check_no_locks_held`, `debug_locks_off`,
	`register_lock_class`, `look_up_lock_class`, `assign_lock_key`, `find_usage_.*`, `valid_state`, `usage_match`,
	`print_.*_bug`, `print_usage_bug.*`, `print_circular_bug.*`, `print_deadlock_bug`, `print_unlock_imbalance_bug`,
	`print_lock.*`, `print_bad_irq_dependency`, `debug_spin_lock_.*`, `debug_spin_unlock`, `spin_dump`, `spin_bug`,
	`rwlock_bug`, `debug_mutex_.*`, `mutex_remove_waiter`, `lockdep_rcu_suspicious`, `trace_hardirqs_.*`,
	`trace_softirqs_.*`,
	// locking, scheduling and waiting primitives
	`_raw_spin_.*`, `_raw_read_.*`, `_raw_write_.*`, `__raw_spin.*`, `queued_spin.*`, `native_queued_spin.*`,
	`do_raw_spin.*`, `do_raw_read.*`, `do_raw_write.*`, `spin_.*`, `__mutex_lock.*`, `mutex_lock.*`, `mutex_unlock`,
	`__mutex_unlock_slowpath.*`, `mutex_trylock`, `down`, `down_read.*`, `down_write.*`, `up_read`, `up_write`,
	`__down.*`, `__up.*`, `rwsem_.*`, `osq_lock`, `osq_unlock`, `rt_mutex_.*`, `__rt_mutex_.*`,
	`schedule`, `__schedule`, `__switch_to`, `__switch_to_asm`, `context_switch`, `finish_task_switch.*`,
	`schedule_timeout.*`, `schedule_preempt_disabled`, `schedule_hrtimeout.*`, `io_schedule.*`, `preempt_schedule.*`,
	`__cond_resched.*`, `_cond_resched`, `__schedule_bug`, `schedule_debug.*`, `__might_sleep`, `___might_sleep`,
	`__might_resched`, `__might_fault`, `might_alloc`, `might_sleep`, `might_fault`, `check_preemption_disabled`, `debug_smp_processor_id`,
	`__this_cpu_preempt_check`, `wait_for_completion.*`, `__wait_for_common`, `wait_for_common.*`,
	`do_wait_for_common`, `msleep`, `msleep_interruptible`, `usleep_range.*`, `__wake_up.*`, `wake_up_.*`,
	`try_to_wake_up`, `autoremove_wake_function`, `default_wake_function`, `complete`, `prepare_to_wait.*`, `finish_wait`,
	// memory and string helpers
	`mem(?:cpy|set|move|cmp|chr|scan|dup|dup_user)(?:_.*)?`, `__mem(?:cpy|set|move|cmp)(?:_.*)?`,
	`str(?:cpy|ncpy|lcpy|scpy|cat|ncat|lcat|cmp|ncmp|casecmp|ncasecmp|len|nlen|chr|rchr|nchr|str|nstr|dup|ndup|sep|spn|cspn|pbrk)(?:_.*)?`,
	`__str.*`, `sized_strscpy`, `fortify_panic`, `__fortify_report`, `copy_user_.*`, `_copy_to_user`, `_copy_from_user`,
	`copy_to_user`, `copy_from_user`, `__copy_user_.*`, `raw_copy_.*`, `rep_movs_alternative`, `clear_user.*`,
	`__get_user_.*`, `__put_user_.*`, `strncpy_from_user`, `strnlen_user`,
	// refcount, bug and debug-object helpers
	`refcount_warn_saturate`, `refcount_.*`, `__refcount_.*`, `kref_.*`, `debug_object.*`, `debug_print_object`,
	`__debug_check_no_obj_freed`, `debug_check_no_obj_freed`, `__debug_object_init`, `usercopy_abort`,
	`__check_object_size.*`, `check_object_size`, `check_stack_object`, `__check_heap_object`,
	// allocator internals
	`k[mzc]alloc.*`, `__k[mzc]alloc.*`, `kvmalloc.*`, `kvzalloc`, `kvcalloc`, `krealloc`, `kmem_cache_.*`,
	`__kmem_cache_.*`, `slab_.*`, `__slab_.*`, `___slab_.*`, `kfree`, `kvfree`, `kfree_sensitive`, `__kfree.*`,
	`vfree`, `vmalloc.*`, `__vmalloc.*`, `vzalloc`, `alloc_pages.*`, `__alloc_pages.*`, `folio_alloc`,
	`bad_page`, `free_page_is_bad.*`, `free_pages_prepare`, `check_free_page.*`, `free_unref_page.*`, `__free_pages.*`,
	`__free_one_page`, `free_pcppages_bulk`, `__list_add_valid.*`, `__list_del_entry_valid.*`, `__list_add`,
	`list_add`, `list_del`, `__list_del_entry`,
	// watchdog, RCU and stall reporting
	`watchdog_timer_fn`, `watchdog_overflow_callback`, `__hrtimer_run_queues`, `hrtimer_interrupt`,
	`__sysvec_apic_timer_interrupt`, `tick_sched_.*`, `update_process_times`, `tick_handle_periodic`,
	`rcu_.*stall.*`, `rcu_sched_clock_irq`, `rcu_check_callbacks`, `rcu_pending`, `rcu_dump_cpu_stacks`,
	`check_cpu_stall`, `print_cpu_stall.*`, `print_other_cpu_stall`, `rcu_print_task_stall`, `nmi_cpu_backtrace.*`,
	`nmi_trigger_cpumask_backtrace`, `arch_trigger_cpumask_backtrace`, `trigger_single_cpu_backtrace`,
	`nmi_handle`, `default_do_nmi`, `exc_nmi`, `end_repeat_nmi`, `ipi_handler`, `do_handle_IPI`, `check_hung_task.*`,
	`watchdog`, `hung_task_.*`,
	// lkdtm's trigger plumbing, syscall and thread entry
	`lkdtm_.*`, `ret_from_fork.*`, `kthread`, `entry_SYSCALL.*`, `do_syscall_.*`, `__x64_sys_.*`, `__ia32_sys_.*`,
	`__arm64_sys_.*`, `invoke_syscall`, `el0_svc.*`, `do_el0_svc`, `syscall_exit_.*`, `exit_to_user_mode.*`,
	`__indirect_thunk_.*`, `__x86_indirect_thunk_.*`, `__x86_return_thunk`,
	// formatting
	`string`, `pointer`, `vsnprintf`, `snprintf`, `scnprintf`, `vscnprintf`, `sprintf`, `kasprintf`, `kvasprintf`, `va_format.*`,
}

// infraParts are the same idea as infraFrames written the way syzbot's titles need
// them: each matches anywhere in a function name, so a family ("kasan", "spin_lock",
// "kmalloc") is skipped whatever its prefixes and suffixes. These are the helpers that
// syzbot never names a bug after (its titles are the ecosystem's names for bugs, so the
// same functions must be passed over here): sanitizer runtimes, the reporting path,
// allocators, locking, atomics and bit operations, string and copy helpers, list and
// rbtree helpers, printing, device-model and workqueue teardown (a WARNING in
// device_del is the driver's bug that called it), USB submission, MMIO accessors.
var infraParts = []string{
	// sanitizers and their reporting
	`__sanitizer`, `__asan`, `kasan`, `hwasan`, `__msan`, `kmsan`, `kcsan_setup_watchpoint`, `check_memory_region`,
	`check_heap_object`, `check_object`, `read_word_at_a_time`, `(?:read|write)_once_.*nocheck`,
	`print_address_description`, `print_report`, `print_usage_bug`, `print_unlock`, `imbalance_bug`, `print_tainted`,
	// the reporting path and traps
	`panic`, `invalid_op`, `report_bug`, `fixup_bug`, `do_error`, `_trap$`, `do_trap`, `show_stack`, `dump_stack`,
	`walk_stack`, `dump_backtrace`, `warn_slowpath`, `warn_alloc`, `warn_bogus`, `__warn`, `stack_trace_consume_entry`,
	`arch_stack_walk`, `stack_trace_save`, `hex_dump_to_buffer`, `print_hex_dump`, `program_check_exception`,
	`program_check_common`, `assertfail`, `^get_taint$`, `__fortify_report`,
	// arm64 fault entry
	`do_(?:kernel|translation)_fault`, `do_mem_abort`, `el1_abort`, `el1h_64_sync(?:_handler)?`,
	// allocators and the page cache's allocating lookups
	`alloc_page`, `k?v?(?:m|z|c)alloc`, `krealloc`, `kmem_cache`, `allocate_slab`, `__alloc_frozen_pages_noprof`,
	`folio_(?:alloc|unlock)`, `filemap_alloc_folio`, `__filemap_get_folio`, `find_or_create_page`,
	`do_read_cache_folio`, `read_cache_page`, `pagecache_get_page`, `grab_cache_page_write_begin`, `slab_`,
	`^kv?free$`, `kfree_skb`, `ida_free`, `__phys_addr`,
	// debug objects and might_sleep checks
	`debug_object`, `timer_is_static_object`, `work_is_static_object`, `__might_fault`, `might_fault`, `might_sleep`,
	`__might_resched`,
	// lockdep, locks, atomics, bit operations
	`lockdep`, `bh_enable`, `bh_disable`, `perf_trace`, `lock_acquire`, `lock_release`, `lock_class`, `mark_lock`,
	`(?:reacquire|mark)_held_locks`, `raw_spin_rq`, `spin_lock`, `spin_trylock`, `spin_unlock`, `read_lock`,
	`read_trylock`, `write_lock`, `write_trylock`, `read_unlock`, `write_unlock`, `^down$`, `down_read`, `down_write`,
	`down_trylock`, `up_read`, `up_write`, `^mutex_`, `^__mutex_`, `^rt_mutex_`, `owner_on_cpu`, `osq_lock`,
	`osq_unlock`, `atomic(?:64)?_(?:dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)`,
	`(?:set|clear|change|test)_bit`, `__wake_up`, `^refcount_`, `^kref_`, `ref_tracker`, `seqprop_assert`,
	`(?:trace|lockdep)_(?:hard|soft)irq`, `^(?:un)?lock_page`, `lock_timer_base`,
	// memory, string, user-copy helpers
	`memcpy`, `memcmp`, `memset`, `memchr`, `memmove`, `memdup`, `strcmp`, `strncmp`, `strcpy`, `strlcpy`, `strncpy`,
	`strscpy`, `strlen`, `strstr`, `strnstr`, `strnlen`, `strchr`, `strdup`, `strndup`, `copy_to_user`,
	`copy_from_user`, `copy_to_iter`, `copy_from_iter`, `copy_page_to_iter`, `copy_page_from_iter`,
	`copy_folio_to_iter`, `^copyin$`, `^copyout$`, `put_user`, `get_user`, `extract_(?:user|iter)_to_sg`,
	// lists, trees, lookups
	`list_add`, `list_del`, `list_replace`, `list_move`, `list_splice`, `^rb_`, `^__rb_`, `^klist_`,
	`xas_(?:start|load|find)`, `find_lock_entries`, `truncate_inode_pages_range`, `rhashtable_lookup`,
	// retpolines, formatting and printing
	`_indirect_thunk_`, `string`, `pointer`, `snprintf`, `scnprintf`, `kasprintf`, `kvasprintf`, `printk`,
	`va_format`, `dev_info`, `dev_notice`, `dev_warn`, `dev_err`, `dev_alert`, `dev_crit`, `dev_emerg`,
	// timers, workqueues, completion: the caller is the bug
	`del_timer`, `flush_work`, `__cancel_work_timer`, `cancel_work_sync`, `try_to_grab_pending`, `flush_workqueue`,
	`drain_workqueue`, `destroy_workqueue`, `queue_work`, `insert_work`, `__queue_delayed_work`,
	`queue_delayed_work_on`, `finish_wait`, `kthread_stop`, `^complete$`, `wait_for_completion`, `__timer_delete_sync`,
	`sk_stop_timer_sync`, `__mod_timer`, `cleanup_srcu_struct`,
	// device model, sysfs, netdev teardown: the driver that called them is the bug
	`kobject_`, `add_uevent_var`, `get_device_parent`, `device_add`, `device_del`, `device_unregister`,
	`device_destroy`, `device_release`, `devres_release_all`, `hwrng_unregister`, `i2c_del_adapter`,
	`__unregister_client`, `device_for_each_child`, `rollback_registered`, `unregister_netdev`, `sysfs_remove`,
	`device_remove_file`, `tty_unregister_device`, `^put_device$`,
	// USB submission and MMIO accessors
	`dummy_urb_enqueue`, `usb_kill_urb`, `usb_kill_anchored_urbs`, `usb_control_msg`, `usb_hcd_submit_urb`,
	`usb_submit_urb`, `readb$`, `readw$`, `readl$`, `readq$`, `writeb$`, `writew$`, `writel$`, `writeq$`, `logic_in`,
	`logic_out`,
	// checksums, inode and dentry reference helpers
	`^crc\d+`, `crc_itu_t`, `^iput$`, `^iput_final$`, `^ihold$`, `drop_nlink`, `fast_dput`, `dput`, `mark_buffer_dirty`,
}

var infraPartsRe = regexp.MustCompile(strings.Join(infraParts, "|"))

var infraRe = regexp.MustCompile(`^(?:` + strings.Join(infraFrames, "|") + `)$`)

// genericRe is the shared list as used by the crash-utility backtrace parser.
var genericRe = infraRe

// matchCache keeps what a big pattern said about a function name: names repeat across
// reports. It is emptied when full, so garbage input cannot grow it without bound.
type matchCache struct {
	mu sync.Mutex
	m  map[string]bool
}

const matchCacheSize = 1 << 14

var infraCache, reportInfraCache, anchorCache matchCache

// isInfra: fn is machinery for a task's backtrace (sysrq, vmcores), which has no kind
// to say more: both lists.
func isInfra(fn string) bool { return cachedMatch(&infraCache, infraAllRe, fn) }

// isReportInfra: fn is machinery for a crash report's title: the list syzbot's titles
// pass over. infraFrames is not used: it also names syscall entry and scheduling, which
// syzbot titles do name ("INFO: rcu detected stall in sys_futex").
func isReportInfra(fn string) bool { return cachedMatch(&reportInfraCache, infraPartsRe, fn) }

// infraAllRe is either list.
var infraAllRe = regexp.MustCompile(`^(?:` + strings.Join(infraFrames, "|") + `)$|` + strings.Join(infraParts, "|"))

func cachedMatch(c *matchCache, re *regexp.Regexp, s string) bool {
	c.mu.Lock()
	v, ok := c.m[s]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = re.MatchString(s)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= matchCacheSize {
		c.m = make(map[string]bool, 256)
	}
	c.m[s] = v
	c.mu.Unlock()
	return v
}

// skipped reports whether function name fn (compiler suffixes removed) is not the
// culprit for reports of rule ru.
func skipped(fn string, ru *rule) bool {
	if ru == nil {
		return isInfra(fn)
	}
	return isReportInfra(fn) || ru.skip != nil && ru.skip.MatchString(fn)
}

// guilty returns the index of the first frame that is neither unreliable nor skipped,
// or -1 when there is none: a stack of nothing but machinery names no culprit (syzbot
// then titles the report "in corrupted").
func guilty(fs []Frame, ru *rule) int {
	for i, f := range fs {
		if f.Unreliable || f.Inlined {
			continue
		}
		if !skipped(cleanFunc(f.Func), ru) {
			return i
		}
	}
	return -1
}

// stallAnchorRe matches the functions that dispatch work: syscall entry, file and socket
// operations, workqueues, timers, softirqs, thread start. A stall's stack loops somewhere
// above one of them; the frame just above the first anchor names what was entered (a
// driver's write handler, the syscall), which stays the same however the loop spins.
var stallAnchorRe = regexp.MustCompile(`process_one_work|do_syscall_|do_fast_syscall_|sysenter_dispatch|tracesys_phase2|` +
	`el0_svc_handler|invoke_syscall|ret_fast_syscall|netif_receive_skb|do_softirq|call_timer_fn|_run_timers|` +
	`run_timer_softirq|hrtimer_run|run_ksoftirqd|smpboot_thread_fn|^kthread$|start_secondary|cpu_startup_entry|` +
	`ret_from_fork|vfs_write|vfs_read|vfs_iter_read|vfs_iter_write|do_iter_read|do_iter_write|call_read_iter|` +
	`call_write_iter|new_sync_read|new_sync_write|vfs_ioctl|ksys_ioctl|compat_ioctl|compat_sys_ioctl|` +
	`blkdev_driver_ioctl|blkdev_ioctl|do_iter_readv_writev|^call_mmap|mmap_region|do_mmap|do_dentry_open|vfs_open|` +
	`^sock_sendmsg|^sock_recvmsg|^sock_release|^__sock_release|^setsockopt$|kernel_setsockopt|sock_common_setsockopt|` +
	`^listen$|kernel_listen|sk_common_release|^sock_mmap|^accept$|kernel_accept|^sock_do_ioctl|^sock_ioctl|` +
	`^compat_sock_ioctl|^nfnetlink_rcv_msg|^rtnetlink_rcv_msg|^netlink_dump|^(?:sys_)?(?:socketpair|connect|ioctl)|` +
	`__do_fault|do_page_fault|^page_fault$|__fput|task_work_run|exit_to_usermode|smp_call_function|tasklet_action|` +
	`tasklet_hi_action`)

// stallPick picks a stall's culprit in the stalled context's frames: skipped frames
// dropped, the frame before the first dispatch anchor (the anchor itself when it comes
// first; smp_call_function whichever variant it is, as syzbot names it). -1 without
// an anchor: the stack did not reach where the looping code was entered.
func stallPick(fs []Frame, ru *rule) (idx int, name string) {
	prev := -1
	for i, f := range fs {
		if f.Unreliable || f.Inlined || f.Func == "" {
			continue
		}
		fn := cleanFunc(f.Func)
		if skipped(fn, ru) {
			continue
		}
		if prev < 0 {
			prev = i
		}
		if cachedMatch(&anchorCache, stallAnchorRe, stripFramePrefix(fn)) {
			if strings.Contains(fn, "smp_call_function") {
				return i, "smp_call_function"
			}
			return prev, ""
		}
		prev = i
	}
	return -1, ""
}

// interruptEntryRe: where a stall's stack switches from the timer interrupt that caught
// it to the interrupted code.
var interruptEntryRe = regexp.MustCompile(`^(?:asm_sysvec_apic_timer_interrupt|apic_timer_interrupt|sysvec_apic_timer_interrupt|el1h_64_irq|el1_irq)$`)

// stallFrame picks a stall's culprit: frames after the interrupt entry, the anchors kept
// and other skipped frames dropped, then the frame before the first anchor.
func stallFrame(fs []Frame, ru *rule) int {
	from := 0
	for i, f := range fs {
		if interruptEntryRe.MatchString(cleanFunc(f.Func)) && i+1 < len(fs) {
			from = i + 1
		}
	}
	prev := -1
	for i := from; i < len(fs); i++ {
		f := fs[i]
		if f.Unreliable || f.Inlined {
			continue
		}
		name := stripFramePrefix(cleanFunc(f.Func))
		anchor := cachedMatch(&anchorCache, stallAnchorRe, name)
		if !anchor && skipped(cleanFunc(f.Func), ru) {
			continue
		}
		if anchor {
			if prev < 0 {
				return i
			}
			return prev
		}
		prev = i
	}
	return -1
}

// hangAnchors group hung tasks by what they wait on: all waiters of a stuck RCU grace
// period are one bug, however they got there.
var hangAnchors = []struct{ prefix, as string }{
	{"rtnl_lock", ""}, {"synchronize_rcu", "synchronize_rcu"}, {"synchronize_srcu", "synchronize_rcu"},
	{"synchronize_net", "synchronize_rcu"}, {"synchronize_sched", "synchronize_rcu"},
}

var hangSkipRe = regexp.MustCompile(`sched|_lock|_slowlock|down|rwsem|completion|kthread|wait|synchronize|context_switch|__switch_to|cancel_delayed_work|rcu_barrier`)

// hangFrame picks a hung task's culprit; name, if not "", replaces the frame's name.
func hangFrame(fs []Frame, ru *rule) (idx int, name string) {
	for i, f := range fs {
		if f.Unreliable || f.Inlined {
			continue
		}
		fn := cleanFunc(f.Func)
		for _, a := range hangAnchors {
			if strings.Contains(fn, a.prefix) {
				return i, a.as
			}
		}
	}
	for i, f := range fs {
		fn := cleanFunc(f.Func)
		if f.Unreliable || f.Inlined || skipped(fn, ru) || hangSkipRe.MatchString(fn) {
			continue
		}
		return i, ""
	}
	return -1, ""
}

// framePrefixes are dropped from titles' function names: syscall wrappers that differ
// between arches and kernel versions for one syscall.
var framePrefixes = []string{"SYSC_", "SyS_", "sys_", "__x64_", "__ia32_", "__arm64_", "____sys_", "___sys_",
	"__sys_", "__se_", "__se_sys_", "__do_sys_", "compat_SYSC_", "compat_SyS_", "ksys_"}

// stripFramePrefix drops the one that leaves the shortest name, as syzbot does:
// __x64_sys_ioctl becomes sys_ioctl, __do_sys_ioctl and __se_sys_ioctl become ioctl.
func stripFramePrefix(fn string) string {
	short := fn
	for _, p := range framePrefixes {
		if t := strings.TrimPrefix(fn, p); len(t) < len(short) {
			short = t
		}
	}
	return short
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
	t := r.sigTitle
	if t == "" {
		t = r.Title
	}
	h.Write([]byte(normalize(t)))
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
