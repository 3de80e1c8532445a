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
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/refcount.h>
#include <linux/workqueue.h>
#include <linux/percpu.h>
#include <linux/sched/task_stack.h>
#include <linux/kfence.h>
#include <linux/netdevice.h>
#include <linux/kthread.h>
#include <linux/etherdevice.h>

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


/*
 * Debug-kernel cases (debug.sh: lockdep, kmemleak, KFENCE, KASAN, DEBUG_ATOMIC_SLEEP,
 * DEBUG_PREEMPT, ODEBUG, hardened usercopy, VMAP_STACK, SCHED_STACK_END_CHECK). Lockdep
 * reports once per boot, so each of these runs in a guest of its own.
 */
static DEFINE_MUTEX(rl_mutex_a);
static DEFINE_MUTEX(rl_mutex_b);

static noinline void rl_deadlock(void)
{
	/* A then B, later B then A: a circular dependency, though nothing blocks */
	mutex_lock(&rl_mutex_a);
	mutex_lock(&rl_mutex_b);
	mutex_unlock(&rl_mutex_b);
	mutex_unlock(&rl_mutex_a);
	mutex_lock(&rl_mutex_b);
	mutex_lock(&rl_mutex_a);
	mutex_unlock(&rl_mutex_a);
	mutex_unlock(&rl_mutex_b);
}

struct rl_locked {
	struct mutex m;
	spinlock_t s;
	long pad[4];
};

static noinline void rl_init_pair(struct rl_locked *p, int n)
{
	int i;

	for (i = 0; i < n; i++)
		mutex_init(&p[i].m); /* one init site: one lock class */
}

static noinline void rl_recursive(void)
{
	struct rl_locked *p = kcalloc(2, sizeof(*p), GFP_KERNEL);

	if (!p)
		return;
	rl_init_pair(p, 2);
	mutex_lock(&p[0].m);
	mutex_lock(&p[1].m);
	mutex_unlock(&p[1].m);
	mutex_unlock(&p[0].m);
	kfree(p);
}

static DEFINE_SPINLOCK(rl_irq_lock);

static void rl_softirq_fn(struct timer_list *t)
{
	spin_lock(&rl_irq_lock);
	spin_unlock(&rl_irq_lock);
}

static DEFINE_TIMER(rl_softirq_timer, rl_softirq_fn);

static noinline void rl_inconsistent(void)
{
	spin_lock(&rl_irq_lock); /* softirqs on here, taken in softirq below */
	spin_unlock(&rl_irq_lock);
	mod_timer(&rl_softirq_timer, jiffies + 1);
	msleep(500);
}

static noinline void rl_bad_unlock(void)
{
	mutex_unlock(&rl_mutex_a);
}

static noinline void rl_held_freed(void)
{
	struct rl_locked *p = kzalloc(sizeof(*p), GFP_KERNEL);

	if (!p)
		return;
	mutex_init(&p->m);
	mutex_lock(&p->m);
	kfree(p);
}

static int __rcu *rl_rcu_ptr;

static noinline void rl_deref_unlocked(void)
{
	pr_info("rlcrash: rcu_dereference outside a read-side section %px\n", rcu_dereference(rl_rcu_ptr));
}

static noinline void rl_nonstatic(void)
{
	struct rl_locked *p = kzalloc(sizeof(*p), GFP_KERNEL);

	if (!p)
		return;
	spin_lock(&p->s); /* never spin_lock_init()ed: lockdep has no key */
	spin_unlock(&p->s);
	kfree(p);
}

static void *rl_leaked;

static noinline void rl_leak(void)
{
	/* the pointer is not printed: printk's deep frames could leave copies of it on
	 * this task's stack, which kmemleak scans (and VMAP_STACK caches after exit) */
	pr_info("rlcrash: leaking an 88-byte object\n");
	rl_leaked = kmalloc(88, GFP_KERNEL);
	rl_leaked = NULL;
}

static noinline char *rl_kfence_alloc(void)
{
	int i;

	for (i = 0; i < 20000; i++) {
		char *p = kmalloc(32, GFP_KERNEL);

		if (!p)
			return NULL;
		if (is_kfence_address(p))
			return p;
		kfree(p);
		if (i % 16 == 0)
			msleep(1);
	}
	return NULL;
}

