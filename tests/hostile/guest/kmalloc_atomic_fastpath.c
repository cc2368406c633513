/*
 * kmalloc_atomic_fastpath.c - kmalloc(GFP_KERNEL) in atomic context, with
 * the cpu slab holding free objects (the lockless fast path serves it).
 *
 * 6.1's slab_alloc_node() runs slab_pre_alloc_hook() -> might_alloc()
 * before either path, so each of the three is "BUG: sleeping function
 * called from invalid context at include/linux/sched/mm.h:274": under
 * preempt_disable(), under kmap_atomic(), and with interrupts off.
 * GFP_ATOMIC in the same places is silent.  The program goes on (the BUG
 * line is a report, not BUG()): exit 0.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>
#include <mmemu/slab.h>

int main(void)
{
	struct page *page = alloc_page(GFP_HIGHUSER);
	void *warm, *a, *b, *c, *d;
	unsigned long flags;

	warm = kmalloc(64, GFP_KERNEL);		/* the cpu slab now has free objects */
	kfree(warm);

	preempt_disable();
	a = kmalloc(64, GFP_KERNEL);		/* BUG: sleeping function ... */
	d = kmalloc(64, GFP_ATOMIC);		/* fine */
	preempt_enable();

	void *map = kmap_atomic(page);
	b = kmalloc(64, GFP_KERNEL);		/* BUG: sleeping function ... */
	kunmap_atomic(map);

	local_irq_save(flags);
	c = kmalloc(64, GFP_KERNEL);		/* BUG: sleeping function ... */
	local_irq_restore(flags);

	printk("kmalloc_atomic_fastpath: %s\n", a && b && c && d ? "all allocated" : "NULL!");
	kfree(a);
	kfree(b);
	kfree(c);
	kfree(d);
	__free_page(page);
	return 0;
}
