/*
 * fuzz.c - the guest half of mmemu's end-to-end fuzzer (mmemu/harness/guestfuzz.py,
 * GuestFuzzer).
 *
 * A seeded PRNG picks, op after op, a call of the memory API through the
 * real SDK wrappers (the slab fast paths included): page allocator, kmalloc
 * and kmem_cache, vmalloc and vmap, ioremap, kmap/kmap_atomic/kmap_local,
 * spinlocks with GFP_ATOMIC.  Every live object carries a pattern derived
 * from its key; the program checks patterns itself (through kmap for
 * HighMem pages, through the vmap and vmalloc views of the same pages) and
 * tells the host about any damage (HC_FUZZ_FAIL).  Hostile arguments go
 * only to calls whose wrappers hand them straight to a hypercall: the
 * program never dereferences a pointer it did not get from an allocator.
 *
 * After each op it reports to the host (HC_FUZZ_STEP), which checks its
 * own counters and may end the chunk: main() returns, and the host runs
 * the program again; all state lives in globals, so it carries on.  Every
 * check_every ops it asks for the full consistency check (HC_CHECK) and
 * verifies every pattern.  At the end it frees everything and checks once
 * more.
 */
#include <mmemu.h>

#define HC_FUZZ_PARAM	(HC_DEBUG_BASE + 2)	/* (index) -> value */
#define HC_FUZZ_STEP	(HC_DEBUG_BASE + 3)	/* (step, op, a0, a1, ret) -> 1: end the chunk */
#define HC_FUZZ_FAIL	(HC_DEBUG_BASE + 4)	/* (what, addr, want, got) */

enum { P_SEED, P_CALLS, P_CHECK_EVERY, P_FLAGS, P_DEV_BASE, P_DEV_SIZE };
#define F_HOSTILE	2	/* also make the bad calls */

/* What HC_FUZZ_FAIL reports (mmemu/harness/guestfuzz.py GUEST_FAILS mirrors these). */
enum { FAIL_PATTERN = 1, FAIL_ZERO, FAIL_ZONE, FAIL_CHECK, FAIL_VALIDATE, FAIL_KSIZE,
       FAIL_MAP, FAIL_REALLOC, FAIL_ALIGN };

enum kind { K_NONE, K_PAGES, K_GFP, K_KMALLOC, K_CACHE_OBJ, K_VMALLOC, K_VMAP, K_IOREMAP };

#define NOBJ		96
#define NCACHE		6
#define NKMAP		24
#define VMAP_MAX	8

struct obj {
	u8 kind;
	u8 order;		/* K_PAGES, K_GFP */
	u8 cache;		/* K_CACHE_OBJ: index in caches[] */
	u8 npages;		/* K_VMAP */
	u32 key;
	unsigned long size;	/* bytes */
	void *p;		/* address; K_PAGES: none */
	struct page *page;	/* K_PAGES */
	int pins;		/* vmaps and kmaps of a K_PAGES block */
	struct page **pages;	/* K_VMAP: the kmalloc'd array */
	u8 src[VMAP_MAX];	/* K_VMAP: the K_PAGES slot of each page ... */
	u8 src_k[VMAP_MAX];	/* ... and which page of that block */
};

struct cache {
	struct kmem_cache *s;
	unsigned int size;
	int live;
};

static struct obj objs[NOBJ];
static struct cache caches[NCACHE];
static struct { int slot, k; void *addr; } kmaps[NKMAP];
static u32 rng;
static unsigned long step, ncalls, check_every, flags, dev_base, dev_size;
static int started, finished, stop_chunk;
static unsigned long last_ret, last_a0, last_a1;
static DEFINE_SPINLOCK(fuzz_lock);

/* The ops, in the order mmemu/harness/guestfuzz.py GUEST_OPS names them. */
enum { OP_ALLOC_PAGES, OP_FREE_PAGES, OP_GFP, OP_FREE_GFP, OP_KMALLOC, OP_KFREE, OP_KREALLOC,
       OP_CACHE_CREATE, OP_CACHE_ALLOC, OP_CACHE_FREE, OP_CACHE_DESTROY, OP_CACHE_SHRINK,
       OP_VMALLOC, OP_VFREE, OP_VMAP, OP_VUNMAP, OP_IOREMAP, OP_IOUNMAP, OP_KMAP, OP_KUNMAP,
       OP_KMAP_NEST, OP_ATOMIC_ALLOC, OP_CHECK_ONE, OP_HOSTILE_FREE, OP_HOSTILE_VM,
       OP_HOSTILE_SLAB, OP_HOSTILE_KMAP, NR_OPS, OP_DONE = 0xffff };

