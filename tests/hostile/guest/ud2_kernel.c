/*
 * ud2_kernel.c - ud2 in kernel code, outside BUG() (which mmemu's SDK makes
 * a hypercall): the CPU's invalid-opcode exception.
 *
 * 6.1's handle_invalid_op() finds no bug-table entry and die()s:
 * "invalid opcode: 0000 [#1] PREEMPT SMP", an oops (139).
 */
#include <mmemu.h>

int main(void)
{
	printk("before\n");
	__asm__ volatile("ud2");
	printk("not reached\n");
	return 0;
}
