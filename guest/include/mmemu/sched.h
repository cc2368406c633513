/*
 * mmemu/sched.h - atomic context as Linux 6.1 tracks it
 * (include/linux/preempt.h, irqflags.h, spinlock.h, uaccess.h, kernel.h).
 *
 * preempt_count and the irq flag are this CPU's per-cpu words (abi.py's
 * PERCPU_FIELDS at the mailbox + PERCPU_OFFSET): the guest changes them
 * itself, without a hypercall, exactly as Linux's __preempt_count; the host
 * reads them when it must know whether the caller may sleep.  So:
 *
 *	spin_lock(&lock);
 *	p = alloc_page(GFP_KERNEL);	// BUG: sleeping function called from
 *	spin_unlock(&lock);		//      invalid context at ...
 *
 * is reported as CONFIG_DEBUG_ATOMIC_SLEEP reports it, and GFP_ATOMIC is
 * the mask to use there.
 *
 * Unicorn does not model cli/sti for us, so local_irq_disable() sets the
 * irqs_disabled word instead of EFLAGS.IF.  On one CPU a spinlock is only
 * a preemption marker (plus mmemu's CONFIG_DEBUG_SPINLOCK-style checks for
 * taking it twice or releasing it unheld).  The hypercalls here are the
 * slow paths only (mmemu/runtime/hc_sched.py).
 */
#ifndef _MMEMU_SCHED_H
#define _MMEMU_SCHED_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/gfp.h>

/* Hypercalls (mmemu/runtime/hc_sched.py; range HC_SCHED_BASE..+15). */
#define HC_MIGHT_SLEEP		(HC_SCHED_BASE + 0)	/* (file, line) */
#define HC_PAGEFAULT_DISABLE	(HC_SCHED_BASE + 1)	/* () */
#define HC_PAGEFAULT_ENABLE	(HC_SCHED_BASE + 2)	/* () */
#define HC_PREEMPT_COUNT_SUB	(HC_SCHED_BASE + 3)	/* (val): would underflow */
#define HC_SPIN_BUG		(HC_SCHED_BASE + 4)	/* (lock, kind) */
#define HC_SCHEDULE		(HC_SCHED_BASE + 5)	/* () */
#define HC_PAGEFAULT_DISABLED	(HC_SCHED_BASE + 6)	/* () -> depth */

#define SPIN_BUG_RECURSION	1
#define SPIN_BUG_UNLOCKED	2

/*
 * The per-cpu block, struct mmemu_percpu at MMEMU_PERCPU (mmemu/hypercall.h;
 * abi.py's PERCPU_FIELDS): preempt_count, irqs_disabled, kmap_atomic_idx.
 */

/* preempt_count layout (include/linux/preempt.h) */
#define PREEMPT_BITS		8
#define SOFTIRQ_BITS		8
#define HARDIRQ_BITS		4
#define NMI_BITS		4
#define PREEMPT_SHIFT		0
#define SOFTIRQ_SHIFT		(PREEMPT_SHIFT + PREEMPT_BITS)
#define HARDIRQ_SHIFT		(SOFTIRQ_SHIFT + SOFTIRQ_BITS)
#define NMI_SHIFT		(HARDIRQ_SHIFT + HARDIRQ_BITS)
#define __IRQ_MASK(x)		((1UL << (x)) - 1)
#define PREEMPT_MASK		(__IRQ_MASK(PREEMPT_BITS) << PREEMPT_SHIFT)
#define SOFTIRQ_MASK		(__IRQ_MASK(SOFTIRQ_BITS) << SOFTIRQ_SHIFT)
#define HARDIRQ_MASK		(__IRQ_MASK(HARDIRQ_BITS) << HARDIRQ_SHIFT)
#define NMI_MASK		(__IRQ_MASK(NMI_BITS) << NMI_SHIFT)
#define PREEMPT_OFFSET		(1UL << PREEMPT_SHIFT)
#define SOFTIRQ_OFFSET		(1UL << SOFTIRQ_SHIFT)
#define HARDIRQ_OFFSET		(1UL << HARDIRQ_SHIFT)
#define NMI_OFFSET		(1UL << NMI_SHIFT)
#define SOFTIRQ_DISABLE_OFFSET	(2 * SOFTIRQ_OFFSET)