static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static u32 below(u32 n)
{
	return n ? rnd() % n : 0;
}

static void fail(unsigned long what, const void *addr, unsigned long want, unsigned long got)
{
	hypercall4(HC_FUZZ_FAIL, what, (unsigned long)addr, want, got);
	stop_chunk = 1;
}

/* -- patterns ----------------------------------------------------------- */

static __always_inline u8 pat(u32 key, unsigned long i)
{
	return (u8)(key + i * 131 + (i >> 9));
}

/*
 * Write (or check) the pattern over [p, p + size) as bytes offset.. of the
 * object: all of it up to 8 KiB, else the first and last 64 bytes of each
 * page-sized piece.  Returns 0, or 1 after reporting damage.
 */
static int pattern_range(u8 *p, unsigned long size, u32 key, unsigned long offset, int check)
{
	unsigned long i, n;

	for (i = 0; i < size; i += n) {
		unsigned long piece = size - i < PAGE_SIZE ? size - i : PAGE_SIZE;
		unsigned long j;

		n = size <= 8192 ? size : piece;
		for (j = 0; j < n; j++) {
			if (size > 8192 && j == 64 && n > 128)
				j = n - 64;
			if (!check) {
				p[i + j] = pat(key, offset + i + j);
			} else if (p[i + j] != pat(key, offset + i + j)) {
				fail(FAIL_PATTERN, p + i + j, pat(key, offset + i + j), p[i + j]);
				return 1;
			}
		}
	}
	return 0;
}

/* A page block: each page through kmap_local_page(), first and last 64 bytes. */
static int pattern_block(struct obj *o, int check)
{
	unsigned long k;

	for (k = 0; k < (1UL << o->order); k++) {
		u8 *v = kmap_local_page(o->page + k);
		int bad = pattern_range(v, 64, o->key, k * PAGE_SIZE, check) ||
			  pattern_range(v + PAGE_SIZE - 64, 64, o->key, (k + 1) * PAGE_SIZE - 64, check);

		kunmap_local(v);
		if (bad)
			return 1;
	}
	return 0;
}

static int pattern(struct obj *o, int check)
{
	switch (o->kind) {
	case K_PAGES:
		return pattern_block(o, check);
	case K_GFP: case K_KMALLOC: case K_CACHE_OBJ: case K_VMALLOC:
		return pattern_range(o->p, o->size, o->key, 0, check);
	case K_VMAP: {
		int i;

		/* the vmap view shows the source pages' patterns */
		for (i = 0; i < o->npages && check; i++) {
			struct obj *src = &objs[o->src[i]];
			u8 *v = (u8 *)o->p + i * PAGE_SIZE;

			if (pattern_range(v, 64, src->key, o->src_k[i] * PAGE_SIZE, 1))
				return 1;
		}
		return 0;
	}
	}
	return 0;
}

static int zeroed(const u8 *p, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		if (p[i]) {
			fail(FAIL_ZERO, p + i, 0, p[i]);
			return 0;
		}
	return 1;
}

static int check_all(void)
{
	int i;

	for (i = 0; i < NOBJ; i++)
		if (objs[i].kind && pattern(&objs[i], 1))
			return 1;
	return 0;
}

/* -- the object table ------------------------------------------------------ */

static struct obj *new_obj(int kind)
{
	int i, start = below(NOBJ);

	for (i = 0; i < NOBJ; i++) {
		struct obj *o = &objs[(start + i) % NOBJ];

		if (!o->kind) {
			memset(o, 0, sizeof(*o));
			o->kind = kind;
			o->key = rnd();
			return o;
		}
	}
	return NULL;
}

/* A live object of that kind (K_NONE: any), or NULL. */
static struct obj *pick(int kind)
{
	int i, start = below(NOBJ);

	for (i = 0; i < NOBJ; i++) {
		struct obj *o = &objs[(start + i) % NOBJ];

		if (o->kind && (kind == K_NONE || o->kind == kind))
			return o;
	}
	return NULL;
}

static void forget(struct obj *o)
{
	if (o->kind == K_CACHE_OBJ)
		caches[o->cache].live--;
	o->kind = K_NONE;
}

