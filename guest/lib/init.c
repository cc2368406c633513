/*
 * init.c - start-up: copy the boot information the host left in the
 * mailbox page into the globals Linux has under the same names.
 */
#include <mmemu.h>

struct page *mem_map;
unsigned long max_pfn;

/*
 * Which kernel flavour this program was built for: 1 for 686-pae
 * (CONFIG_X86_PAE: 64-bit page-table entries and phys_addr_t), 0 for 686.
 * The host refuses to load a program on a machine of the other flavour.
 */
#ifdef CONFIG_X86_PAE
const unsigned int __mmemu_x86_pae __attribute__((used)) = 1;
#else
const unsigned int __mmemu_x86_pae __attribute__((used)) = 0;
#endif
unsigned long max_low_pfn;
void *high_memory;
struct mm_struct init_mm;		/* the kernel's mm: init_mm.pgd = swapper_pg_dir */

/* Called by _start before main(). */
void __sdk mmemu_setup(void)
{
	const volatile struct mmemu_bootinfo *bi = MMEMU_BOOTINFO;

	/* A read, so that the linker keeps the flavour word the host checks. */
	(void)*(const volatile unsigned int *)&__mmemu_x86_pae;

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
