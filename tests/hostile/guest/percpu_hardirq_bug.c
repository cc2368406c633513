/*
 * percpu_hardirq_bug.c - preempt_count, a per-cpu word in guest memory,
 * set as if in a hard interrupt; then kmalloc(GFP_KERNEL) and BUG().
 *
 * The allocation in "interrupt context" is "BUG: sleeping function called
 * from invalid context" (in_atomic(): 1); the BUG() then kills the task,
 * and 6.1's make_task_dead() will not kill an interrupt handler: "Kernel
 * panic - not syncing: Aiee, killing interrupt handler!" (137).
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	MMEMU_PERCPU->preempt_count += HARDIRQ_OFFSET;	/* irq_enter(), as a stray store */
	kmalloc(32, GFP_KERNEL);
	BUG();
	return 0;
}