static gfp_t some_gfp(int highmem_ok)
{
	static const gfp_t masks[] = {
		GFP_KERNEL, GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_KERNEL | __GFP_ZERO,
		GFP_KERNEL | __GFP_NOWARN, GFP_KERNEL | GFP_DMA, GFP_HIGHUSER,
		GFP_HIGHUSER_MOVABLE, GFP_HIGHUSER | __GFP_ZERO, GFP_KERNEL | __GFP_COMP,
	};
	gfp_t g;

	do
		g = masks[below(ARRAY_SIZE(masks))];
	while (!highmem_ok && (g & __GFP_HIGHMEM));
	return below(2) ? g | __GFP_NOWARN : g;
}

static unsigned int some_order(void)
{
	u32 x = below(100);

	if (x < 60)
		return 0;
	if (x < 92)
		return 1 + below(3);
	return 4 + below(MAX_ORDER - 4);
}

static unsigned long some_size(void)
{
	u32 x = below(100);

	if (x < 55)
		return 1 + below(256);
	if (x < 85)
		return 1 + below(8192);
	if (x < 97)
		return 8193 + below(64 * PAGE_SIZE);
	return 1 + below(1 << 20);
}

/* -- page allocator -------------------------------------------------------- */

static int check_zone(struct page *page, gfp_t gfp)
{
	int zone = page_zonenum(page);

	if (((gfp & __GFP_DMA) && !(gfp & __GFP_HIGHMEM) && zone != ZONE_DMA) ||
	    (!(gfp & __GFP_HIGHMEM) && PageHighMem(page))) {
		fail(FAIL_ZONE, page, gfp, zone);
		return 0;
	}
	return 1;
}

static void op_alloc_pages(void)
{
	gfp_t gfp = some_gfp(1);
	unsigned int order = some_order();
	struct obj *o = new_obj(K_PAGES);
	struct page *page;

	if (!o)
		return;
	page = below(4) ? alloc_pages(gfp, order) : alloc_pages_node(below(3) - 1, gfp, order);
	last_a0 = gfp, last_a1 = order, last_ret = (unsigned long)page;
	if (!page) {
		forget(o);
		return;
	}
	o->page = page, o->order = order, o->size = PAGE_SIZE << order;
	if (page_to_pfn(page) & ((1UL << order) - 1))
		fail(FAIL_ALIGN, page, order, page_to_pfn(page));
	if (!check_zone(page, gfp))
		return;
	if (gfp & __GFP_ZERO) {
		u8 *v = kmap_local_page(page);

		zeroed(v, PAGE_SIZE);
		kunmap_local(v);
	}
	pattern(o, 0);
}

static void op_free_pages(void)
{
	struct obj *o = pick(K_PAGES);

	if (!o || o->pins || pattern(o, 1))
		return;
	last_a0 = (unsigned long)o->page, last_a1 = o->order;
	__free_pages(o->page, o->order);
	forget(o);
	if ((flags & F_HOSTILE) && !below(8)) {
		/* at once again: the page is still free, so this is a true double free */
		__free_pages(o->page, o->order);
	}
}

static void op_gfp(void)
{
	gfp_t gfp = some_gfp(0);
	unsigned int order = some_order();
	struct obj *o = new_obj(K_GFP);
	unsigned long addr;

	if (!o)
		return;
	if (below(6)) {
		addr = __get_free_pages(gfp, order);
	} else {
		addr = get_zeroed_page(gfp);
		order = 0, gfp |= __GFP_ZERO;
	}
	last_a0 = gfp, last_a1 = order, last_ret = addr;
	if (!addr) {
		forget(o);
		return;
	}
	o->p = (void *)addr, o->order = order, o->size = PAGE_SIZE << order;
	if (addr & ((PAGE_SIZE << order) - 1))
		fail(FAIL_ALIGN, (void *)addr, order, addr);
	if (gfp & __GFP_ZERO)
		zeroed(o->p, o->size > 8192 ? 8192 : o->size);
	check_zone(virt_to_page(addr), gfp);
	pattern(o, 0);
}

static void op_free_gfp(void)
{
	struct obj *o = pick(K_GFP);
	unsigned long addr;

	if (!o || pattern(o, 1))
		return;
	/* free_pages() takes any address inside the first page */
	addr = (unsigned long)o->p + (below(4) ? 0 : below(PAGE_SIZE));
	last_a0 = addr, last_a1 = o->order;
	free_pages(addr, o->order);
	forget(o);
}

/* -- kmalloc ----------------------------------------------------------------- */

