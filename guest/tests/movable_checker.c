/*
 * movable_checker.c - the ZONE_MOVABLE checker sees a slab page where
 * none may be.
 *
 * Run on pc-1g-movable.  A GFP_HIGHUSER_MOVABLE page (from ZONE_MOVABLE)
 * is disguised as a slab page by setting PG_slab in its struct page, as a
 * stray write into mem_map would: mmemu_check() must now fail (and report
 * "kernel memory in ZONE_MOVABLE").  With the flag cleared again the check
 * passes and the page is freed normally.  Returns 0 when both hold.
 */
#include <mmemu.h>

int main(void)
{
	struct page *page = alloc_page(GFP_HIGHUSER_MOVABLE);
	int broken, healed;

	if (!page || page_zonenum(page) != ZONE_MOVABLE)
		return 1;
	page->flags |= 1UL << PG_slab;		/* the broken state, on purpose */
	broken = mmemu_check();
	page->flags &= ~(1UL << PG_slab);
	healed = mmemu_check();
	__free_page(page);
	if (broken == 0)
		return 2;			/* the checker missed it */
	return healed == 0 ? 0 : 3;
}