static noinline void rl_kfence_oob(void)
{
	char *p = rl_kfence_alloc();

	if (!p)
		return;
	/* KFENCE puts the object at one end of its page; read across that end */
	if (((unsigned long)(p + 32) & ~PAGE_MASK) == 0)
		pr_info("rlcrash: kfence oob %d\n", READ_ONCE(p[32]));
	else
		pr_info("rlcrash: kfence oob %d\n", READ_ONCE(p[-1]));
	kfree(p);
}

static noinline void rl_kfence_uaf(void)
{
	char *p = rl_kfence_alloc();

	if (!p)
		return;
	kfree(p);
	pr_info("rlcrash: kfence uaf %d\n", READ_ONCE(p[4]));
}

static noinline void rl_kfence_double_free(void)
{
	char *p = rl_kfence_alloc();

	if (!p)
		return;
	kfree(p);
	kfree(p);
}

static noinline void rl_compare(void)
{
	char *a = kzalloc(24, GFP_KERNEL), *b = kzalloc(24, GFP_KERNEL);
	volatile size_t n = 40;

	if (a && b)
		pr_info("rlcrash: memcmp %d\n", memcmp(a, b, n));
	kfree(a);
	kfree(b);
}

static noinline void rl_uaf_write(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return;
	kfree(p);
	WRITE_ONCE(p[20], 1);
}

static noinline void rl_double_free(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	kfree(p);
	kfree(p);
}

static DEFINE_SPINLOCK(rl_sleep_lock);

static noinline void rl_atomic_sleep(void)
{
	spin_lock(&rl_sleep_lock);
	might_sleep();
	spin_unlock(&rl_sleep_lock);
}

static noinline void rl_sched_atomic(void)
{
	preempt_disable();
	schedule_timeout_uninterruptible(1);
	preempt_enable();
}

static DEFINE_PER_CPU(long, rl_pcpu);

static noinline void rl_pcpu_peek(void)
{
	pr_info("rlcrash: this_cpu %ld\n", __this_cpu_read(rl_pcpu));
}

static noinline void rl_smp_id(void)
{
	pr_info("rlcrash: cpu %d\n", smp_processor_id());
}

static void rl_wq_fn(struct work_struct *w)
{
	mutex_lock(&rl_mutex_b); /* returns with it held */
}

static DECLARE_WORK(rl_work, rl_wq_fn);

static void rl_wq_atomic_fn(struct work_struct *w)
{
	preempt_disable(); /* returns atomic: no lockdep needed to see that */
}

static DECLARE_WORK(rl_atomic_work, rl_wq_atomic_fn);

static noinline void rl_wq_atomic(void)
{
	schedule_work(&rl_atomic_work);
	msleep(500);
}

static noinline void rl_wq_leak(void)
{
	schedule_work(&rl_work);
	msleep(500);
}

static noinline void rl_ref_misuse(void)
{
	refcount_t r = REFCOUNT_INIT(0);

	refcount_inc(&r);
}

struct rl_timed {
	struct timer_list t;
	long pad[4];
};

static void rl_odebug_fn(struct timer_list *t)
{
}

static noinline void rl_odebug(void)
{
	struct rl_timed *p = kzalloc(sizeof(*p), GFP_KERNEL);

	if (!p)
		return;
	timer_setup(&p->t, rl_odebug_fn, 0);
	mod_timer(&p->t, jiffies + 100 * HZ);
	kfree(p); /* frees an armed timer */
}

static noinline void rl_oversize(void)
{
	volatile size_t n = (size_t)INT_MAX + 4096;
	void *p = kvmalloc(n, GFP_KERNEL);

	kvfree(p);
}

static noinline void *rl_hide(void *p)
{
	OPTIMIZER_HIDE_VAR(p);
	return p;
}

static noinline void rl_copy_out(char __user *ubuf)
{
	char *p = rl_hide(kmalloc(16, GFP_KERNEL));
	volatile size_t n = 24;

	if (!p)
		return;
	if (copy_to_user(ubuf, p, n))
		pr_info("rlcrash: usercopy failed\n");
	kfree(p);
}