static void op_kmalloc(void)
{
	unsigned long size = some_size();
	gfp_t gfp = some_gfp(0);
	struct obj *o = new_obj(K_KMALLOC);
	void *p;
	u32 how = below(3);

	if (!o)
		return;
	if (size > (1 << 20))
		size = 1 + below(1 << 20);
	p = how == 0 ? kmalloc(size, gfp) : how == 1 ? kzalloc(size, gfp) : kcalloc(size, 1, gfp);
	last_a0 = size, last_a1 = gfp, last_ret = (unsigned long)p;
	if (!p) {
		forget(o);
		return;
	}
	o->p = p, o->size = size;
	if ((how || (gfp & __GFP_ZERO)) && !zeroed(p, size > 8192 ? 8192 : size))
		return;
	if (ksize(p) < size)
		fail(FAIL_KSIZE, p, size, ksize(p));
	pattern(o, 0);
}

static void op_kfree(void)
{
	struct obj *o = pick(below(3) ? K_KMALLOC : K_CACHE_OBJ);

	if (!o || pattern(o, 1))
		return;
	last_a0 = (unsigned long)o->p;
	kfree(o->p);			/* kmem_cache objects too, as 6.1 allows */
	forget(o);
	if ((flags & F_HOSTILE) && !below(8))
		kfree(o->p);		/* at once again: the naive check sees it */
}

static void op_krealloc(void)
{
	struct obj *o = pick(K_KMALLOC);
	unsigned long size = some_size(), keep;
	void *p;

	if (!o || pattern(o, 1))
		return;
	if (size > (1 << 20))
		size = 1 + below(1 << 20);
	p = krealloc(o->p, size, GFP_KERNEL | (below(2) ? __GFP_NOWARN : 0));
	last_a0 = (unsigned long)o->p, last_a1 = size, last_ret = (unsigned long)p;
	if (!p)
		return;			/* the old object stays */
	keep = size < o->size ? size : o->size;
	o->p = p;
	/* the first 64 bytes were written whatever the object's size */
	if (pattern_range(p, keep > 64 ? 64 : keep, o->key, 0, 1)) {
		fail(FAIL_REALLOC, p, keep, size);
		return;
	}
	o->size = size;
	pattern(o, 0);
}

/* -- kmem_cache -------------------------------------------------------------- */

static void fuzz_ctor(void *obj)
{
	*(u8 *)obj = 0xc7;	/* the constructor's mark (objects may be 1 byte); patterns overwrite it */
}

static void op_cache_create(void)
{
	static const slab_flags_t sflags[] = {
		0, 0, SLAB_HWCACHE_ALIGN, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER |
		SLAB_CONSISTENCY_CHECKS, SLAB_RED_ZONE, SLAB_POISON, SLAB_RECLAIM_ACCOUNT,
		SLAB_CACHE_DMA, SLAB_TYPESAFE_BY_RCU,
	};
	static const unsigned int aligns[] = { 0, 0, 8, 16, 64, 256 };
	char name[24];
	slab_flags_t sf;
	int i;

	for (i = 0; i < NCACHE && caches[i].s; i++)
		;
	if (i == NCACHE)
		return;
	snprintf(name, sizeof(name), "fuzz-%lu", step);
	caches[i].size = 1 + (below(4) ? below(512) : below(8192));
	sf = sflags[below(ARRAY_SIZE(sflags))];
	caches[i].s = kmem_cache_create(name, caches[i].size, aligns[below(ARRAY_SIZE(aligns))],
					sf, below(4) ? NULL : fuzz_ctor);
	caches[i].live = 0;
	last_a0 = caches[i].size, last_ret = (unsigned long)caches[i].s;
}

static void op_cache_alloc(void)
{
	int i = below(NCACHE);
	struct obj *o;
	void *p;

	if (!caches[i].s || !(o = new_obj(K_CACHE_OBJ)))
		return;
	p = below(3) ? kmem_cache_alloc(caches[i].s, GFP_KERNEL) :
		       kmem_cache_zalloc(caches[i].s, GFP_KERNEL);
	last_a0 = (unsigned long)caches[i].s, last_ret = (unsigned long)p;
	if (!p) {
		o->kind = K_NONE;
		return;
	}
	o->p = p, o->size = caches[i].size, o->cache = i;
	caches[i].live++;
	if (ksize(p) < o->size)
		fail(FAIL_KSIZE, p, o->size, ksize(p));
	pattern(o, 0);
}

static void op_cache_free(void)
{
	struct obj *o = pick(K_CACHE_OBJ);

	if (!o || pattern(o, 1))
		return;
	last_a0 = (unsigned long)caches[o->cache].s, last_a1 = (unsigned long)o->p;
	kmem_cache_free(caches[o->cache].s, o->p);
	forget(o);
}

