/*
 * slab_not_slab.c - kfree() and kmem_cache_free() of memory that is not
 * from the slab allocator: a page from __get_free_page().
 *
 * 6.1's kfree() takes a page without PG_slab for a large kmalloc block and
 * warns in free_large_kmalloc() (WARN_ON_ONCE(order == 0), then "object
 * pointer: 0x..."); kmem_cache_free() warns "virt_to_cache: Object is not a
 * Slab page!".  mmemu refuses both frees, so the page is still ours to
 * free_page().  Returns 0.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	unsigned long page = __get_free_page(GFP_KERNEL);
	struct kmem_cache *cache = kmem_cache_create("not_slab_test", 32, 0, 0, NULL);

	if (!page || !cache)
		return 1;
	kfree((void *)page);				/* BUG: not a slab object */
	kmem_cache_free(cache, (void *)(page + 64));	/* BUG: not a slab page */
	free_page(page);
	kmem_cache_destroy(cache);
	return mmemu_check() ? 2 : 0;
}
