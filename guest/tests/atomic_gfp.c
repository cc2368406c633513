/*
 * atomic_gfp.c - GFP_ATOMIC gets memory GFP_KERNEL cannot.
 *
 * First lowmem is drained with GFP_KERNEL | __GFP_NOWARN, biggest blocks
 * first, until even one page would need reclaim (mmemu has none, so the
 * allocation fails quietly).  Then, under a spinlock, where sleeping is not
 * allowed, GFP_ATOMIC still gets pages: __GFP_HIGH lets it dig below the
 * min watermark into the reserves kept for exactly this.  The drained
 * blocks are chained through their own first word and all given back.
 * Exit status: 0 when GFP_ATOMIC succeeded and no report was made.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

static DEFINE_SPINLOCK(lock);

struct block {
	struct block *next;
	unsigned int order;
};

int main(void)
{
	struct block *head = NULL;
	unsigned long drained = 0, atomic_pages = 0, got, free_before, free_after;
	unsigned long atomic[64];
	int order;

	for (order = MAX_ORDER - 1; order >= 0; order--) {
		for (;;) {
			struct block *b = (struct block *)
				__get_free_pages(GFP_KERNEL | __GFP_NOWARN, order);

			if (!b)
				break;
			b->next = head;
			b->order = order;
			head = b;
			drained += 1UL << order;
		}
	}
	free_before = zone_free_pages(ZONE_NORMAL);

	spin_lock(&lock);
	while (atomic_pages < 64) {
		unsigned long a = __get_free_page(GFP_ATOMIC | __GFP_NOWARN);

		if (!a)
			break;
		atomic[atomic_pages++] = a;
	}
	spin_unlock(&lock);
	free_after = zone_free_pages(ZONE_NORMAL);

	pr_info("atomic_gfp: GFP_KERNEL took %lu lowmem pages until it would reclaim; "
		"then GFP_ATOMIC under a spinlock got %lu more "
		"(Normal zone: %lu free pages before, %lu after)\n",
		drained, atomic_pages, free_before, free_after);
	got = atomic_pages;
	while (atomic_pages > 0)
		free_page(atomic[--atomic_pages]);
	while (head) {
		struct block *next = head->next;

		free_pages((unsigned long)head, head->order);
		head = next;
	}
	return got > 0 && drained > 0 ? 0 : 1;
}