static void op_cache_destroy(void)
{
	int i = below(NCACHE);

	if (!caches[i].s)
		return;
	last_a0 = (unsigned long)caches[i].s;
	if (caches[i].live) {
		if ((flags & F_HOSTILE) && !below(4))
			kmem_cache_destroy(caches[i].s);	/* busy: warned, kept */
		return;
	}
	if (kmem_cache_validate(caches[i].s) > 0)
		fail(FAIL_VALIDATE, caches[i].s, 0, 1);
	kmem_cache_destroy(caches[i].s);
	caches[i].s = NULL;
}

static void op_cache_shrink(void)
{
	int i = below(NCACHE);

	if (caches[i].s) {
		last_a0 = (unsigned long)caches[i].s;
		last_ret = kmem_cache_shrink(caches[i].s);
		if (kmem_cache_validate(caches[i].s) > 0)
			fail(FAIL_VALIDATE, caches[i].s, 0, 1);
	}
}

/* -- vmalloc, vmap, ioremap --------------------------------------------------- */

static void op_vmalloc(void)
{
	unsigned long size = 1 + (below(4) ? below(16 * PAGE_SIZE) : below(512 * PAGE_SIZE));
	struct obj *o = new_obj(K_VMALLOC);
	u32 how = below(4);
	void *p;
	int zero = 0;

	if (!o)
		return;
	if (how == 0) {
		p = vmalloc(size);
	} else if (how == 1) {
		p = vzalloc(size), zero = 1;
	} else if (how == 2) {
		gfp_t gfp = some_gfp(1) & ~__GFP_DMA;

		p = __vmalloc(size, gfp), zero = !!(gfp & __GFP_ZERO);
	} else {
		p = vmalloc_node(size, (int)below(3) - 1);
	}
	last_a0 = size, last_a1 = how, last_ret = (unsigned long)p;
	if (!p) {
		forget(o);
		return;
	}
	o->p = p, o->size = size;
	if (!is_vmalloc_addr(p) || ((unsigned long)p & ~PAGE_MASK))
		fail(FAIL_MAP, p, 0, 0);
	if (zero && !zeroed(p, size > 8192 ? 8192 : size))
		return;
	pattern(o, 0);
}

/* vmalloc_to_page() of a random page, seen through kmap: the same bytes. */
static int check_vmalloc_page(struct obj *o)
{
	unsigned long k = below((o->size + PAGE_SIZE - 1) / PAGE_SIZE);
	u8 *v = (u8 *)o->p + k * PAGE_SIZE;
	struct page *page = vmalloc_to_page(v);
	u8 *alias;
	int bad;

	if (!page || page_to_pfn(page) >= max_pfn) {
		fail(FAIL_MAP, v, 0, (unsigned long)page);
		return 1;
	}
	alias = kmap_local_page(page);
	bad = memcmp(alias, v, 64) != 0;
	kunmap_local(alias);
	if (bad)
		fail(FAIL_MAP, v, 1, (unsigned long)page);
	return bad;
}

static void op_vfree(void)
{
	struct obj *o = pick(below(5) ? K_VMALLOC : K_VMAP);

	if (!o || pattern(o, 1) || (o->kind == K_VMALLOC && check_vmalloc_page(o)))
		return;
	last_a0 = (unsigned long)o->p;
	if (o->kind == K_VMAP) {
		int i;

		vunmap(o->p);
		for (i = 0; i < o->npages; i++)
			objs[o->src[i]].pins--;
		kfree(o->pages);
	} else {
		vfree(o->p);
	}
	forget(o);
	if ((flags & F_HOSTILE) && !below(6))
		vfree(o->p);			/* again: "Trying to vfree() nonexistent vm area" */
}

static void op_vmap(void)
{
	struct obj *o = new_obj(K_VMAP);
	struct page **pages;
	int i, n = 1 + below(VMAP_MAX);

	if (!o)
		return;
	pages = kmalloc(n * sizeof(*pages), GFP_KERNEL);
	if (!pages) {
		forget(o);
		return;
	}
	for (i = 0; i < n; i++) {
		struct obj *src = pick(K_PAGES);

		if (!src)
			break;
		o->src[i] = src - objs;
		o->src_k[i] = below(1U << src->order);
		pages[i] = src->page + o->src_k[i];
	}
	o->npages = n = i;
	o->p = n ? vmap(pages, n, VM_MAP, PAGE_KERNEL) : NULL;
	last_a0 = n, last_ret = (unsigned long)o->p;
	if (!o->p) {
		kfree(pages);
		forget(o);
		return;
	}
	o->pages = pages, o->size = n * PAGE_SIZE;
	for (i = 0; i < n; i++)
		objs[o->src[i]].pins++;
	pattern(o, 1);			/* the new view shows the pages' patterns */
}

