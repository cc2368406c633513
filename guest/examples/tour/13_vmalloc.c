/*
 * 13_vmalloc.c - vmalloc: virtually contiguous, physically scattered.
 *
 * kmalloc() and alloc_pages() of a large size need that many physically
 * contiguous pages, which a fragmented machine may not have.  vmalloc()
 * takes the pages one by one, from anywhere (HighMem first on i386), and
 * maps them side by side in the vmalloc area.  That costs: a page
 * allocation per page, a page table entry per page (and page table pages),
 * an unmapped guard page after every area, a TLB flush when it is freed,
 * and every access goes through 4 KiB TLB entries where the direct map
 * uses 4 MiB pages.  So the kernel uses it for big, long-lived buffers.
 */
#include <mmemu.h>

#define SIZE	(1UL << 20)
#define NR_HOLES	32

static struct page *held[NR_HOLES];

int main(void)
{
	unsigned long i, runs = 1;
	u8 *buf;

	/* A freshly booted machine has long runs of free pages; a running one
	 * does not.  Fragment HighMem a little: take pages, free every other. */
	for (i = 0; i < NR_HOLES; i++)
		if (!(held[i] = alloc_page(GFP_HIGHUSER)))
			return 1;
	for (i = 0; i < NR_HOLES; i += 2)
		__free_page(held[i]);

	buf = vmalloc(SIZE);
	if (!buf)
		return 1;
	pr_info("vmalloc(1 MiB) = %p, is_vmalloc_addr() %d\n", buf, is_vmalloc_addr(buf));
	for (i = 0; i < 4; i++)
		pr_info("  page %lu at %p: pfn %#07lx %s\n", i, buf + i * PAGE_SIZE,
			vmalloc_to_pfn(buf + i * PAGE_SIZE),
			PageHighMem(vmalloc_to_page(buf + i * PAGE_SIZE)) ? "HighMem" : "lowmem");
	for (i = 1; i < SIZE / PAGE_SIZE; i++)
		if (vmalloc_to_pfn(buf + i * PAGE_SIZE) != vmalloc_to_pfn(buf + (i - 1) * PAGE_SIZE) + 1)
			runs++;
	pr_info("  %lu pages in %lu physically contiguous run(s)\n", SIZE / PAGE_SIZE, runs);

	memset(buf, 0x5a, SIZE);	/* one contiguous range to the program */
	pr_info("  byte %lu reads %#x\n", SIZE - 1, buf[SIZE - 1]);
	if (runs < 2 || buf[SIZE - 1] != 0x5a)
		return 2;
	return 0;			/* keeps it: see vmallocinfo */
}