static __always_inline int preempt_count(void)
{
	return (int)MMEMU_PERCPU->preempt_count;
}

#define hardirq_count()		(preempt_count() & HARDIRQ_MASK)
#define softirq_count()		(preempt_count() & SOFTIRQ_MASK)
#define irq_count()		(preempt_count() & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_MASK))
#define in_nmi()		(preempt_count() & NMI_MASK)
#define in_hardirq()		(hardirq_count())
#define in_irq()		in_hardirq()
#define in_softirq()		(softirq_count())
#define in_serving_softirq()	(softirq_count() & SOFTIRQ_OFFSET)
#define in_interrupt()		(irq_count())
#define in_task()		(!(preempt_count() & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_OFFSET)))
#define in_atomic()		(preempt_count() != 0)

static __always_inline void preempt_count_add(int val)
{
	MMEMU_PERCPU->preempt_count += val;
	barrier();
}

/* preempt_count_sub() with CONFIG_DEBUG_PREEMPT: an underflow is reported, not done. */
static __always_inline void preempt_count_sub(int val)
{
	int count = preempt_count();

	barrier();
	if (unlikely(val > count ||
		     ((unsigned long)val < PREEMPT_MASK && !(count & PREEMPT_MASK))))
		hypercall1(HC_PREEMPT_COUNT_SUB, (unsigned long)val);
	else
		MMEMU_PERCPU->preempt_count = count - val;
}

#define preempt_disable()		preempt_count_add(1)
#define preempt_enable()		preempt_count_sub(1)
#define preempt_enable_no_resched()	preempt_count_sub(1)
#define preempt_disable_notrace()	preempt_count_add(1)
#define preempt_enable_notrace()	preempt_count_sub(1)

/* Entering interrupt context, for programs that want to see in_interrupt(). */
#define irq_enter()		preempt_count_add(HARDIRQ_OFFSET)
#define irq_exit()		preempt_count_sub(HARDIRQ_OFFSET)
#define local_bh_disable()	preempt_count_add(SOFTIRQ_DISABLE_OFFSET)
#define local_bh_enable()	preempt_count_sub(SOFTIRQ_DISABLE_OFFSET)

/* Interrupts: the irqs_disabled word (Unicorn leaves EFLAGS.IF to us). */
static __always_inline int irqs_disabled(void)
{
	return MMEMU_PERCPU->irqs_disabled != 0;
}

#define irqs_disabled_flags(flags)	((flags) != 0)

static __always_inline void local_irq_disable(void)
{
	MMEMU_PERCPU->irqs_disabled = 1;
	barrier();
}

static __always_inline void local_irq_enable(void)
{
	barrier();
	MMEMU_PERCPU->irqs_disabled = 0;
}

static __always_inline unsigned long __local_irq_save(void)
{
	unsigned long flags = MMEMU_PERCPU->irqs_disabled;

	local_irq_disable();
	return flags;
}

#define local_irq_save(flags)	do { (flags) = __local_irq_save(); } while (0)
#define local_irq_restore(flags) \
	do { barrier(); MMEMU_PERCPU->irqs_disabled = !!(flags); } while (0)
#define local_save_flags(flags)	do { (flags) = MMEMU_PERCPU->irqs_disabled; } while (0)

/* pagefault_disable(): current->pagefault_disabled, kept by the host. */
static __always_inline void pagefault_disable(void)
{
	hypercall0(HC_PAGEFAULT_DISABLE);
}

static __always_inline void pagefault_enable(void)
{
	hypercall0(HC_PAGEFAULT_ENABLE);
}

static __always_inline int pagefault_disabled(void)
{
	return (int)hypercall0(HC_PAGEFAULT_DISABLED);
}

#define faulthandler_disabled()	(pagefault_disabled() || in_atomic())

