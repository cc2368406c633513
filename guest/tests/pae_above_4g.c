/*
 * pae_above_4g.c - HighMem above 4 GiB, which only the 686-pae kernel has
 * (run it on qemu-pc-8g-pae): take GFP_HIGHUSER pages until one lies past
 * pfn 0x100000, write it through kmap(), kmap_local_page() and a
 * set_fixmap() slot (whose phys_addr_t and flags are 64 bits here), read it
 * back through each, and free everything.  Returns 0, or the failed check.
 */
#include <mmemu.h>
#include <mmemu/check.h>
#include <mmemu/highmem.h>

#define ORDER		10		/* 4 MiB blocks: past 3 GiB in under 800 */
#define MAX_BLOCKS	1024

static struct page *taken[MAX_BLOCKS];

int main(void)
{
	struct page *page = NULL;
	unsigned int i, n = 0;	/* blocks taken below 4 GiB */
	u32 *p, *q, *f;
	phys_addr_t phys;

	CHECK(1, sizeof(phys_addr_t) == 8 && sizeof(pteval_t) == 8);
	/* whole blocks, kept until the end, until one lies above 4 GiB */
	for (i = 0; i < MAX_BLOCKS; i++) {
		struct page *blk = alloc_pages(GFP_HIGHUSER, ORDER);

		CHECK(2, blk != NULL);
		if (page_to_pfn(blk) >= 0x100000) {
			page = blk;
			break;
		}
		taken[n++] = blk;
	}
	CHECK(3, page != NULL);
	phys = (phys_addr_t)page_to_pfn(page) << PAGE_SHIFT;
	pr_info("pae_above_4g: pfn %#lx, phys %#llx\n", page_to_pfn(page),
		(unsigned long long)phys);
	CHECK(4, phys >= 0x100000000ULL);

	p = kmap(page);
	p[0] = 0xfeedface;
	p[1023] = 0x4a4a4a4a;
	q = kmap_local_page(page);
	CHECK(5, q[0] == 0xfeedface && q[1023] == 0x4a4a4a4a);
	kunmap_local(q);
	f = (u32 *)set_fixmap_offset(FIX_TEXT_POKE0, phys + 8);
	CHECK(6, f[-2] == 0xfeedface);
	f[-1] = 0x12345678;
	clear_fixmap(FIX_TEXT_POKE0);
	CHECK(7, p[1] == 0x12345678);
	kunmap(page);
	__free_pages(page, ORDER);
	while (n)
		__free_pages(taken[--n], ORDER);
	return 0;
}
