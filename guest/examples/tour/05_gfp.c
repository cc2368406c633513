/*
 * 05_gfp.c - GFP masks: zone modifiers and the fallback order.
 *
 * The zone modifiers of a gfp mask (__GFP_DMA, __GFP_HIGHMEM,
 * __GFP_MOVABLE) choose the highest zone an allocation may use; the
 * allocator tries that zone first and falls back to the lower ones in
 * turn (Movable -> HighMem -> Normal -> DMA), never to a higher one.  The
 * other bits say how hard to try: GFP_KERNEL may sleep and reclaim,
 * GFP_ATOMIC may not, but may dip into the reserves.
 *
 * The program keeps its 4 MiB blocks, so `buddyinfo --after` shows them gone.
 */
#include <mmemu.h>

#define NR_BLOCKS	64

static const char *const zone_names[MAX_NR_ZONES] = { "DMA", "Normal", "HighMem", "Movable" };
static struct page *blocks[NR_BLOCKS];

static int show(const char *mask, gfp_t gfp)
{
	struct page *page = alloc_page(gfp);
	int zone;

	if (!page)
		return -1;
	zone = page_zonenum(page);
	pr_info("%-32s gfp %#07x -> pfn %#07lx in %s\n", mask, gfp,
		page_to_pfn(page), zone_names[zone]);
	__free_page(page);
	return zone;
}

int main(void)
{
	int n;

	if (show("GFP_KERNEL", GFP_KERNEL) != ZONE_NORMAL ||
	    show("GFP_ATOMIC", GFP_ATOMIC) != ZONE_NORMAL ||
	    show("GFP_DMA", GFP_DMA) != ZONE_DMA ||
	    show("GFP_KERNEL | __GFP_MOVABLE", GFP_KERNEL | __GFP_MOVABLE) != ZONE_NORMAL ||
	    show("GFP_HIGHUSER", GFP_HIGHUSER) != ZONE_HIGHMEM ||
	    show("GFP_HIGHUSER_MOVABLE", GFP_HIGHUSER_MOVABLE) != ZONE_MOVABLE)
		return 3;

	/* Fill ZONE_MOVABLE with 4 MiB blocks: then the next comes from HighMem. */
	for (n = 0; n < NR_BLOCKS; n++) {
		blocks[n] = alloc_pages(GFP_HIGHUSER_MOVABLE, MAX_ORDER - 1);
		if (!blocks[n])
			return 1;
		if (page_zonenum(blocks[n]) != ZONE_MOVABLE)
			break;
	}
	if (n == NR_BLOCKS)
		return 2;
	pr_info("GFP_HIGHUSER_MOVABLE, order %d: %d blocks from Movable, then pfn %#07lx from %s\n",
		MAX_ORDER - 1, n, page_to_pfn(blocks[n]), zone_names[page_zonenum(blocks[n])]);
	return page_zonenum(blocks[n]) == ZONE_HIGHMEM ? 0 : 4;	/* the next zone down */
}
