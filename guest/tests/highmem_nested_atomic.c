/*
 * highmem_nested_atomic.c - kmap_atomic() nests as a per-CPU stack.
 *
 * Each nested kmap_atomic() of a HighMem page takes the next fixmap slot,
 * FIX_KMAP_BEGIN + depth (addresses go down), raises preempt_count by one
 * and the kmap_atomic_idx word by one; kunmap_atomic() in reverse order
 * undoes it.  6.1 allows KM_MAX_IDX - 1 = 15 nested mappings.  A lowmem
 * page in the middle takes no slot but still disables preemption.
 * Exit status: 0 when every check held, else the number of the first that failed.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

#define DEPTH	(KM_MAX_IDX - 1)

static struct page *high[DEPTH];

#include <mmemu/check.h>

int main(void)
{
	void *addr[DEPTH];
	struct page *low = alloc_page(GFP_KERNEL);
	void *lowaddr;

	CHECK(1, low != NULL && !PageHighMem(low));
	for (int i = 0; i < DEPTH; i++) {
		high[i] = alloc_page(GFP_HIGHUSER);
		CHECK(2, high[i] != NULL && PageHighMem(high[i]));
		u32 *v = kmap(high[i]);
		v[0] = 0x1000 + i;
		v[1023] = 0x2000 + i;
		kunmap(high[i]);
	}
	CHECK(3, preempt_count() == 0 && MMEMU_PERCPU->kmap_atomic_idx == 0);

	for (int i = 0; i < DEPTH; i++) {
		addr[i] = kmap_atomic(high[i]);
		CHECK(4, (unsigned long)addr[i] == fix_to_virt(FIX_KMAP_BEGIN + i));
		CHECK(5, preempt_count() == i + 1);
		CHECK(6, MMEMU_PERCPU->kmap_atomic_idx == (u32)(i + 1));
		CHECK(7, in_atomic());
		if (i == 7) {		/* a lowmem page: no slot, one more preempt level */
			lowaddr = kmap_atomic(low);
			CHECK(8, lowaddr == page_address(low));
			CHECK(9, MMEMU_PERCPU->kmap_atomic_idx == 8 && preempt_count() == 9);
			kunmap_atomic(lowaddr);
			CHECK(10, preempt_count() == 8);
		}
	}
	/* Every mapping is live at once, each showing its own page. */
	for (int i = 0; i < DEPTH; i++) {
		u32 *v = addr[i];

		CHECK(11, v[0] == 0x1000u + i && v[1023] == 0x2000u + i);
		v[1] = 0x3000 + i;
	}
	for (int i = DEPTH - 1; i >= 0; i--) {
		kunmap_atomic(addr[i]);
		CHECK(12, preempt_count() == i && MMEMU_PERCPU->kmap_atomic_idx == (u32)i);
	}
	CHECK(13, !in_atomic());
	CHECK(14, mmemu_check() == 0);

	/* What was written through the atomic slots is in the pages. */
	for (int i = 0; i < DEPTH; i++) {
		u32 *v = kmap_local_page(high[i]);

		CHECK(15, v[1] == 0x3000u + i);
		kunmap_local(v);
		__free_page(high[i]);
	}
	__free_page(low);
	pr_info("highmem_nested_atomic: %d nested kmap_atomic() slots from %#lx down to %#lx\n",
		DEPTH, fix_to_virt(FIX_KMAP_BEGIN), fix_to_virt(FIX_KMAP_BEGIN + DEPTH - 1));
	return 0;
}
