/*
 * mmemu/slab.h - the slab allocator: kmalloc and kmem_cache
 * (include/linux/slab.h, 6.1; SLUB).
 *
 * struct kmem_cache mirrors mmemu/mm/slab.py, which defines its layout: the
 * fields of 6.1's struct kmem_cache that SLUB's fast paths read, in the
 * kernel's order, with this CPU's struct kmem_cache_cpu inside it.  The
 * fast paths (guest/lib/slab.c) pop and push c->freelist in guest memory
 * without a hypercall, as SLUB's lockless paths do; refills, new slabs,
 * frees to other slabs and every call on a debug cache go to the host
 * (hypercalls HC_SLAB_BASE + 0..7, mmemu/runtime/hc_slab.py).
 */
#ifndef _MMEMU_SLAB_H
#define _MMEMU_SLAB_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/gfp.h>

typedef unsigned int slab_flags_t;

/* Flags for kmem_cache_create() (include/linux/slab.h, 6.1) */
#define SLAB_CONSISTENCY_CHECKS	((slab_flags_t)0x00000100U)	/* slub_debug F */
#define SLAB_RED_ZONE		((slab_flags_t)0x00000400U)	/* slub_debug Z */
#define SLAB_POISON		((slab_flags_t)0x00000800U)	/* slub_debug P */
#define SLAB_HWCACHE_ALIGN	((slab_flags_t)0x00002000U)
#define SLAB_CACHE_DMA		((slab_flags_t)0x00004000U)
#define SLAB_CACHE_DMA32	((slab_flags_t)0x00008000U)
#define SLAB_STORE_USER		((slab_flags_t)0x00010000U)	/* slub_debug U */
#define SLAB_RECLAIM_ACCOUNT	((slab_flags_t)0x00020000U)
#define SLAB_TEMPORARY		SLAB_RECLAIM_ACCOUNT
#define SLAB_PANIC		((slab_flags_t)0x00040000U)
#define SLAB_TYPESAFE_BY_RCU	((slab_flags_t)0x00080000U)
#define SLAB_MEM_SPREAD		((slab_flags_t)0x00100000U)
#define SLAB_TRACE		((slab_flags_t)0x00200000U)	/* slub_debug T */
#define SLAB_NOLEAKTRACE	((slab_flags_t)0x00800000U)
#define SLAB_FAILSLAB		((slab_flags_t)0x02000000U)
#define SLAB_ACCOUNT		((slab_flags_t)0x04000000U)

/* kmalloc(0) returns this; kfree() accepts it (include/linux/slab.h) */
#define ZERO_SIZE_PTR		((void *)16)
#define ZERO_OR_NULL_PTR(x)	((unsigned long)(x) <= (unsigned long)ZERO_SIZE_PTR)

/* The kmalloc caches: kmalloc-8 ... kmalloc-8k; larger sizes are pages. */
#define KMALLOC_SHIFT_LOW	3
#define KMALLOC_SHIFT_HIGH	(PAGE_SHIFT + 1)
#define KMALLOC_MAX_CACHE_SIZE	(1UL << KMALLOC_SHIFT_HIGH)
#define KMALLOC_MAX_SIZE	(1UL << (MAX_ORDER + PAGE_SHIFT - 1))	/* 4 MiB */
#define KMALLOC_MIN_SIZE	(1UL << KMALLOC_SHIFT_LOW)

enum kmalloc_cache_type {
	KMALLOC_NORMAL = 0,
	KMALLOC_CGROUP,		/* __GFP_ACCOUNT */
	KMALLOC_RECLAIM,	/* __GFP_RECLAIMABLE */
	KMALLOC_DMA,		/* __GFP_DMA */
	NR_KMALLOC_TYPES
};

