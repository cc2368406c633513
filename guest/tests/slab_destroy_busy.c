/*
 * slab_destroy_busy.c - kmem_cache_destroy() of a cache with live objects.
 *
 * SLUB lists what is left ("BUG busy_cache (Not tainted): Objects remaining
 * in busy_cache on __kmem_cache_shutdown()", one "Object 0x... @offset=N"
 * per object), then kmem_cache_destroy() warns "kmem_cache_destroy
 * busy_cache: Slab cache still has objects when called from main+..." and
 * keeps the cache: its objects stay valid.  Returns 0.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	struct kmem_cache *cache = kmem_cache_create("busy_cache", 100, 0, SLAB_STORE_USER, NULL);
	char *a, *b;

	if (!cache)
		return 1;
	a = kmem_cache_alloc(cache, GFP_KERNEL);
	b = kmem_cache_alloc(cache, GFP_KERNEL);
	if (!a || !b)
		return 2;
	kmem_cache_free(cache, b);
	kmem_cache_destroy(cache);	/* BUG: a is still allocated */
	a[0] = 1;			/* the object survived */
	kmem_cache_free(cache, a);
	return mmemu_check() ? 3 : 0;
}
