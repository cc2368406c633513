/*
 * pgd_outside_ram.c - the vmalloc area's page-directory entries pointed at
 * a "page table" past the end of RAM (0xfff00000), then vmalloc().
 *
 * 6.1's vmap_pages_pte_range() writes the new PTEs through
 * pte_offset_kernel(), that is __va() of the table's address: an address
 * nothing maps, so the kernel oopses there ("BUG: unable to handle page
 * fault for address: ..."), and the task dies (139).
 */
#include <mmemu.h>
#include <mmemu/vmalloc.h>

int main(void)
{
	unsigned long *pgd = (unsigned long *)swapper_pg_dir;
	unsigned long va;

	for (va = MMEMU_BOOTINFO->vmalloc_start; va < MMEMU_BOOTINFO->vmalloc_end; va += 1UL << 22)
		pgd[va >> 22] = 0xfff00000 | 0x063;	/* present, RW: a table past RAM */
	vmalloc(4096);
	printk("not reached\n");
	return 0;
}
