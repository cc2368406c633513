/*
 * highmem_pkmap.c - the persistent kmap area, slot by slot.
 *
 * kmap() of a HighMem page twice gives the same pkmap address; kunmap()
 * drops a use, but the slot stays mapped (pkmap_count 1) until the next
 * flush_all_zero_pkmaps() (kmap_flush_unused() forces one): until then
 * page_address() still returns it.  After the flush the page has no
 * address, and one kunmap() too many is "kernel BUG at mm/highmem.c:358!":
 * mmemu changes nothing, and the BUG kills the task (status 134), so that
 * mistake comes last.
 * Exit status: the number of the first check that failed, else 134.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

#include <mmemu/check.h>

int main(void)
{
	struct page *a = alloc_page(GFP_HIGHUSER);
	struct page *b = alloc_page(GFP_HIGHUSER);
	void *pa, *pa2, *pb;

	CHECK(1, a && b && PageHighMem(a) && PageHighMem(b));
	pa = kmap(a);
	pa2 = kmap(a);
	CHECK(2, pa == pa2 && is_kmap_addr(pa));
	pb = kmap(b);
	CHECK(3, pb != pa && is_kmap_addr(pb));
	*(u32 *)pa = 0x11111111;
	*(u32 *)pb = 0x22222222;
	CHECK(4, *(u32 *)pa2 == 0x11111111);

	kunmap(a);
	kunmap(a);
	CHECK(5, page_address(a) == pa);	/* count 1: mapped, unused, not yet flushed */
	pa2 = kmap(a);				/* reused as it is */
	CHECK(6, pa2 == pa && *(u32 *)pa2 == 0x11111111);
	kunmap(a);

	kmap_flush_unused();
	CHECK(7, page_address(a) == NULL);
	CHECK(8, page_address(b) == pb);	/* still in use */

	kunmap(b);
	__free_page(b);
	pr_info("highmem_pkmap: slot %lu and slot %lu\n", PKMAP_NR(pa), PKMAP_NR(pb));
	kunmap(a);				/* not kmapped: kernel BUG at mm/highmem.c:358! */
	return 0;				/* not reached */
}
