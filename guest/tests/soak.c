/*
 * soak.c - the guest half of mmemu's soak test (mmemu/harness/soak.py).
 *
 * Cycle after cycle it drives every zone to exhaustion and back:
 *
 *   1. vmalloc() big areas until the vmalloc space or memory runs out;
 *   2. GFP_HIGHUSER blocks, largest order first, until HighMem is spent and
 *      the allocator falls back to Normal (each block's zone is counted);
 *   3. GFP_KERNEL blocks until Normal is spent, a kmem_cache filled on the
 *      way (its freed objects leave empty slabs for the shrinker);
 *   4. GFP_DMA blocks until DMA is spent, then GFP_ATOMIC order 0 into the
 *      reserves below the min watermark;
 *   5. every node by alloc_pages_node() on a NUMA machine;
 *
 * each phase ending with one failing call made without __GFP_NOWARN (the
 * kernel's "page allocation failure" report), the others quiet.  Then the
 * host looks (HC_SOAK_MARK: every zone must be near its watermarks), and
 * the program frees everything in a shuffled order and asks the host to
 * compare buddyinfo, slabinfo and vmallocinfo with the boot state.
 *
 * Numbers the host checks come back through HC_SOAK_MARK's arguments.
 */
#include <mmemu.h>

#define HC_SOAK_PARAM	(HC_DEBUG_BASE + 8)	/* (index) -> value */
#define HC_SOAK_MARK	(HC_DEBUG_BASE + 9)	/* (what, cycle, a, b, c) -> 0 ok */

enum { P_SEED, P_CYCLES, P_NR_NODES, P_MAX_BLOCKS };
enum { MARK_START, MARK_EXHAUSTED, MARK_EXHAUSTED_LOW, MARK_FREED };

#define MAX_BLOCKS	32768
#define MAX_VM		64
#define MAX_OBJS	4096

struct block {
	struct page *page;
	u8 order;
	u8 zone;
};

static struct block blocks[MAX_BLOCKS];
static unsigned int nblocks, max_blocks;
static void *vm[MAX_VM];
static unsigned int nvm;
static void *objs[MAX_OBJS];
static u32 rng;
static unsigned long fallbacks, failures_seen, zone_blocks[MAX_NR_ZONES];

static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static int mark(unsigned long what, unsigned long cycle, unsigned long a, unsigned long b,
		unsigned long c)
{
	return (int)hypercall5(HC_SOAK_MARK, what, cycle, a, b, c);
}

/* Allocate blocks of one mask, orders high to low, each until it fails; the
 * last try of order 0 without __GFP_NOWARN.  nid < 0: any node. */
static unsigned long exhaust(gfp_t gfp, int nid, unsigned int top)
{
	unsigned long got = 0;
	int order;

	for (order = top; order >= 0; order--) {
		for (;;) {
			gfp_t g = gfp | __GFP_NOWARN;
			struct page *page;

			if (nblocks == max_blocks)
				return got;
			page = nid < 0 ? alloc_pages(g, order) : alloc_pages_node(nid, g, order);
			if (!page)
				break;
			blocks[nblocks].page = page;
			blocks[nblocks].order = order;
			blocks[nblocks].zone = page_zonenum(page);
			zone_blocks[page_zonenum(page)]++;
			if ((gfp & __GFP_HIGHMEM) && !PageHighMem(page))
				fallbacks++;
			nblocks++;
			got += 1UL << order;
		}
	}
	/* once more, loudly: "page allocation failure: order:0, mode:..." */
	if (nblocks < max_blocks) {
		struct page *page = nid < 0 ? alloc_pages(gfp, 0) : alloc_pages_node(nid, gfp, 0);

		if (page) {
			blocks[nblocks].page = page;
			blocks[nblocks].order = 0;
			blocks[nblocks].zone = page_zonenum(page);
			nblocks++;
		} else {
			failures_seen++;
		}
	}
	return got;
}