static void op_vunmap(void)
{
	op_vfree();
}

static void op_ioremap(void)
{
	struct obj *o = new_obj(K_IOREMAP);
	unsigned long off, size;
	void __iomem *p;

	if (!o || !dev_size)
		goto none;
	off = below(dev_size);
	size = 1 + below(dev_size - off > 4 * PAGE_SIZE ? 4 * PAGE_SIZE : dev_size - off);
	p = ioremap(dev_base + off, size);
	last_a0 = dev_base + off, last_a1 = size, last_ret = (unsigned long)p;
	if (!p)
		goto none;
	if (((unsigned long)p & ~PAGE_MASK) != ((dev_base + off) & ~PAGE_MASK))
		fail(FAIL_MAP, p, dev_base + off, 0);
	o->p = (void *)p, o->size = size;
	return;
none:
	if (o)
		forget(o);
}

static void op_iounmap(void)
{
	struct obj *o = pick(K_IOREMAP);

	if (!o)
		return;
	last_a0 = (unsigned long)o->p;
	iounmap(o->p);
	forget(o);
	if ((flags & F_HOSTILE) && !below(4))
		iounmap(o->p);			/* again: "iounmap: bad address" */
}

/* -- kmap ----------------------------------------------------------------------- */

static void op_kmap(void)
{
	struct obj *o = pick(K_PAGES);
	int i, k;
	u8 *v;

	if (!o)
		return;
	for (i = 0; i < NKMAP && kmaps[i].addr; i++)
		;
	if (i == NKMAP)
		return;
	k = below(1U << o->order);
	v = kmap(o->page + k);
	last_a0 = (unsigned long)(o->page + k), last_ret = (unsigned long)v;
	if (!v)
		return;
	if (PageHighMem(o->page + k) && page_address(o->page + k) != v)
		fail(FAIL_MAP, v, (unsigned long)page_address(o->page + k), 0);
	if (pattern_range(v, 64, o->key, k * PAGE_SIZE, 1))
		return;
	kmaps[i].slot = o - objs, kmaps[i].k = k, kmaps[i].addr = v;
	o->pins++;
}

static void op_kunmap(void)
{
	int i = below(NKMAP);
	struct obj *o;

	if (!kmaps[i].addr)
		return;
	o = &objs[kmaps[i].slot];
	if (pattern_range(kmaps[i].addr, 64, o->key, kmaps[i].k * PAGE_SIZE, 1))
		return;
	kunmap(o->page + kmaps[i].k);
	last_a0 = (unsigned long)(o->page + kmaps[i].k);
	o->pins--;
	kmaps[i].addr = NULL;
}

/* kmap_atomic / kmap_local nested a few deep, checked, unmapped in order. */
static void op_kmap_nest(void)
{
	void *addr[8];
	int atomic[8], depth = 1 + below(8), i, n = 0;

	for (i = 0; i < depth; i++) {
		struct obj *o = pick(K_PAGES);
		int k;

		if (!o)
			break;
		k = below(1U << o->order);
		atomic[n] = below(2);
		addr[n] = atomic[n] ? kmap_atomic(o->page + k) : kmap_local_page(o->page + k);
		if (!addr[n])
			break;
		if (pattern_range(addr[n], 64, o->key, k * PAGE_SIZE, 1)) {
			n++;
			break;
		}
		n++;
	}
	last_a0 = depth, last_ret = n;
	while (n-- > 0) {
		if (atomic[n])
			kunmap_atomic(addr[n]);
		else
			kunmap_local(addr[n]);
	}
}

/* GFP_ATOMIC under a spinlock; now and then GFP_KERNEL there, which is a bug report. */
static void op_atomic_alloc(void)
{
	struct obj *o = new_obj(K_KMALLOC);
	gfp_t gfp = (flags & F_HOSTILE) && !below(10) ? GFP_KERNEL : GFP_ATOMIC;
	unsigned long size = 1 + below(512);
	void *p;

	if (!o)
		return;
	spin_lock(&fuzz_lock);
	p = kmalloc(size, gfp | __GFP_NOWARN);
	spin_unlock(&fuzz_lock);
	last_a0 = size, last_a1 = gfp, last_ret = (unsigned long)p;
	if (!p) {
		forget(o);
		return;
	}
	o->p = p, o->size = size;
	pattern(o, 0);
}

static void op_check_one(void)
{
	struct obj *o = pick(K_NONE);

	if (o && !pattern(o, 1) && o->kind == K_VMALLOC)
		check_vmalloc_page(o);
}

