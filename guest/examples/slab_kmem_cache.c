/*
 * slab_kmem_cache.c - a tour of a kmem_cache of your own.
 *
 * Shows: kmem_cache_create() with a constructor, which runs once for every
 * object when SLUB makes a new slab (not at each allocation: a freed object
 * comes back as it was left); SLAB_HWCACHE_ALIGN aligns objects to the
 * cache line; kmem_cache_zalloc() zeroes (on a cache without a
 * constructor, whose work zeroing would undo); objects fill slab after slab;
 * kmem_cache_shrink() gives empty slabs back; kmem_cache_destroy() of an
 * empty cache frees it all.
 *
 * Returns 0 when every check holds, else the number of the failed check.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

struct thing {
	unsigned int magic;
	unsigned int uses;
	char name[40];
};

#define THING_MAGIC	0x7431a9e5
#define NR_THINGS	200

static int constructed;

static void thing_ctor(void *obj)
{
	struct thing *t = obj;

	t->magic = THING_MAGIC;
	t->uses = 0;
	constructed++;
}

int main(void)
{
	static struct thing *things[NR_THINGS];
	struct kmem_cache *cache, *plain;
	struct thing *t, *z;
	int i;

	cache = kmem_cache_create("thing_cache", sizeof(struct thing), 0,
				  SLAB_HWCACHE_ALIGN, thing_ctor);
	/* SLAB_HWCACHE_ALIGN: cache_line_size(), 32 bytes on the qemu32 CPU */
	if (!cache || cache->object_size != sizeof(struct thing) || cache->size % 32)
		return 1;
	t = kmem_cache_alloc(cache, GFP_KERNEL);
	if (!t || t->magic != THING_MAGIC || constructed != (int)oo_objects(cache->oo))
		return 2;
	if ((unsigned long)t % 32)
		return 3;
	pr_info("%s: %u objects of %u bytes per slab, ctor ran %d times\n",
		cache->name, oo_objects(cache->oo), cache->size, constructed);
	t->uses = 7;
	kmem_cache_free(cache, t);
	t = kmem_cache_alloc(cache, GFP_KERNEL);	/* the same object, as left */
	if (t->uses != 7)
		return 4;
	kmem_cache_free(cache, t);

	plain = kmem_cache_create("plain_thing", sizeof(struct thing), 0, 0, NULL);
	z = plain ? kmem_cache_zalloc(plain, GFP_KERNEL) : NULL;
	if (!z || z->magic != 0 || z->uses != 0)
		return 5;			/* zeroed (no ctor here: it would be undone) */
	kmem_cache_free(plain, z);
	kmem_cache_destroy(plain);

	for (i = 0; i < NR_THINGS; i++) {
		things[i] = kmem_cache_alloc(cache, GFP_KERNEL);
		if (!things[i] || things[i]->magic != THING_MAGIC)
			return 6;
	}
	for (i = 0; i < NR_THINGS; i++)
		kmem_cache_free(cache, things[i]);
	if (kmem_cache_shrink(cache) != 0)
		return 7;			/* every slab was empty */
	kmem_cache_destroy(cache);
	pr_info("thing_cache: %d allocations over several slabs, shrunk and destroyed\n",
		NR_THINGS);
	return mmemu_check() ? 8 : 0;
}
