/*
 * pte_unbacked.c - a page table entry pointing where no memory is.
 *
 * The first page-directory entry of the vmalloc area becomes a 4 MiB page
 * at physical 0x80400000, past RAM and every device.  On a PC the bus
 * answers there: reads give all ones and writes are lost, and Linux says
 * nothing.  mmemu does the same (with one note of its own, so a learner
 * knows why), and the program goes on: exit 0.
 */
#include <mmemu.h>

int main(void)
{
	unsigned long *pgd = (unsigned long *)swapper_pg_dir;
	unsigned long va = MMEMU_BOOTINFO->vmalloc_start;
	volatile u32 *p = (volatile u32 *)va;
	u32 first;

	pgd[va >> 22] = 0x80400000 | 0x0e3;	/* PSE, present, writable */
	first = p[0];
	p[1] = 5;
	printk("read %08x, then %08x after writing 5\n", first, p[1]);
	pgd[va >> 22] = 0;
	return 0;
}