/* -- hostile calls: wild arguments, to wrappers that pass them straight on ----- */

/* The head struct page of a lowmem object of ours (compound_head of a tail). */
static struct page *head_page(const void *p)
{
	struct page *page = virt_to_page(p);

	if (page->compound_head & 1)
		page = (struct page *)(page->compound_head - 1);
	return page;
}

static void op_hostile_free(void)
{
	struct obj *o = pick(K_PAGES), *v = pick(K_VMALLOC), *k = pick(K_KMALLOC);

	switch (below(6)) {
	case 0:			/* not a struct page: refused */
		if (o)
			__free_pages((struct page *)((char *)o->page + 4), 0);
		break;
	case 1:			/* the direct map's end, user space, the fixmap */
		free_pages(below(2) ? 0x1000UL * below(0x80000) : 0xfffff000UL, below(3));
		break;
	case 2:			/* a vmalloc address: VM_BUG_ON(!virt_addr_valid) */
		if (v)
			free_pages((unsigned long)v->p, 0);
		break;
	case 3:			/* a smaller order than allocated: the block is lost to us */
		if (o && o->order && !o->pins && !pattern(o, 1)) {
			__free_pages(o->page, o->order - 1 - below(o->order));
			forget(o);
		}
		break;
	case 4:			/* a slab page: Bad page state (slab pages are always checked) */
		if (k && PageSlab(head_page(k->p)))
			__free_pages(head_page(k->p), 0);
		break;
	default:		/* order out of range */
		if (o && !o->pins)
			__free_pages(o->page, MAX_ORDER + below(30));
		break;
	}
}

static void op_hostile_vm(void)
{
	struct obj *v = pick(K_VMALLOC), *k = pick(K_KMALLOC);

	switch (below(6)) {
	case 0:
		if (k)
			vfree(k->p);			/* not a vmalloc address */
		break;
	case 1:
		if (v)
			vfree((char *)v->p + 1 + below(7));	/* bad address */
		break;
	case 2:
		vfree((void *)(VMALLOC_END - PAGE_SIZE));	/* nothing there */
		break;
	case 3:
		if (k)
			iounmap((void __iomem *)k->p);	/* RAM: ignored */
		break;
	case 4:
		vunmap((void *)(0x1000UL * below(0x80000)));
		break;
	default:
		if (v && below(4) == 0) {
			/* iounmap of a vmalloc area: refused, or (as 6.1 does) removed */
			iounmap((void __iomem *)v->p);
			if (!vmalloc_to_page(v->p))
				forget(v);
		}
		if (k) {
			/* a whole page of RAM in use: NULL (6.1 lets a request that
			 * covers no whole page through) */
			unsigned long pa = __pa(k->p) & PAGE_MASK;
			void __iomem *io = ioremap(pa, PAGE_SIZE);

			if (io) {
				fail(FAIL_MAP, (void *)io, pa, 1);
				iounmap(io);
			}
		}
		break;
	}
}

static void op_hostile_slab(void)
{
	struct obj *v = pick(K_VMALLOC), *g = pick(K_GFP);

	switch (below(5)) {
	case 0:
		if (v)
			kfree(v->p);			/* a vmalloc pointer */
		break;
	case 1:
		if (g && !g->order)
			kfree(g->p);			/* an order-0 page: not a kmalloc object */
		break;
	case 2:
		kfree((void *)(0xfffff000UL - below(0x100000)));	/* no slab behind it */
		break;
	case 3:
		(void)ksize((void *)(VMALLOC_END - 64));
		break;
	default:
		(void)kmalloc(KMALLOC_MAX_SIZE + 1 + below(1 << 20), GFP_KERNEL | __GFP_NOWARN);
		(void)kmalloc(KMALLOC_MAX_SIZE + 1, GFP_KERNEL);	/* WARN: too big */
		break;
	}
}

static void op_hostile_kmap(void)
{
	struct obj *o = pick(K_PAGES);

	switch (below(4)) {
	case 0:			/* kunmap of a HighMem page nobody kmapped: BUG, ignored */
		if (o && PageHighMem(o->page) && !o->pins && !page_address(o->page))
			kunmap(o->page);
		break;
	case 1:			/* kunmap_local with nothing mapped */
		kunmap_local((void *)fix_to_virt(FIX_KMAP_BEGIN + below(16)));
		break;
	case 2:			/* more than 15 deep: BUG, NULL, nothing mapped */
		if (o) {
			void *a[KM_MAX_IDX];
			int n = 0;

			while (n < KM_MAX_IDX && (a[n] = kmap_atomic_pfn(page_to_pfn(o->page))))
				n++;
			while (n-- > 0)
				kunmap_atomic(a[n]);
		}
		break;
	default:		/* a pfn beyond the last page */
		(void)kmap_local_pfn(max_pfn + below(1 << 20));
		break;
	}
}

