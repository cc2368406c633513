/*
 * exhaust.c - run the page allocator dry, give everything back, do it again.
 *
 * Shows: how many order-0 GFP_KERNEL pages lowmem really gives (fewer than
 * it has free: the allocator stops at the min watermark and keeps the
 * lowmem_reserve for other zones), that a failed allocation with
 * __GFP_NOWARN returns NULL quietly, and that freeing every page restores
 * the allocator exactly: the second run reaches the same count.
 *
 * The pages are kept in a chain through the pages themselves: the first
 * word of each page holds the address of the previous one, as Linux's own
 * free lists live inside the memory they manage.
 *
 * Returns 0 when both runs reach the same count, 1 if not, 2 if nothing
 * could be allocated at all.
 */
#include <mmemu.h>

#define EXHAUST_GFP	(GFP_KERNEL | __GFP_NOWARN)

/* Allocate until NULL; returns the count and the chain's head in *head. */
static unsigned long grab_all(unsigned long *head)
{
	unsigned long count = 0, addr, chain = 0;

	while ((addr = __get_free_page(EXHAUST_GFP)) != 0) {
		*(unsigned long *)addr = chain;
		chain = addr;
		count++;
	}
	*head = chain;
	return count;
}

static void free_all(unsigned long chain)
{
	while (chain) {
		unsigned long next = *(unsigned long *)chain;

		free_page(chain);
		chain = next;
	}
}

int main(void)
{
	unsigned long free_before = nr_free_pages();
	unsigned long first, second, chain;

	pr_info("exhaust: %lu pages free (%lu in DMA, %lu in Normal, %lu in HighMem)\n",
		free_before, zone_free_pages(ZONE_DMA), zone_free_pages(ZONE_NORMAL),
		zone_free_pages(ZONE_HIGHMEM));

	first = grab_all(&chain);
	pr_info("exhaust: run 1: %lu order-0 GFP_KERNEL pages (%lu KiB) before NULL\n",
		first, first * (PAGE_SIZE / 1024));
	free_all(chain);

	second = grab_all(&chain);
	pr_info("exhaust: run 2: %lu pages\n", second);
	free_all(chain);

	pr_info("exhaust: %lu pages free at the end\n", nr_free_pages());
	if (first == 0)
		return 2;
	if (first != second) {
		pr_err("exhaust: the runs differ: %lu then %lu\n", first, second);
		return 1;
	}
	return 0;
}
