/*
 * highmem_slot_reuse.c - a kmap_atomic/kmap_local slot is reused at once.
 *
 * Two HighMem pages take turns in the same fixmap slot.  Each unmap clears
 * the slot's PTE and flushes its TLB entry (the SDK's invlpg, as
 * arch_kmap_local_post_unmap() does), so every read sees the page mapped
 * now, never the one before.  Returns 0 when all 400 reads do.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

static u32 read_first_word(struct page *page, bool atomic)
{
	volatile u32 *p = atomic ? kmap_atomic(page) : kmap_local_page(page);
	u32 word = *p;				/* the translation is in the TLB now */

	if (atomic)
		kunmap_atomic((void *)p);
	else
		kunmap_local((void *)p);
	return word;
}

int main(void)
{
	struct page *a = alloc_page(GFP_HIGHUSER), *b = alloc_page(GFP_HIGHUSER);
	u32 *p;
	int i;

	if (!a || !b || !PageHighMem(a) || !PageHighMem(b))
		return 1;
	p = kmap_local_page(a);
	*p = 0xaaaa;
	kunmap_local(p);
	p = kmap_local_page(b);
	*p = 0xbbbb;
	kunmap_local(p);
	for (i = 0; i < 100; i++) {
		if (read_first_word(a, i & 1) != 0xaaaa)
			return 2;
		if (read_first_word(b, i & 1) != 0xbbbb)
			return 3;
	}
	__free_page(a);
	__free_page(b);
	return 0;
}