/* -- the loop --------------------------------------------------------------- */

static void (*const ops[NR_OPS])(void) = {
	op_alloc_pages, op_free_pages, op_gfp, op_free_gfp, op_kmalloc, op_kfree, op_krealloc,
	op_cache_create, op_cache_alloc, op_cache_free, op_cache_destroy, op_cache_shrink,
	op_vmalloc, op_vfree, op_vmap, op_vunmap, op_ioremap, op_iounmap, op_kmap, op_kunmap,
	op_kmap_nest, op_atomic_alloc, op_check_one, op_hostile_free, op_hostile_vm,
	op_hostile_slab, op_hostile_kmap,
};

static const u8 weights[NR_OPS] = {
	10, 9, 6, 6, 12, 11, 3, 1, 8, 7, 1, 1, 4, 4, 2, 1, 1, 1, 3, 3, 3, 2, 4, 2, 2, 2, 1,
};

static int pick_op(void)
{
	static unsigned int total;
	unsigned int x, i;

	if (!total)
		for (i = 0; i < NR_OPS; i++)
			total += weights[i];
	x = below(total);
	for (i = 0; i < NR_OPS; i++) {
		if (x < weights[i])
			break;
		x -= weights[i];
	}
	if (i >= OP_HOSTILE_FREE && !(flags & F_HOSTILE))
		i = OP_CHECK_ONE;
	return i;
}

static void teardown(void)
{
	int i;

	for (i = 0; i < NKMAP; i++)
		if (kmaps[i].addr) {
			kunmap(objs[kmaps[i].slot].page + kmaps[i].k);
			objs[kmaps[i].slot].pins--;
			kmaps[i].addr = NULL;
		}
	for (i = 0; i < NOBJ; i++) {		/* vmaps first: they pin pages */
		struct obj *o = &objs[i];

		if (o->kind == K_VMAP) {
			int j;

			vunmap(o->p);
			for (j = 0; j < o->npages; j++)
				objs[o->src[j]].pins--;
			kfree(o->pages);
			forget(o);
		}
	}
	for (i = 0; i < NOBJ; i++) {
		struct obj *o = &objs[i];

		switch (o->kind) {
		case K_PAGES: __free_pages(o->page, o->order); break;
		case K_GFP: free_pages((unsigned long)o->p, o->order); break;
		case K_KMALLOC: case K_CACHE_OBJ: kfree(o->p); break;
		case K_VMALLOC: vfree(o->p); break;
		case K_IOREMAP: iounmap(o->p); break;
		}
		forget(o);
	}
	for (i = 0; i < NCACHE; i++)
		if (caches[i].s) {
			kmem_cache_destroy(caches[i].s);
			caches[i].s = NULL;
		}
}

int main(void)
{
	if (!started) {
		rng = hypercall1(HC_FUZZ_PARAM, P_SEED) | 1;
		ncalls = hypercall1(HC_FUZZ_PARAM, P_CALLS);
		check_every = hypercall1(HC_FUZZ_PARAM, P_CHECK_EVERY);
		flags = hypercall1(HC_FUZZ_PARAM, P_FLAGS);
		dev_base = hypercall1(HC_FUZZ_PARAM, P_DEV_BASE);
		dev_size = hypercall1(HC_FUZZ_PARAM, P_DEV_SIZE);
		started = 1;
	}
	stop_chunk = 0;
	while (step < ncalls && !stop_chunk) {
		int op = pick_op();

		last_a0 = last_a1 = last_ret = 0;
		ops[op]();
		step++;
		if (check_every && step % check_every == 0) {
			if (mmemu_check() != 0)
				fail(FAIL_CHECK, NULL, 0, step);
			else
				check_all();
		}
		if (hypercall5(HC_FUZZ_STEP, step, op, last_a0, last_a1, last_ret))
			stop_chunk = 1;
	}
	if (step >= ncalls && !finished && !stop_chunk) {
		if (!check_all()) {
			teardown();
			if (mmemu_check() != 0)
				fail(FAIL_CHECK, NULL, 0, step);
		}
		finished = 1;
		hypercall5(HC_FUZZ_STEP, step, OP_DONE, 0, 0, 0);
	}
	return 0;
}
