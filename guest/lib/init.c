/*
 * init.c - start-up: copy the boot information the host left in the
 * mailbox page into the globals Linux has under the same names.
 */
#include <mmemu.h>

struct page *mem_map;
unsigned long max_pfn;
unsigned long max_low_pfn;
void *high_memory;
struct mm_struct init_mm;		/* the kernel's mm: init_mm.pgd = swapper_pg_dir */

/* Called by _start before main(). */
void __sdk mmemu_setup(void)
{
	const volatile struct mmemu_bootinfo *bi = MMEMU_BOOTINFO;

	if (bi->magic != BOOTINFO_MAGIC) {
		printk(KERN_ERR "mmemu: no boot information at %p (magic %08x)\n",
		       (void *)bi, (unsigned int)bi->magic);
		return;
	}
	mem_map = (struct page *)bi->mem_map;
	max_pfn = bi->max_pfn;
	max_low_pfn = bi->max_low_pfn;
	high_memory = __va(max_low_pfn << PAGE_SHIFT);
	init_mm.pgd = swapper_pg_dir;
}