static noinline int rl_recurse(int depth)
{
	volatile char buf[256];

	buf[0] = depth;
	if (depth > 1000000)
		return buf[0];
	return rl_recurse(depth + 1) + buf[0];
}

static noinline void rl_stack_guard(void)
{
	pr_info("rlcrash: recursing %d\n", rl_recurse(0));
}

static noinline void rl_stack_end(void)
{
	unsigned long *end = end_of_stack(current);

	*end = 0; /* STACK_END_MAGIC gone: the scheduler panics */
	schedule_timeout_uninterruptible(1);
}

static const struct net_device_ops rl_netdev_ops;

static noinline void rl_netdev_leak(void)
{
#if IS_ENABLED(CONFIG_NET) /* the debug kernel (debug.sh) has no networking */
	struct net_device *dev = alloc_etherdev(0);

	if (!dev)
		return;
	dev->netdev_ops = &rl_netdev_ops; /* register_netdevice() calls through it */
	strscpy(dev->name, "rl%d", IFNAMSIZ);
	if (register_netdev(dev)) {
		free_netdev(dev);
		return;
	}
	dev_hold(dev); /* never put: unregister waits for it forever */
	unregister_netdev(dev);
#endif
}

/* KCSAN (kcsan.sh's kernel): two threads, one incrementing a plain long, one reading it. */
static long rl_racy;

static noinline int rl_race_writer(void *arg)
{
	unsigned long end = jiffies + seconds * HZ;

	while (time_before(jiffies, end)) {
		rl_racy++;
		barrier(); /* one load and store per turn, not a register kept till the end */
		cond_resched();
	}
	pr_info("rlcrash: writer on CPU %d done at %ld\n", raw_smp_processor_id(), rl_racy);
	return 0;
}

static noinline int rl_race_reader(void *arg)
{
	unsigned long end = jiffies + seconds * HZ;
	long seen = 0;

	while (time_before(jiffies, end)) {
		if (rl_racy != seen)
			seen = rl_racy;
		barrier();
		cond_resched();
	}
	pr_info("rlcrash: reader on CPU %d done, saw %ld\n", raw_smp_processor_id(), seen);
	return 0;
}

static void rl_race_start(int (*fn)(void *), const char *name, int cpu)
{
	struct task_struct *t = kthread_create(fn, NULL, "%s", name);

	if (IS_ERR(t))
		return;
	if (cpu < nr_cpu_ids && cpu_online(cpu))
		kthread_bind(t, cpu); /* one per CPU: they really run at the same time */
	wake_up_process(t);
}

static noinline void rl_race(void)
{
	rl_race_start(rl_race_writer, "rl_writer", 0);
	rl_race_start(rl_race_reader, "rl_reader", 1);
	msleep((seconds + 1) * 1000);
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
	{ "deadlock", rl_deadlock },
	{ "recursive", rl_recursive },
	{ "inconsistent", rl_inconsistent },
	{ "badunlock", rl_bad_unlock },
	{ "heldfree", rl_held_freed },
	{ "rcususp", rl_deref_unlocked },
	{ "nonstatic", rl_nonstatic },
	{ "leak", rl_leak },
	{ "kfence-oob", rl_kfence_oob },
	{ "kfence-uaf", rl_kfence_uaf },
	{ "kfence-doublefree", rl_kfence_double_free },
	{ "memcmp", rl_compare },
	{ "uaf-write", rl_uaf_write },
	{ "doublefree", rl_double_free },
	{ "atomicsleep", rl_atomic_sleep },
	{ "schedatomic", rl_sched_atomic },
	{ "thiscpu", rl_pcpu_peek },
	{ "smpid", rl_smp_id },
	{ "wqleak", rl_wq_leak },
	{ "wqatomic", rl_wq_atomic },
	{ "refcount", rl_ref_misuse },
	{ "odebug", rl_odebug },
	{ "kmallocbug", rl_oversize },
	{ "stackguard", rl_stack_guard },
	{ "stackend", rl_stack_end },
	{ "netdev", rl_netdev_leak },
	{ "race", rl_race },
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
	if (!strcmp(buf, "usercopy")) { /* needs the user buffer */
		rl_copy_out((char __user *)ubuf);
		return len;
	}
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
