/*
 * slab.c - kmalloc and kmem_cache: SLUB's lockless fast paths in the guest
 * (mm/slub.c: slab_alloc_node(), do_slab_free()), everything else a
 * hypercall to the host's SLUB (mmemu/mm/slub.py) over the same structures.
 *
 * Allocation first does slab_pre_alloc_hook()'s might_alloc(): a mask that
 * may sleep, in atomic context, is "BUG: sleeping function called from
 * invalid context" whatever path the object then takes (the check reads
 * the per-cpu words here; only a report is a hypercall).  Then it pops
 * c->freelist: the next free object's address sits at object + s->offset.  Freeing pushes onto c->freelist when the object is in
 * the cpu slab, is an object's start, and is not the freelist head (6.1's
 * naive double-free check); any other free goes to the host, which checks
 * and reports it.  Debug caches never have a cpu slab, so every call on
 * them reaches the host, as SLUB's debug caches always take the slow path.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

#define __pg_slab(page)	((page)->flags & (1UL << PG_slab))

/* size_index[(size - 1) / 8]: the kmalloc cache index of sizes up to 192 */
static const u8 size_index[24] = {
	3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2
};

static __always_inline unsigned int kmalloc_index(size_t size)
{
	if (size <= 192)
		return size_index[(size - 1) / 8];
	return 32 - __builtin_clz(size - 1);		/* fls(size - 1) */
}

static __always_inline enum kmalloc_cache_type kmalloc_type(gfp_t flags)
{
	if (likely(!(flags & (__GFP_DMA | __GFP_RECLAIMABLE | __GFP_ACCOUNT))))
		return KMALLOC_NORMAL;
	if (flags & __GFP_DMA)
		return KMALLOC_DMA;
	if (flags & __GFP_RECLAIMABLE)
		return KMALLOC_RECLAIM;
	return KMALLOC_CGROUP;
}

/* A new slab of a cache with a constructor: run it over every object. */
static __always_inline void slab_run_ctors(struct kmem_cache *s)
{
	unsigned long first = HC_MAILBOX[HC_WORD_CTOR];

	if (unlikely(first)) {
		unsigned int i, n = oo_objects(s->oo);

		HC_MAILBOX[HC_WORD_CTOR] = 0;
		for (i = 0; i < n; i++)
			s->ctor((void *)(first + i * s->size));
	}
}

/* __slab_alloc(): the host refills; then run the constructor over a new slab. */
static noinline void * __sdk __slab_alloc(struct kmem_cache *s, gfp_t flags)
{
	void *object = (void *)hypercall2(HC_SLAB_ALLOC, (unsigned long)s, flags);

	slab_run_ctors(s);
	return object;
}

/* __slab_alloc() for a node: the host finds or makes a slab there. */
static noinline void * __sdk __slab_alloc_node(struct kmem_cache *s, gfp_t flags, int node)
{
	void *object = (void *)hypercall3(HC_SLAB_ALLOC_NODE, (unsigned long)s, flags,
					  (unsigned long)node);

	slab_run_ctors(s);
	return object;
}

/* slab_alloc_node(): pop the cpu freelist, else the slow path. */
static __always_inline void *slab_alloc(struct kmem_cache *s, gfp_t flags)
{
	struct kmem_cache_cpu *c;
	void *object;

	might_alloc(flags);			/* slab_pre_alloc_hook() */
	c = s->cpu_slab;
	object = c->freelist;

	if (likely(object)) {
		c->freelist = *(void **)((char *)object + s->offset);
		c->tid++;
	} else {
		object = __slab_alloc(s, flags);
	}
	if (unlikely(flags & __GFP_ZERO) && likely(object))
		memset(object, 0, s->object_size);
	return object;
}

/*
 * slab_alloc_node() with a node: the fast path only when the cpu slab is on
 * that node (node_match()), else the host's slow path for the node.
 */
static __always_inline void *slab_alloc_node(struct kmem_cache *s, gfp_t flags, int node)
{
	struct kmem_cache_cpu *c;
	void *object;

	if (node == NUMA_NO_NODE)
		return slab_alloc(s, flags);
	might_alloc(flags);			/* slab_pre_alloc_hook() */
	c = s->cpu_slab;
	object = c->freelist;
	if (likely(object && c->slab && page_to_nid(c->slab) == node)) {
		c->freelist = *(void **)((char *)object + s->offset);
		c->tid++;
	} else {
		object = __slab_alloc_node(s, flags, node);
	}
	if (unlikely(flags & __GFP_ZERO) && likely(object))
		memset(object, 0, s->object_size);
	return object;
}

/* virt_to_slab()'s page: the head struct page of lowmem address x, or NULL. */
static __always_inline struct page *virt_to_head_page(const void *x)
{
	unsigned long addr = (unsigned long)x;
	struct page *page;
	unsigned long head;

	if (addr < PAGE_OFFSET || __pa(addr) >> PAGE_SHIFT >= max_low_pfn)
		return NULL;
	page = virt_to_page(addr);
	head = page->compound_head;
	if (head & 1)
		page = (struct page *)(head - 1);
	return page;
}

