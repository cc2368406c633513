/*
 * pageflags.c - SDK self-test: the struct page helpers read mem_map right.
 *
 * Run by tests/test_build.py on a bare CPU with a fake mem_map:
 *   pfn 1 PG_reserved, pfn 2 a free order-3 buddy block, pfn 3 PG_slab,
 *   pfn 4 a compound head and pfn 5 its tail, pfn 6 in ZONE_HIGHMEM of
 *   node 2, and a fake host that answers HC_PAGE_ADDRESS with 0xfec01000.
 * Exits with one bit per check that held (0x3ff when all did).
 */
#include <mmemu.h>

int main(void)
{
	struct page *high = pfn_to_page(6);
	int ok = 0;

	ok |= (PageReserved(pfn_to_page(1)) && !PageReserved(pfn_to_page(2))) << 0;
	ok |= (PageBuddy(pfn_to_page(2)) && buddy_order(pfn_to_page(2)) == 3) << 1;
	ok |= (!PageBuddy(pfn_to_page(1)) && !PageBuddy(pfn_to_page(3))) << 2;
	ok |= (PageSlab(pfn_to_page(3)) && !PageSlab(pfn_to_page(4))) << 3;
	ok |= (PageHead(pfn_to_page(4)) && PageCompound(pfn_to_page(4))) << 4;
	ok |= (PageTail(pfn_to_page(5)) && PageCompound(pfn_to_page(5)) &&
	       !PageCompound(pfn_to_page(1))) << 5;
	ok |= (PageHighMem(high) && !PageHighMem(pfn_to_page(1))) << 6;
	ok |= (page_zonenum(high) == ZONE_HIGHMEM && page_to_nid(high) == 2) << 7;
	ok |= (page_address(high) == (void *)0xfec01000) << 8;
	ok |= (page_count(pfn_to_page(3)) == 1 && page_count(pfn_to_page(2)) == 0) << 9;
	return ok;
}