static void fill_vmalloc(void)
{
	while (nvm < MAX_VM) {
		unsigned long size = (8 + rnd() % 25) << 20;	/* 8-32 MiB */
		void *p = __vmalloc(size, GFP_KERNEL | __GFP_HIGHMEM | __GFP_NOWARN);

		if (!p) {
			/* a smaller one may still fit; then the loud failure */
			p = vmalloc(1 << 20);
			if (!p)
				break;
		}
		((volatile u32 *)p)[0] = 0x50414b;	/* touch: the pages are really there */
		vm[nvm++] = p;
	}
	if (nvm < MAX_VM && !vmalloc(64 << 20))
		failures_seen++;
}

/* A cache filled with objects, all freed but a few: empty slabs for the shrinker. */
static struct kmem_cache *fill_cache(unsigned long cycle)
{
	struct kmem_cache *s;
	char name[24];
	unsigned int i, n = 0;

	snprintf(name, sizeof(name), "soak-%lu", cycle);
	s = kmem_cache_create(name, 256 + (rnd() % 4) * 64, 0, 0, NULL);
	if (!s)
		return NULL;
	for (i = 0; i < MAX_OBJS; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL | __GFP_NOWARN);
		if (!objs[i])
			break;
		n++;
	}
	for (i = 0; i < n; i++)
		if (i % 64)
			kmem_cache_free(s, objs[i]), objs[i] = NULL;
	return s;
}

static void shuffle_blocks(void)
{
	unsigned int i;

	for (i = nblocks; i > 1; i--) {
		unsigned int j = rnd() % i;
		struct block t = blocks[i - 1];

		blocks[i - 1] = blocks[j];
		blocks[j] = t;
	}
}

static void free_all(struct kmem_cache *s)
{
	unsigned int i;

	shuffle_blocks();
	for (i = 0; i < nblocks; i++)
		__free_pages(blocks[i].page, blocks[i].order);
	nblocks = 0;
	while (nvm)
		vfree(vm[--nvm]);
	for (i = 0; i < MAX_OBJS; i++)
		if (objs[i])
			kmem_cache_free(s, objs[i]), objs[i] = NULL;
	if (s)
		kmem_cache_destroy(s);
}

static int cycle(unsigned long c, int nr_nodes)
{
	struct kmem_cache *s;
	unsigned long high, normal, dma, atomic, nodes = 0;
	int nid;

	fallbacks = 0;
	fill_vmalloc();
	high = exhaust(GFP_HIGHUSER, -1, MAX_ORDER - 1);
	s = fill_cache(c);
	normal = exhaust(GFP_KERNEL, -1, MAX_ORDER - 1);
	dma = exhaust(GFP_KERNEL | GFP_DMA, -1, MAX_ORDER - 1);
	atomic = exhaust(GFP_ATOMIC, -1, 0);
	for (nid = 0; nid < nr_nodes && nr_nodes > 1; nid++)
		nodes += exhaust(GFP_HIGHUSER | __GFP_THISNODE, nid, 3);
	if (mark(MARK_EXHAUSTED, c, high, normal, fallbacks))
		return 1;
	if (mark(MARK_EXHAUSTED_LOW, c, dma, atomic, nodes))
		return 1;
	free_all(s);
	return mark(MARK_FREED, c, failures_seen, nblocks, 0);
}

int main(void)
{
	unsigned long c, cycles;
	int nr_nodes;

	rng = hypercall1(HC_SOAK_PARAM, P_SEED) | 1;
	cycles = hypercall1(HC_SOAK_PARAM, P_CYCLES);
	nr_nodes = (int)hypercall1(HC_SOAK_PARAM, P_NR_NODES);
	max_blocks = hypercall1(HC_SOAK_PARAM, P_MAX_BLOCKS);
	if (!max_blocks || max_blocks > MAX_BLOCKS)
		max_blocks = MAX_BLOCKS;
	if (mark(MARK_START, 0, 0, 0, 0))
		return 2;
	for (c = 1; c <= cycles; c++)
		if (cycle(c, nr_nodes))
			return 1;
	return 0;
}
