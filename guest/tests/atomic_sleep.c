/*
 * atomic_sleep.c - sleeping where the kernel must not.
 *
 * Under a spinlock, with preemption disabled, or with interrupts off, a
 * function that may sleep is a bug: 6.1 (CONFIG_DEBUG_ATOMIC_SLEEP) prints
 * "BUG: sleeping function called from invalid context at FILE:LINE" with
 * in_atomic(), irqs_disabled() and preempt_count.  Here: GFP_KERNEL under a
 * spinlock (might_alloc, include/linux/sched/mm.h:274), kmap() with
 * preemption off (include/linux/highmem-internal.h:44), might_sleep() with
 * interrupts off, and msleep() in atomic context ("scheduling while atomic").
 * The right way is shown too: GFP_ATOMIC under the lock reports nothing.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

static DEFINE_SPINLOCK(lock);

int main(void)
{
	struct page *high = alloc_page(GFP_HIGHUSER);
	struct page *p, *q;
	unsigned long flags;
	void *v;

	spin_lock(&lock);
	p = alloc_page(GFP_ATOMIC);		/* fine: GFP_ATOMIC never sleeps */
	q = alloc_page(GFP_KERNEL);		/* BUG: may sleep in direct reclaim */
	spin_unlock(&lock);

	preempt_disable();
	v = kmap(high);				/* BUG: kmap() may sleep for a slot */
	preempt_enable();
	kunmap(high);

	local_irq_save(flags);
	might_sleep();				/* BUG: irqs_disabled(): 1 */
	local_irq_restore(flags);

	preempt_disable();
	msleep(1);				/* BUG: scheduling while atomic */

	pr_info("atomic_sleep: preempt_count %d after schedule(), v %p\n", preempt_count(), v);
	__free_page(p);
	__free_page(q);
	__free_page(high);
	return in_atomic();
}
