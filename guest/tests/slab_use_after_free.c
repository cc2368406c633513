/*
 * slab_use_after_free.c - writing to a kmalloc(64) object after kfree().
 *
 * With slub_debug=FZPU a free object is poisoned (0x6b, last byte 0xa5).
 * The write is found twice: by validating the cache (as `slabinfo -v`
 * does), and, after a second write, by the next allocation from the slab,
 * which checks the object before handing it out.  Each reports "BUG
 * kmalloc-64 (Not tainted): Poison overwritten" and restores the poison.
 * Returns 0.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	struct kmem_cache *kmalloc_64 = kmalloc_caches_table()[KMALLOC_NORMAL][6];
	char *p = kmalloc(64, GFP_KERNEL), *q;

	if (!p)
		return 1;
	kfree(p);
	p[8] = 0;			/* BUG: use after free */
	if (kmem_cache_validate(kmalloc_64) != 1)
		return 2;
	p[8] = 0;			/* and again */
	q = kmalloc(64, GFP_KERNEL);	/* checks the object it hands out */
	if (!q)
		return 3;
	kfree(q);
	return mmemu_check() ? 4 : 0;
}
