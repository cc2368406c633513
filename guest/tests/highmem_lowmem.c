/*
 * highmem_lowmem.c - kmap() of a lowmem page is just its direct-map address.
 *
 * Lowmem is mapped at PAGE_OFFSET for good, so kmap(), kmap_local_page() and
 * kmap_atomic() all return page_address() and take no pkmap or fixmap slot
 * (kmap_atomic() still disables preemption); kunmap() of a lowmem page does
 * nothing.  A HighMem page has no page_address() until it is kmapped.
 * Exit status: 0 when every check held, else the number of the first that failed.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

#include <mmemu/check.h>

int main(void)
{
	struct page *low = alloc_page(GFP_KERNEL);
	struct page *high = alloc_page(GFP_HIGHUSER);
	void *direct, *p;

	CHECK(1, low && !PageHighMem(low) && high && PageHighMem(high));
	direct = __va(page_to_pfn(low) << PAGE_SHIFT);
	CHECK(2, page_address(low) == direct);

	p = kmap(low);
	CHECK(3, p == direct);
	CHECK(4, !is_kmap_addr(p));
	kunmap(low);
	CHECK(5, page_address(low) == direct);

	p = kmap_local_page(low);
	CHECK(6, p == direct && MMEMU_PERCPU->kmap_atomic_idx == 0);
	kunmap_local(p);

	p = kmap_atomic(low);
	CHECK(7, p == direct && MMEMU_PERCPU->kmap_atomic_idx == 0 && preempt_count() == 1);
	kunmap_atomic(p);
	CHECK(8, preempt_count() == 0);

	/* HighMem: no address until kmapped, the pkmap address while it is. */
	CHECK(9, page_address(high) == NULL);
	p = kmap(high);
	CHECK(10, is_kmap_addr(p) && page_address(high) == p);
	*(u32 *)p = 0xfeedf00d;
	kunmap(high);

	p = kmap_atomic_pfn(page_to_pfn(low));	/* a pfn gets a slot even in lowmem */
	CHECK(11, (unsigned long)p == fix_to_virt(FIX_KMAP_BEGIN));
	CHECK(12, *(u32 *)p == *(u32 *)direct);
	kunmap_atomic(p);
	CHECK(13, preempt_count() == 0 && MMEMU_PERCPU->kmap_atomic_idx == 0);

	__free_page(low);
	__free_page(high);
	pr_info("highmem_lowmem: lowmem pages map to their direct-map address\n");
	return mmemu_check() == 0 ? 0 : 20;
}