/* Hypercalls (mmemu/runtime/hc_slab.py) */
#define HC_KMEM_CACHE_CREATE	(HC_SLAB_BASE + 0)	/* (name, size, align, flags, ctor) */
#define HC_KMEM_CACHE_DESTROY	(HC_SLAB_BASE + 1)	/* (s) */
#define HC_KMEM_CACHE_SHRINK	(HC_SLAB_BASE + 2)	/* (s) -> int */
#define HC_SLAB_ALLOC		(HC_SLAB_BASE + 3)	/* (s, gfp) -> object; ctor work */
#define HC_SLAB_FREE		(HC_SLAB_BASE + 4)	/* (s or NULL for kfree, x) */
#define HC_KMALLOC_LARGE	(HC_SLAB_BASE + 5)	/* (size, gfp) -> address */
#define HC_KSIZE		(HC_SLAB_BASE + 6)	/* (x) -> size */
#define HC_KMEM_CACHE_VALIDATE	(HC_SLAB_BASE + 7)	/* (s) -> errors found */
#define HC_KMALLOC		(HC_SLAB_BASE + 8)	/* (size, gfp) -> address, all on the host */
#define HC_KFREE		(HC_SLAB_BASE + 9)	/* (x), all on the host */
#define HC_SLAB_ALLOC_NODE	(HC_SLAB_BASE + 10)	/* (s, gfp, node) -> object; ctor work */
#define HC_KMALLOC_LARGE_NODE	(HC_SLAB_BASE + 11)	/* (size, gfp, node) -> address */

#define BOOTINFO_KMALLOC_CACHES	12	/* word index of "kmalloc_caches" */

struct page;

/* This CPU's slab state (mm/slub.c).  Differs: inside struct kmem_cache. */
struct kmem_cache_cpu {
	void **freelist;	/* next free object of the cpu slab */
	unsigned long tid;	/* transaction id, bumped by every change */
	struct page *slab;	/* the cpu slab (its head struct page) */
};

struct kmem_cache {
	struct kmem_cache_cpu *cpu_slab;
	slab_flags_t flags;
	unsigned long min_partial;
	unsigned int size;		/* object stride, metadata included */
	unsigned int object_size;	/* what the user asked for */
	unsigned int offset;		/* free pointer offset */
	unsigned int oo;		/* order << 16 | objects per slab */
	unsigned int min;		/* the same for the fallback order */
	gfp_t allocflags;
	int refcount;
	void (*ctor)(void *);
	unsigned int inuse;		/* offset to metadata */
	unsigned int align;
	unsigned int red_left_pad;	/* left red zone */
	const char *name;
	struct kmem_cache_cpu cpu_slab_data;
};

_Static_assert(sizeof(struct kmem_cache) == 72, "slab.py KMEM_CACHE_SIZE");
_Static_assert(offsetof(struct kmem_cache, flags) == 4, "slab.py KMC_FLAGS");
_Static_assert(offsetof(struct kmem_cache, size) == 12, "slab.py KMC_SIZE");
_Static_assert(offsetof(struct kmem_cache, object_size) == 16, "slab.py KMC_OBJECT_SIZE");
_Static_assert(offsetof(struct kmem_cache, offset) == 20, "slab.py KMC_OFFSET");
_Static_assert(offsetof(struct kmem_cache, oo) == 24, "slab.py KMC_OO");
_Static_assert(offsetof(struct kmem_cache, ctor) == 40, "slab.py KMC_CTOR");
_Static_assert(offsetof(struct kmem_cache, red_left_pad) == 52, "slab.py KMC_RED_LEFT_PAD");
_Static_assert(offsetof(struct kmem_cache, name) == 56, "slab.py KMC_NAME");
_Static_assert(offsetof(struct kmem_cache, cpu_slab_data) == 60, "slab.py KMC_CPU_DATA");

static __always_inline unsigned int oo_objects(unsigned int oo)
{
	return oo & 0xffff;
}

static __always_inline unsigned int oo_order(unsigned int oo)
{
	return oo >> 16;
}

/*
 * kmalloc_caches[NR_KMALLOC_TYPES][KMALLOC_SHIFT_HIGH + 1], from the boot
 * information.  A function-like macro, so that the bootinfo field of the
 * same name (struct mmemu_bootinfo.kmalloc_caches) is not rewritten.
 */
