/*
 * 11_address_space.c - the 3G/1G split and its holes.
 *
 * A 32-bit address space is 4 GiB; i386 Linux gives the lower 3 GiB to
 * user space and keeps the top 1 GiB, from PAGE_OFFSET, for the kernel in
 * every process.  That gigabyte holds, in order: the direct map of low
 * memory (physical 0 at PAGE_OFFSET, up to high_memory), an 8 MiB gap
 * (VMALLOC_OFFSET, to catch overruns off the end of the direct map), the
 * vmalloc area, a 2-page gap, the persistent kmap area (pkmap) and, at the
 * very top, the fixmap.  Whatever does not fit in the direct map is
 * HighMem: this is why the direct map ends near 896 MiB.
 */
#include <mmemu.h>

static void region(const char *name, unsigned long start, unsigned long end)
{
	pr_info("%-26s %#010lx-%#010lx %8lu KiB\n", name, start, end, (end - start) >> 10);
}

int main(void)
{
	unsigned long lowmem_end = (unsigned long)high_memory;

	region("user space", 0, PAGE_OFFSET);
	region("direct map (lowmem)", PAGE_OFFSET, lowmem_end);
	region("gap (VMALLOC_OFFSET)", lowmem_end, VMALLOC_START);
	region("vmalloc", VMALLOC_START, VMALLOC_END);
	region("gap (2 pages)", VMALLOC_END, PKMAP_BASE);
	region("pkmap", PKMAP_BASE, PKMAP_BASE + LAST_PKMAP * PAGE_SIZE);
	region("LDT remap, CPU entry area", PKMAP_BASE + LAST_PKMAP * PAGE_SIZE, FIXADDR_START);
	region("fixmap", FIXADDR_START, FIXADDR_TOP);

	pr_info("lowmem: physical 0-%#lx is at virtual %#lx + physical\n",
		__pa(lowmem_end), PAGE_OFFSET);
	pr_info("main() at %p is physical %#lx\n", main, (unsigned long)virt_to_phys(main));
	return 0;
}