/* do_slab_free()'s fast path: push x onto the cpu freelist, if it may go there. */
static __always_inline bool slab_free_fast(struct kmem_cache *s, struct page *slab,
					   const void *x)
{
	struct kmem_cache_cpu *c = s->cpu_slab;
	unsigned long off;

	if (slab != c->slab)
		return false;
	off = (unsigned long)x - (unsigned long)__va(page_to_pfn(slab) << PAGE_SHIFT);
	if (off % s->size || off >= ((slab->counters >> 16) & 0x7fff) * s->size)
		return false;			/* not an object's start: the host reports */
	if (unlikely((void *)x == (void *)c->freelist))
		return false;			/* naive double free: the host reports */
	*(void **)((char *)x + s->offset) = c->freelist;
	c->freelist = (void **)x;
	c->tid++;
	return true;
}

void * __sdk kmem_cache_alloc(struct kmem_cache *s, gfp_t flags)
{
	return slab_alloc(s, flags);
}

void * __sdk kmem_cache_zalloc(struct kmem_cache *s, gfp_t flags)
{
	return slab_alloc(s, flags | __GFP_ZERO);
}

void __sdk kmem_cache_free(struct kmem_cache *s, void *x)
{
	struct page *slab = virt_to_head_page(x);

	if (slab && __pg_slab(slab) && slab->slab_cache == s && slab_free_fast(s, slab, x))
		return;
	hypercall2(HC_SLAB_FREE, (unsigned long)s, (unsigned long)x);
}

void * __sdk kmalloc(size_t size, gfp_t flags)
{
	struct kmem_cache *s;

	if (unlikely(size > KMALLOC_MAX_CACHE_SIZE))
		return (void *)hypercall2(HC_KMALLOC_LARGE, size, flags);
	if (unlikely(!size))
		return ZERO_SIZE_PTR;
	s = kmalloc_caches_table()[kmalloc_type(flags)][kmalloc_index(size)];
	return slab_alloc(s, flags);
}

void * __sdk kmem_cache_alloc_node(struct kmem_cache *s, gfp_t flags, int node)
{
	return slab_alloc_node(s, flags, node);
}

void * __sdk kmalloc_node(size_t size, gfp_t flags, int node)
{
	struct kmem_cache *s;

	if (unlikely(size > KMALLOC_MAX_CACHE_SIZE))
		return (void *)hypercall3(HC_KMALLOC_LARGE_NODE, size, flags, (unsigned long)node);
	if (unlikely(!size))
		return ZERO_SIZE_PTR;
	s = kmalloc_caches_table()[kmalloc_type(flags)][kmalloc_index(size)];
	return slab_alloc_node(s, flags, node);
}

void * __sdk kzalloc(size_t size, gfp_t flags)
{
	return kmalloc(size, flags | __GFP_ZERO);
}

void * __sdk kmalloc_array(size_t n, size_t size, gfp_t flags)
{
	size_t bytes;

	if (unlikely(__builtin_mul_overflow(n, size, &bytes)))
		return NULL;
	return kmalloc(bytes, flags);
}

void * __sdk kcalloc(size_t n, size_t size, gfp_t flags)
{
	return kmalloc_array(n, size, flags | __GFP_ZERO);
}

void __sdk kfree(const void *x)
{
	struct page *slab;

	if (unlikely(ZERO_OR_NULL_PTR(x)))
		return;
	slab = virt_to_head_page(x);
	if (likely(slab && __pg_slab(slab)) &&
	    slab_free_fast((struct kmem_cache *)slab->slab_cache, slab, x))
		return;
	hypercall2(HC_SLAB_FREE, 0, (unsigned long)x);
}

/* slab_ksize() */
static __always_inline size_t slab_ksize(const struct kmem_cache *s)
{
	if (s->flags & (SLAB_RED_ZONE | SLAB_POISON))
		return s->object_size;
	if (s->flags & (SLAB_TYPESAFE_BY_RCU | SLAB_STORE_USER))
		return s->inuse;
	return s->size;
}

size_t __sdk ksize(const void *x)
{
	struct page *slab;

	if (unlikely(ZERO_OR_NULL_PTR(x)))
		return 0;
	slab = virt_to_head_page(x);
	if (likely(slab && __pg_slab(slab)))
		return slab_ksize((const struct kmem_cache *)slab->slab_cache);
	return hypercall1(HC_KSIZE, (unsigned long)x);
}

void * __sdk krealloc(const void *p, size_t new_size, gfp_t flags)
{
	size_t ks = 0;
	void *ret;

	if (unlikely(!new_size)) {
		kfree(p);
		return ZERO_SIZE_PTR;
	}
	if (likely(!ZERO_OR_NULL_PTR(p)))
		ks = ksize(p);
	if (ks >= new_size)
		return (void *)p;	/* it still fits: shrink or grow in place */
	ret = kmalloc(new_size, flags);
	if (ret && !ZERO_OR_NULL_PTR(p)) {
		memcpy(ret, p, ks);
		kfree(p);
	}
	return ret;
}

struct kmem_cache * __sdk kmem_cache_create(const char *name, unsigned int size,
					    unsigned int align, slab_flags_t flags,
					    void (*ctor)(void *))
{
	return (struct kmem_cache *)hypercall5(HC_KMEM_CACHE_CREATE, (unsigned long)name,
					       size, align, flags, (unsigned long)ctor);
}

int __sdk kmem_cache_shrink(struct kmem_cache *s)
{
	return (int)hypercall1(HC_KMEM_CACHE_SHRINK, (unsigned long)s);
}

void __sdk kmem_cache_destroy(struct kmem_cache *s)
{
	if (s)
		hypercall1(HC_KMEM_CACHE_DESTROY, (unsigned long)s);
}

int __sdk kmem_cache_validate(struct kmem_cache *s)
{
	return (int)hypercall1(HC_KMEM_CACHE_VALIDATE, (unsigned long)s);
}
