/*
 * pcp_locked.c - order-0 pages while the host holds the per-cpu lists.
 *
 * The test's IN hook on port 0x510 makes the host take the lists out of
 * guest memory, as a hypercall from a host program's own emu_start() may:
 * the host then holds pcp->lock, and the pages come and go through the
 * host (6.1's pcp_spin_trylock() failing), from the lists it holds.
 */
#include <mmemu.h>

int main(void)
{
	struct per_cpu_pages *pcp = NODE_DATA(0)->node_zones[ZONE_NORMAL].per_cpu_pageset;
	struct page *a, *b;

	pr_info("before: locked %u\n", pcp->lock.locked);
	inb(0x510);
	pr_info("after: locked %u\n", pcp->lock.locked);
	a = alloc_page(GFP_KERNEL);
	b = alloc_page(GFP_KERNEL);
	pr_info("pages %lu %lu\n", page_to_pfn(a), page_to_pfn(b));
	__free_page(a);
	__free_page(b);
	return 0;
}
