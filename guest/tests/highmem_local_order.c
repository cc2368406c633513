/*
 * highmem_local_order.c - kmap_local mappings are a stack.
 *
 * Unmapping out of order is 6.1's WARN_ON_ONCE at mm/highmem.c:610, and the
 * slot unmapped is the innermost one whatever address was passed; nesting
 * 16 deep is "kernel BUG at mm/highmem.c:467!" (kmap_local_idx_push), which
 * mmemu refuses (nothing is mapped) and which kills the task.
 * Exit status: the number of the first check that failed, else 134.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

#include <mmemu/check.h>

int main(void)
{
	struct page *page = alloc_page(GFP_HIGHUSER);
	void *a, *b, *m[KM_MAX_IDX];
	int i;

	CHECK(1, page && PageHighMem(page));
	a = kmap_local_page(page);
	b = kmap_local_page(page);
	CHECK(2, a != b && MMEMU_PERCPU->kmap_atomic_idx == 2);
	kunmap_local(a);			/* out of order: WARN, b's slot goes */
	CHECK(3, MMEMU_PERCPU->kmap_atomic_idx == 1);
	kunmap_local(b);			/* pops a's slot (no second warning: ONCE) */
	CHECK(4, MMEMU_PERCPU->kmap_atomic_idx == 0 && mmemu_check() == 0);

	for (i = 0; i < KM_MAX_IDX - 1; i++) {
		m[i] = kmap_local_page(page);
		CHECK(5, m[i] != NULL);
	}
	CHECK(6, MMEMU_PERCPU->kmap_atomic_idx == KM_MAX_IDX - 1 && mmemu_check() == 0);
	m[i] = kmap_local_page(page);		/* the 16th: kernel BUG at mm/highmem.c:467! */
	return 0;				/* not reached */
}
