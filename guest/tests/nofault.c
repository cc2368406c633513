/*
 * nofault.c - a guest that takes a hundred page faults in one run and
 * survives them all: get_kernel_nofault() reads through the exception
 * table, so each fault resumes at a fixup that returns -EFAULT.
 * Exit status: the number of reads that did not behave as expected.
 */
#include <mmemu.h>

int main(void)
{
	int bad = 0, faults = 0, i;
	u32 v;
	static u32 present = 0x1234abcd;

	for (i = 0; i < 100; i++) {
		/* user space: nothing is mapped below PAGE_OFFSET for the kernel */
		if (get_kernel_nofault(v, (void *)(0x1000 + i * 0x10000)) == -EFAULT)
			faults++;
		else
			bad++;
	}
	if (get_kernel_nofault(v, &present) || v != 0x1234abcd)
		bad++;
	printk(KERN_INFO "nofault: %d faults handled, value %x\n", faults, v);
	return bad;
}
