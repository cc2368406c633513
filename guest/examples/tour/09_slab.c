/*
 * 09_slab.c - the slab allocator: kmalloc, kzalloc, kfree, kmem_cache.
 *
 * The page allocator deals in pages; most kernel objects are far smaller.
 * The slab allocator (SLUB) cuts pages ("slabs") into objects of one size
 * and keeps a cache per size: kmalloc() rounds a request up to the next
 * kmalloc-N cache, kmem_cache_create() makes a cache for one kind of
 * object.  The struct page of a slab says it is one (PageSlab) and which
 * cache owns it (slab_cache).  Requests above 8 KiB go to the page
 * allocator directly.
 *
 * The program keeps its cache and three of its objects: see slabinfo.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

struct tour_object {			/* what a driver would keep per device */
	unsigned long id;
	char name[40];
	struct tour_object *next;
};

static void show(const char *what, const void *p)
{
	struct page *page = compound_head(virt_to_page(p));

	pr_info("%-20s %p ksize %6zu  %s\n", what, p, ksize(p),
		PageSlab(page) ? page->slab_cache->name : "(not a slab: pages)");
}

int main(void)
{
	struct kmem_cache *cache;
	struct tour_object *obj[3];
	void *small = kmalloc(20, GFP_KERNEL);
	void *zeroed = kzalloc(200, GFP_KERNEL);
	void *big = kmalloc(100 << 10, GFP_KERNEL);
	int i;

	if (!small || !zeroed || !big)
		return 1;
	show("kmalloc(20)", small);
	show("kzalloc(200)", zeroed);
	show("kmalloc(100 KiB)", big);
	if (ksize(small) != 32 || ksize(zeroed) != 256 || PageSlab(virt_to_page(big)))
		return 4;
	kfree(small);
	kfree(zeroed);
	kfree(big);

	cache = kmem_cache_create("tour_object", sizeof(struct tour_object), 0,
				  SLAB_HWCACHE_ALIGN, NULL);
	if (!cache)
		return 2;
	pr_info("kmem_cache_create(\"tour_object\"): object_size %u, size %u, %u objects per slab\n",
		cache->object_size, cache->size, oo_objects(cache->oo));
	for (i = 0; i < 3; i++) {
		obj[i] = kmem_cache_alloc(cache, GFP_KERNEL);
		if (!obj[i])
			return 3;
		obj[i]->id = i;
		show("kmem_cache_alloc()", obj[i]);
	}
	return 0;
}