#define kmalloc_caches_table()						\
	((struct kmem_cache *(*)[KMALLOC_SHIFT_HIGH + 1])		\
	 ((const volatile u32 *)(HC_MAILBOX_VIRT + BOOTINFO_OFFSET))[BOOTINFO_KMALLOC_CACHES])

void *kmalloc(size_t size, gfp_t flags);
void *kzalloc(size_t size, gfp_t flags);
void *kmalloc_array(size_t n, size_t size, gfp_t flags);
void *kcalloc(size_t n, size_t size, gfp_t flags);
void *krealloc(const void *p, size_t new_size, gfp_t flags);
void kfree(const void *objp);
size_t ksize(const void *objp);

struct kmem_cache *kmem_cache_create(const char *name, unsigned int size,
				     unsigned int align, slab_flags_t flags,
				     void (*ctor)(void *));
void *kmem_cache_alloc(struct kmem_cache *s, gfp_t flags);
void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t flags);
void kmem_cache_free(struct kmem_cache *s, void *objp);
int kmem_cache_shrink(struct kmem_cache *s);
void kmem_cache_destroy(struct kmem_cache *s);
/* mmemu: validate every slab of a cache, as `slabinfo -v` does; errors found */
int kmem_cache_validate(struct kmem_cache *s);

/*
 * The _node variants take the object from a slab on that node (a new slab
 * from alloc_pages_node() when the cpu slab is elsewhere), or, above
 * KMALLOC_MAX_CACHE_SIZE, the pages; NUMA_NO_NODE is any node.
 */
void *kmem_cache_alloc_node(struct kmem_cache *s, gfp_t flags, int node);
void *kmalloc_node(size_t size, gfp_t flags, int node);

static inline void *kzalloc_node(size_t size, gfp_t flags, int node)
{
	return kmalloc_node(size, flags | __GFP_ZERO, node);
}

static inline void *kmalloc_array_node(size_t n, size_t size, gfp_t flags, int node)
{
	size_t bytes;

	if (unlikely(__builtin_mul_overflow(n, size, &bytes)))
		return NULL;
	return kmalloc_node(bytes, flags, node);
}

static inline void *kcalloc_node(size_t n, size_t size, gfp_t flags, int node)
{
	return kmalloc_array_node(n, size, flags | __GFP_ZERO, node);
}

/* Copies into kmalloc'ed memory (mm/util.c); NULL for a NULL source or no memory. */
char *kstrdup(const char *s, gfp_t gfp);
char *kstrndup(const char *s, size_t max, gfp_t gfp);
void *kmemdup(const void *src, size_t len, gfp_t gfp);
char *kmemdup_nul(const char *s, size_t len, gfp_t gfp);

/*
 * kvmalloc_node() (mm/util.c): kmalloc first; for more than a page, without
 * warnings or retries (__GFP_NOWARN | __GFP_NORETRY), and if that fails,
 * vmalloc (not for GFP_ATOMIC/GFP_NOWAIT callers: NULL then).  Sizes
 * above KMALLOC_MAX_SIZE (4 MiB) always end up in vmalloc.  kvfree() frees
 * either kind: vfree() for a vmalloc address, kfree() otherwise.
 */
void *kvmalloc_node(size_t size, gfp_t flags, int node);
void kvfree(const void *addr);

static inline void *kvmalloc(size_t size, gfp_t flags)
{
	return kvmalloc_node(size, flags, NUMA_NO_NODE);
}

static inline void *kvzalloc_node(size_t size, gfp_t flags, int node)
{
	return kvmalloc_node(size, flags | __GFP_ZERO, node);
}

static inline void *kvzalloc(size_t size, gfp_t flags)
{
	return kvmalloc(size, flags | __GFP_ZERO);
}

static inline void *kvmalloc_array(size_t n, size_t size, gfp_t flags)
{
	size_t bytes;

	if (unlikely(__builtin_mul_overflow(n, size, &bytes)))
		return NULL;
	return kvmalloc(bytes, flags);
}

static inline void *kvcalloc(size_t n, size_t size, gfp_t flags)
{
	return kvmalloc_array(n, size, flags | __GFP_ZERO);
}

#endif /* _MMEMU_SLAB_H */
