/*
 * vmalloc_tlb.c - a freed range is reused, and the TLB does not lie about it.
 *
 * Page X is vmap()ed and read through the vmap address (the CPU now caches
 * that translation), then vunmap()ed; page Y is vmap()ed next and gets the
 * same range, the lowest free one.  Reading through the same address must
 * show Y: vunmap() flushed the TLB.  Returns 0 when it does.
 */
#include <mmemu.h>

int main(void)
{
	struct page *x = alloc_page(GFP_KERNEL), *y = alloc_page(GFP_KERNEL);
	volatile u32 *first, *second;

	if (!x || !y)
		return 1;
	*(u32 *)page_address(x) = 0x11111111;
	*(u32 *)page_address(y) = 0x22222222;
	first = vmap(&x, 1, VM_MAP, PAGE_KERNEL);
	if (!first || *first != 0x11111111)
		return 2;
	vunmap((void *)first);
	second = vmap(&y, 1, VM_MAP, PAGE_KERNEL);
	if (second != first)
		return 3;			/* lowest-first: the same range */
	if (*second != 0x22222222) {
		pr_err("stale translation: read %#x through %p\n", *second, second);
		return 4;
	}
	vunmap((void *)second);
	__free_page(x);
	__free_page(y);
	return 0;
}