/*
 * might_sleep(): a function that may sleep says so.  In atomic context
 * (preempt_count != 0 or interrupts off) the host prints 6.1's
 * "BUG: sleeping function called from invalid context at FILE:LINE".
 * The check is inline; the hypercall happens only when there is a report.
 */
static __always_inline void __might_sleep(const char *file, int line)
{
	if (unlikely(preempt_count() != 0 || irqs_disabled()))
		hypercall2(HC_MIGHT_SLEEP, (unsigned long)file, (unsigned long)line);
}

#define might_sleep()		__might_sleep(__FILE__, __LINE__)

/*
 * might_alloc(): what every allocator checks first (6.1's
 * include/linux/sched/mm.h:274): a mask that allows direct reclaim may sleep.
 * For allocators whose fast path runs in the guest (kmalloc).
 */
static __always_inline void might_alloc(gfp_t gfp_mask)
{
	if (gfp_mask & __GFP_DIRECT_RECLAIM)
		__might_sleep("include/linux/sched/mm.h", 274);
}
#define might_sleep_if(cond)	do { if (cond) might_sleep(); } while (0)
#define cant_sleep()		do { } while (0)

/*
 * schedule(): there is nothing else to run, so it returns at once; called in
 * atomic context it is 6.1's "BUG: scheduling while atomic", after which,
 * as in Linux, preempt_count is reset to 0.  cond_resched() is a
 * might_sleep() point; msleep() schedules.
 */
static __always_inline void schedule(void)
{
	hypercall0(HC_SCHEDULE);
}

#define cond_resched()		({ __might_sleep(__FILE__, __LINE__); 0; })

static __always_inline void msleep(unsigned int msecs)
{
	(void)msecs;
	schedule();
}

/*
 * Spinlocks.  One CPU: taking a lock disables preemption and marks it held;
 * there is never anyone to spin against.  Taking a held lock (which would
 * spin forever) and releasing a free one are reported as
 * CONFIG_DEBUG_SPINLOCK's "BUG: spinlock recursion" / "already unlocked".
 */
typedef struct spinlock {
	volatile unsigned int locked;
} spinlock_t;

#define __SPIN_LOCK_UNLOCKED(name)	{ .locked = 0 }
#define DEFINE_SPINLOCK(name)		spinlock_t name = __SPIN_LOCK_UNLOCKED(name)
#define spin_lock_init(lock)		do { (lock)->locked = 0; } while (0)
#define spin_is_locked(lock)		((lock)->locked != 0)

static __always_inline void spin_lock(spinlock_t *lock)
{
	preempt_disable();
	if (unlikely(lock->locked))
		hypercall2(HC_SPIN_BUG, (unsigned long)lock, SPIN_BUG_RECURSION);
	lock->locked = 1;
	barrier();
}

static __always_inline int spin_trylock(spinlock_t *lock)
{
	preempt_disable();
	if (lock->locked) {
		preempt_enable();
		return 0;
	}
	lock->locked = 1;
	barrier();
	return 1;
}

static __always_inline void spin_unlock(spinlock_t *lock)
{
	barrier();
	if (unlikely(!lock->locked))
		hypercall2(HC_SPIN_BUG, (unsigned long)lock, SPIN_BUG_UNLOCKED);
	lock->locked = 0;
	preempt_enable();
}

static __always_inline void spin_lock_irq(spinlock_t *lock)
{
	local_irq_disable();
	spin_lock(lock);
}

static __always_inline void spin_unlock_irq(spinlock_t *lock)
{
	spin_unlock(lock);
	local_irq_enable();
}

static __always_inline void spin_lock_bh(spinlock_t *lock)
{
	local_bh_disable();
	spin_lock(lock);
}

static __always_inline void spin_unlock_bh(spinlock_t *lock)
{
	spin_unlock(lock);
	local_bh_enable();
}

#define spin_lock_irqsave(lock, flags) \
	do { local_irq_save(flags); spin_lock(lock); } while (0)
#define spin_unlock_irqrestore(lock, flags) \
	do { spin_unlock(lock); local_irq_restore(flags); } while (0)

#endif /* _MMEMU_SCHED_H */
