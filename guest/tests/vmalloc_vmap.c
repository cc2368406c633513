/*
 * vmalloc_vmap.c - vmap() pages the program allocated itself, in reverse.
 *
 * Three lowmem pages, each stamped through its direct-map address, are
 * vmap()ed in reverse order: the vmap address sees them in the new order,
 * writes through it land in the pages, vmalloc_to_page() names them, and
 * vunmap() leaves them allocated (they are the caller's).  Returns 0 when
 * every check holds.
 */
#include <mmemu.h>

#define NR 3

int main(void)
{
	struct page *pages[NR], *order[NR];
	u32 *stamp;
	char *map;
	int i;

	for (i = 0; i < NR; i++) {
		pages[i] = alloc_page(GFP_KERNEL);
		if (!pages[i])
			return 1;
		stamp = page_address(pages[i]);
		*stamp = 0x1000 + i;
		order[NR - 1 - i] = pages[i];
	}
	map = vmap(order, NR, VM_MAP, PAGE_KERNEL);
	if (!map || !is_vmalloc_addr(map))
		return 2;
	for (i = 0; i < NR; i++) {
		if (*(u32 *)(map + i * PAGE_SIZE) != 0x1000 + (NR - 1 - i))
			return 3;
		if (vmalloc_to_page(map + i * PAGE_SIZE) != order[i])
			return 4;
	}
	map[PAGE_SIZE + 100] = 'x';		/* lands in pages[1] */
	if (((char *)page_address(pages[1]))[100] != 'x')
		return 5;
	pr_info("vmap(%d pages) = %p, reversed: ok\n", NR, map);
	vunmap(map);
	if (page_count(pages[0]) != 1)		/* still ours */
		return 6;
	for (i = 0; i < NR; i++)
		__free_page(pages[i]);
	return mmemu_check() ? 7 : 0;
}
