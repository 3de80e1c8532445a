// SPDX-License-Identifier: GPL-2.0
/*
 * rlcrash: provokes kernel crash reports on demand, so lab/report's test logs come from
 * real kernels. Debian's kernels ship no LKDTM, hence this small module of our own.
 * Write a keyword to /proc/rlcrash (see the table at the bottom).
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/delay.h>
#include <linux/sched.h>
#include <linux/timer.h>
#include <linux/vmalloc.h>
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/slab.h>
#include <linux/rcupdate.h>
#include <linux/string.h>

static int seconds = 8;
module_param(seconds, int, 0644);

struct rl_obj {
	long pad[88];
	long field;
};

static noinline long rl_read_field(struct rl_obj *o)
{
	return READ_ONCE(o->field);
}

static noinline void rl_null_deref(void)
{
	pr_info("rlcrash: NULL dereference\n");
	pr_info("rlcrash: %ld\n", rl_read_field(NULL));
}

/* A second, different NULL dereference, so two different bugs get two signatures. */
static noinline void rl_null_write(void)
{
	struct rl_obj *o = NULL;

	pr_info("rlcrash: NULL write\n");
	WRITE_ONCE(o->pad[3], 1);
}

static noinline void rl_paging(void)
{
	int *p = vmalloc(PAGE_SIZE);

	vfree(p);
	vm_unmap_aliases(); /* flush the lazily unmapped area so the access faults */
	pr_info("rlcrash: read freed vmalloc %px\n", p);
	pr_info("rlcrash: %d\n", READ_ONCE(*p));
}

static noinline void rl_noncanonical(void)
{
	long *p = (long *)0xdead000000000100UL;

	pr_info("rlcrash: read bad pointer\n");
	pr_info("rlcrash: %ld\n", READ_ONCE(*p));
}

static noinline void rl_bug(void)
{
	pr_info("rlcrash: BUG\n");
	BUG();
}

static noinline void rl_warn(void)
{
	WARN(1, "rlcrash: requested warning\n");
}

static noinline void rl_divide(void)
{
	/* both volatile: gcc turns 1/x into a compare, which does not trap */
	volatile int num = 100, zero = 0;

	pr_info("rlcrash: divide %d\n", num / zero);
}

static noinline void rl_undef(void)
{
	pr_info("rlcrash: undefined instruction\n");
#if defined(CONFIG_X86)
	asm volatile("ud2");
#elif defined(CONFIG_ARM64)
	asm volatile(".inst 0x00000000");
#endif
}

static noinline void rl_spin(bool irqs)
{
	unsigned long end = jiffies + seconds * HZ;
	unsigned long flags = 0;

	if (irqs)
		local_irq_save(flags);
	preempt_disable();
	if (irqs) {
		/* jiffies do not advance with interrupts off on the only CPU that updates them */
		u64 n = (u64)seconds * 1000000;

		while (n--)
			udelay(1);
	} else {
		while (time_before(jiffies, end))
			cpu_relax();
	}
	preempt_enable();
	if (irqs)
		local_irq_restore(flags);
}

static noinline void rl_softlockup(void)
{
	pr_info("rlcrash: spinning %ds with preemption off\n", seconds);
	rl_spin(false);
}

static noinline void rl_hardlockup(void)
{
	pr_info("rlcrash: spinning %ds with interrupts off\n", seconds);
	rl_spin(true);
}

static noinline void rl_rcu_stall(void)
{
	unsigned long end = jiffies + seconds * HZ;

	pr_info("rlcrash: spinning %ds in an RCU read-side section\n", seconds);
	rcu_read_lock();
	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
	rcu_read_unlock();
}

static noinline void rl_hung(void)
{
	pr_info("rlcrash: sleeping %ds uninterruptibly\n", seconds);
	set_current_state(TASK_UNINTERRUPTIBLE);
	schedule_timeout(seconds * HZ);
}

static noinline void rl_list_corrupt(void)
{
	static LIST_HEAD(head);
	struct list_head a, b;

	pr_info("rlcrash: corrupt list\n");
	list_add(&a, &head);
	a.prev = &b; /* next->prev no longer points back at head */
	list_add(&b, &head);
}

static noinline void rl_bad_page(void)
{
	/*
	 * Order 4: without CONFIG_DEBUG_VM only frees that bypass the per-CPU lists
	 * (order > PAGE_ALLOC_COSTLY_ORDER) check the page state.
	 */
	struct page *page = alloc_pages(GFP_KERNEL, 4);

	if (!page)
		return;
	pr_info("rlcrash: free pages with nonzero mapcount\n");
	atomic_set(&page->_mapcount, 3);
	__free_pages(page, 4);
}

/* KASAN (use-after-free, out-of-bounds) and UBSAN cases: only kernels built with the
 * sanitizers report them; elsewhere they read freed or stray memory quietly. */
static noinline void rl_uaf(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return;
	kfree(p);
	pr_info("rlcrash: use after free %d\n", READ_ONCE(p[10]));
}

static noinline void rl_oob(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return;
	pr_info("rlcrash: out of bounds %d\n", READ_ONCE(p[64 + 8]));
	kfree(p);
}

static noinline void rl_shift(void)
{
	volatile int s = 70;

	pr_info("rlcrash: shift %lu\n", 1UL << s);
}

static noinline void rl_bounds(void)
{
	int arr[4] = { 1, 2, 3, 4 };
	volatile int i = 6;

	pr_info("rlcrash: index %d\n", arr[i]);
}

static noinline void rl_panic(void)
{
	panic("rlcrash: requested panic");
}

static void rl_timer_fn(struct timer_list *t)
{
	rl_null_deref();
}

static DEFINE_TIMER(rl_timer, rl_timer_fn);

static noinline void rl_irq_null(void)
{
	mod_timer(&rl_timer, jiffies + 1);
	msleep(2000);
}

static const struct {
	const char *name;
	void (*fn)(void);
} rl_cases[] = {
	{ "null", rl_null_deref },
	{ "nullwrite", rl_null_write },
	{ "paging", rl_paging },
	{ "noncanonical", rl_noncanonical },
	{ "bug", rl_bug },
	{ "warn", rl_warn },
	{ "divide", rl_divide },
	{ "undef", rl_undef },
	{ "softlockup", rl_softlockup },
	{ "hardlockup", rl_hardlockup },
	{ "rcustall", rl_rcu_stall },
	{ "hung", rl_hung },
	{ "list", rl_list_corrupt },
	{ "badpage", rl_bad_page },
	{ "panic", rl_panic },
	{ "irqnull", rl_irq_null },
	{ "uaf", rl_uaf },
	{ "oob", rl_oob },
	{ "shift", rl_shift },
	{ "bounds", rl_bounds },
};

static ssize_t rl_write(struct file *f, const char __user *ubuf, size_t len, loff_t *off)
{
	char buf[32];
	size_t i;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	strim(buf);
	for (i = 0; i < ARRAY_SIZE(rl_cases); i++) {
		if (!strcmp(buf, rl_cases[i].name)) {
			rl_cases[i].fn();
			return len;
		}
	}
	return -EINVAL;
}

static const struct proc_ops rl_ops = {
	.proc_write = rl_write,
};

static int __init rl_init(void)
{
	return proc_create("rlcrash", 0200, NULL, &rl_ops) ? 0 : -ENOMEM;
}

static void __exit rl_exit(void)
{
	remove_proc_entry("rlcrash", NULL);
}

module_init(rl_init);
module_exit(rl_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("reprolab crash-report test data generator");
