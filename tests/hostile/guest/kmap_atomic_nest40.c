/*
 * kmap_atomic_nest40.c - 40 nested kmap_atomic() of HighMem pages.
 *
 * 6.1 keeps at most KM_MAX_IDX - 1 = 15 kmap_local slots per task: the 16th
 * push is "kernel BUG at mm/highmem.c:467!", and a BUG kills the task, so
 * the run ends there with status 134 and "after" never prints.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

int main(void)
{
	struct page *page = alloc_page(GFP_HIGHUSER);

	if (!page)
		return 1;
	for (int i = 0; i < 40; i++)
		kmap_atomic(page);
	printk("after\n");
	return 0;
}
