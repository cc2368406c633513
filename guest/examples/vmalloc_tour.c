/*
 * vmalloc_tour.c - a tour of vmalloc(): virtually contiguous, physically not.
 *
 * Shows: vmalloc() hands back one contiguous range in the vmalloc area
 * (is_vmalloc_addr() says so), built from single pages the buddy allocator
 * gave out one by one (GFP_KERNEL | __GFP_HIGHMEM: HighMem pages when the
 * machine has HighMem); vmalloc_to_page() walks the page tables to the page
 * behind each address, and the pfns jump about; data written across the
 * page boundaries reads back intact, because the page tables stitch the
 * pages together; vfree() gives the pages back.
 *
 * A freshly booted machine has long runs of free pages, so first the tour
 * fragments HighMem the way a running system does: it takes 512 pages and
 * gives every other one back.  vmalloc() then gets those scattered pages
 * first (the allocator reuses the most recently freed page), one by one.
 *
 * Returns 0 when every check holds, else the number of the failed check (1..6).
 */
#include <mmemu.h>

#define TOUR_SIZE	(6UL << 20)		/* 6 MiB: 1536 pages */
#define SHOW_PAGES	8
#define NR_HOLES	512

static struct page *held[NR_HOLES];

/* Take NR_HOLES HighMem pages, give every other one back: a fragmented zone. */
static int fragment_highmem(void)
{
	int i;

	for (i = 0; i < NR_HOLES; i++) {
		held[i] = alloc_page(GFP_HIGHUSER);
		if (!held[i])
			return 6;
	}
	for (i = 0; i < NR_HOLES; i += 2) {
		__free_page(held[i]);
		held[i] = NULL;
	}
	return 0;
}

static void release_highmem(void)
{
	int i;

	for (i = 1; i < NR_HOLES; i += 2)
		__free_page(held[i]);
}

static u32 pattern(unsigned long i)
{
	return (u32)(i * 2654435761u) ^ 0x5a5a5a5a;	/* Knuth's multiplicative hash */
}

/* Walk every page of buf: count HighMem pages and physically contiguous runs. */
static int show_pages(void *buf, unsigned long nr_pages)
{
	unsigned long i, prev = 0, runs = 0, highmem = 0;

	for (i = 0; i < nr_pages; i++) {
		void *addr = (char *)buf + i * PAGE_SIZE;
		struct page *page = vmalloc_to_page(addr);
		unsigned long pfn = page_to_pfn(page);

		if (!page)
			return 2;
		if (PageHighMem(page))
			highmem++;
		if (i == 0 || pfn != prev + 1)
			runs++;
		if (i < SHOW_PAGES)
			pr_info("  %p -> pfn %#07lx (phys %#010lx)%s\n", addr, pfn,
				pfn << PAGE_SHIFT, PageHighMem(page) ? " HighMem" : "");
		prev = pfn;
	}
	pr_info("  ... %lu pages: %lu in HighMem, in %lu physically contiguous runs\n",
		nr_pages, highmem, runs);
	return 0;
}

/* Fill the buffer word by word, then check it, across every page boundary. */
static int check_contents(u32 *buf, unsigned long bytes)
{
	unsigned long i, words = bytes / sizeof(u32);
	volatile u8 *edge = (u8 *)buf + PAGE_SIZE - 2;

	for (i = 0; i < words; i++)
		buf[i] = pattern(i);
	for (i = 0; i < words; i++)
		if (buf[i] != pattern(i)) {
			pr_err("word %lu reads %#x, wrote %#x\n", i, buf[i], pattern(i));
			return 3;
		}
	/* An unaligned word straddling the first page boundary. */
	*(volatile u32 *)edge = 0x44332211;
	if (edge[0] != 0x11 || edge[1] != 0x22 || edge[2] != 0x33 || edge[3] != 0x44)
		return 4;
	pr_info("  %lu words written and read back across %lu page boundaries\n",
		words, bytes / PAGE_SIZE - 1);
	return 0;
}

int main(void)
{
	unsigned long used_before = vmalloc_nr_pages();
	int ret = fragment_highmem();
	u32 *buf;

	if (ret)
		return ret;
	buf = vmalloc(TOUR_SIZE);
	if (!buf)
		return 1;
	pr_info("vmalloc(%lu) = %p, is_vmalloc_addr: %d, vmalloc area %#lx-%#lx\n",
		TOUR_SIZE, buf, is_vmalloc_addr(buf), VMALLOC_START, VMALLOC_END);
	if (!is_vmalloc_addr(buf) || is_vmalloc_addr(&ret))	/* the stack is lowmem */
		return 1;
	ret = show_pages(buf, TOUR_SIZE / PAGE_SIZE);
	if (!ret)
		ret = check_contents(buf, TOUR_SIZE);
	if (ret)
		return ret;
	pr_info("VmallocUsed: %lu kB\n", vmalloc_nr_pages() * 4);
	vfree(buf);
	if (vmalloc_nr_pages() != used_before)
		return 5;
	pr_info("vfree() gave the pages back; VmallocUsed: %lu kB\n", vmalloc_nr_pages() * 4);
	release_highmem();
	return 0;
}
