/*
 * memory_api.c - the memory API of a 6.1 driver author, every name, each
 * checked against what Linux gives.
 *
 * Runs on any shipped machine (pc-1g has HighMem, numa-2n two nodes).  Each
 * check that fails prints "FAIL <line>: <condition>"; the exit status is
 * the number of failures.  The host test (tests/test_memory_api.py)
 * compares the lines printed with "zone", "si_meminfo", "totals" and
 * "final" against /proc/zoneinfo and /proc/meminfo of the same run, and
 * the vmalloc_user() area, which it keeps, against vmallocinfo.  The run
 * makes no kernel report.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

#define REGS0_PHYS	0xfe001000UL	/* pc-1g's regs0 device */

static int failures;

#define EXPECT(cond)							\
	do {								\
		if (!(cond)) {						\
			failures++;					\
			pr_err("FAIL %d: %s\n", __LINE__, #cond);	\
		}							\
	} while (0)

/* -- addresses: virt_to_phys .. page_to_virt, get_order ------------------------- */

static noinline void check_addresses(void)
{
	char *p = kmalloc(100, GFP_KERNEL);
	unsigned long a, step = 0x100000 + 0x123;	/* a MiB and an odd offset */

	EXPECT(p != NULL);
	EXPECT(virt_to_phys(p) == (unsigned long)p - PAGE_OFFSET);
	EXPECT(phys_to_virt(virt_to_phys(p)) == p);
	EXPECT(virt_to_page(p) == pfn_to_page(virt_to_phys(p) >> PAGE_SHIFT));
	EXPECT(page_to_virt(virt_to_page(p)) == (void *)((unsigned long)p & PAGE_MASK));
	EXPECT(page_address(virt_to_page(p)) == page_to_virt(virt_to_page(p)));
	EXPECT(PageSlab(virt_to_page(p)) && !PageReserved(virt_to_page(p)));
	kfree(p);

	/* virt_to_page() for every lowmem address, first page to last byte. */
	for (a = PAGE_OFFSET; a < (unsigned long)high_memory; a += step) {
		struct page *page = virt_to_page(a);

		if (page_to_pfn(page) != __pa(a) >> PAGE_SHIFT ||
		    page_to_virt(page) != (void *)(a & PAGE_MASK)) {
			EXPECT(!"virt_to_page() of a lowmem address");
			break;
		}
	}
	a = (unsigned long)high_memory - 1;
	EXPECT(page_to_pfn(virt_to_page(a)) == max_low_pfn - 1);
	EXPECT(virt_addr_valid((void *)a) && !virt_addr_valid(high_memory));
	EXPECT(!virt_addr_valid((void *)(PAGE_OFFSET - 1)));

	/* The kernel image (this program) is reserved at boot, as vmlinux is. */
	EXPECT(PageReserved(virt_to_page(&failures)));

	EXPECT(get_order(1) == 0 && get_order(PAGE_SIZE) == 0);
	EXPECT(get_order(PAGE_SIZE + 1) == 1 && get_order(2 * PAGE_SIZE) == 1);
	EXPECT(get_order(2 * PAGE_SIZE + 1) == 2 && get_order(1 << 20) == 8);
	EXPECT(get_order(4 << 20) == MAX_ORDER - 1 && get_order((4 << 20) + 1) == MAX_ORDER);
}

/* -- nodes and zones ------------------------------------------------------------ */

static noinline void check_nodes_and_zones(void)
{
	unsigned long managed = 0, high = 0, free = 0, present = 0;
	int nid, nodes = 0, zones = 0, populated = 0;
	struct zone *zone;
	pg_data_t *pgdat;

	EXPECT(node_online(numa_node_id()) && numa_node_id() == 0);
	for_each_online_node(nid) {
		pgdat = NODE_DATA(nid);
		EXPECT(pgdat->node_id == nid);
		EXPECT(pgdat->nr_zones >= 1 && pgdat->nr_zones <= MAX_NR_ZONES);
		pr_info("node %d start_pfn %lu present %lu spanned %lu nr_zones %d\n", nid,
			pgdat->node_start_pfn, pgdat->node_present_pages,
			pgdat->node_spanned_pages, pgdat->nr_zones);
		present += pgdat->node_present_pages;
		nodes++;
	}
	EXPECT(nodes == num_online_nodes());
	EXPECT(!node_online(MAX_NUMNODES) && !node_online(-1));

	for_each_zone(zone) {
		EXPECT(zone->zone_pgdat == NODE_DATA(zone->node));
		EXPECT(&zone->zone_pgdat->node_zones[zone_idx(zone)] == zone);
		zones++;
	}
	EXPECT(zones == MAX_NR_ZONES * nodes);

	for_each_populated_zone(zone) {
		unsigned long nr_free = zone_page_state(zone, NR_FREE_PAGES);

		EXPECT(populated_zone(zone) && zone->spanned_pages >= zone->present_pages);
		EXPECT(zone_managed_pages(zone) <= zone->present_pages);
		EXPECT(min_wmark_pages(zone) <= low_wmark_pages(zone) &&
		       low_wmark_pages(zone) <= high_wmark_pages(zone));
		EXPECT(is_highmem(zone) == is_highmem_idx(zone_idx(zone)));
		EXPECT(page_zone(pfn_to_page(zone->zone_start_pfn + zone->spanned_pages - 1)) == zone);
		pr_info("zone %d %s start_pfn %lu spanned %lu present %lu managed %lu "
			"free %lu min %lu low %lu high %lu\n", zone->node, zone->name,
			zone->zone_start_pfn, zone->spanned_pages, zone->present_pages,
			zone_managed_pages(zone), nr_free, min_wmark_pages(zone),
			low_wmark_pages(zone), high_wmark_pages(zone));
		managed += zone_managed_pages(zone);
		free += nr_free;
		if (is_highmem(zone))
			high += zone_managed_pages(zone);
		populated++;
	}
	EXPECT(populated >= 1 && populated <= zones);
	EXPECT(totalram_pages() == managed);
	EXPECT(totalhigh_pages() == high);
	EXPECT(nr_free_pages() == free);
	EXPECT(zone_free_pages(ZONE_NORMAL) + zone_free_pages(ZONE_DMA) +
	       zone_free_pages(ZONE_HIGHMEM) + zone_free_pages(ZONE_MOVABLE) == free);
	pr_info("totals nodes %d present %lu totalram_pages %lu totalhigh_pages %lu\n",
		nodes, present, totalram_pages(), totalhigh_pages());
}

/* The counters follow the allocator at once: an order-5 block leaves the buddy lists. */
static noinline void check_counters_move(void)
{
	unsigned long before = nr_free_pages(), zone_before;
	struct page *page = alloc_pages(GFP_KERNEL, 5);	/* above the pcp orders */
	struct zone *zone;

	EXPECT(page != NULL);
	if (!page)
		return;
	zone = page_zone(page);
	EXPECT(zone_spans_pfn(zone, page_to_pfn(page)) && zone_idx(zone) == ZONE_NORMAL);
	EXPECT(page_to_nid(page) == zone->node && page_pgdat(page) == zone->zone_pgdat);
	EXPECT(nr_free_pages() == before - 32);
	zone_before = zone_page_state(zone, NR_FREE_PAGES);
	__free_pages(page, 5);
	EXPECT(zone_page_state(zone, NR_FREE_PAGES) == zone_before + 32);
	EXPECT(nr_free_pages() == before);

	page = alloc_pages(GFP_DMA, 4);
	EXPECT(page && zone_idx(page_zone(page)) == ZONE_DMA);
	EXPECT(page && strcmp(page_zone(page)->name, "DMA") == 0);
	__free_pages(page, 4);
}

static noinline void check_si_meminfo(void)
{
	struct sysinfo si;

	memset(&si, 0xff, sizeof(si));
	si_meminfo(&si);
	EXPECT(si.totalram == totalram_pages() && si.totalhigh == totalhigh_pages());
	EXPECT(si.freeram == nr_free_pages() && si.freehigh == nr_free_highpages());
	EXPECT(si.freehigh == zone_free_pages(ZONE_HIGHMEM) +
	       (MMEMU_BOOTINFO->movable_is_highmem ? zone_free_pages(ZONE_MOVABLE) : 0));
	EXPECT(si.mem_unit == PAGE_SIZE && si.sharedram == 0);
	EXPECT(sizeof(struct sysinfo) == 64);
	pr_info("si_meminfo totalram %lu freeram %lu totalhigh %lu freehigh %lu mem_unit %u\n",
		si.totalram, si.freeram, si.totalhigh, si.freehigh, si.mem_unit);
}

/* -- the page allocator ----------------------------------------------------------- */

static noinline void check_alloc_pages_exact(void)
{
	size_t size = 5 * PAGE_SIZE;		/* an order-3 block, three pages too many */
	char *p = alloc_pages_exact(size, GFP_KERNEL | __GFP_ZERO);
	struct page *page;
	int i;

	EXPECT(p != NULL && ((unsigned long)p & (PAGE_SIZE - 1)) == 0);
	if (!p)
		return;
	page = virt_to_page(p);
	EXPECT(((page_to_pfn(page)) & 7) == 0);
	for (i = 0; i < 5; i++)
		EXPECT(page_count(page + i) == 1 && !PageCompound(page + i));
	for (i = 5; i < 8; i++)
		EXPECT(page_count(page + i) == 0);
	/* The tail went to the buddy lists: pfn+5 alone, pfn+6..7 as one order-1 block. */
	EXPECT(PageBuddy(page + 5) && buddy_order(page + 5) == 0);
	EXPECT(PageBuddy(page + 6) && buddy_order(page + 6) == 1);
	EXPECT(p[0] == 0 && p[size - 1] == 0);
	memset(p, 0x5a, size);
	free_pages_exact(p, size);
	for (i = 0; i < 5; i++)
		EXPECT(page_count(page + i) == 0);

	p = alloc_pages_exact_nid(numa_node_id(), 3 * PAGE_SIZE + 1, GFP_KERNEL);
	EXPECT(p && page_to_nid(virt_to_page(p)) == numa_node_id());
	free_pages_exact(p, 3 * PAGE_SIZE + 1);
}

static noinline void check_refcounts(void)
{
	struct page *page = alloc_page(GFP_KERNEL), *comp;

	EXPECT(page && page_count(page) == 1);
	get_page(page);
	EXPECT(page_count(page) == 2);
	put_page(page);
	EXPECT(page_count(page) == 1);
	put_page(page);				/* the last reference: freed */
	EXPECT(page_count(page) == 0);

	comp = alloc_pages(GFP_KERNEL | __GFP_COMP, 2);
	EXPECT(comp && PageHead(comp) && PageTail(comp + 3) && compound_order(comp) == 2);
	EXPECT(compound_head(comp + 3) == comp && page_count(comp + 3) == 1);
	get_page(comp + 2);			/* a tail's reference is the head's */
	EXPECT(page_count(comp) == 2 && atomic_read(&comp[2]._refcount) == 0);
	put_page(comp + 1);
	EXPECT(page_count(comp) == 1);
	put_page(comp);				/* frees all four */
	EXPECT(page_count(comp) == 0 && !PageHead(comp));
}

static noinline void check_nodes_allocate(void)
{
	int nid;

	for_each_online_node(nid) {
		struct page *page = alloc_pages_node(nid, GFP_KERNEL, 2);
		unsigned long addr;
		char *p, *big;

		EXPECT(page && page_to_nid(page) == nid);
		if (page)
			__free_pages(page, 2);
		/* __get_free_pages() on a node: a lowmem page of it, by address. */
		page = alloc_pages_node(nid, GFP_KERNEL, 0);
		addr = page ? (unsigned long)page_address(page) : 0;
		EXPECT(addr && virt_to_page(addr) == page && page_to_nid(virt_to_page(addr)) == nid);
		free_pages(addr, 0);

		p = kmalloc_node(100, GFP_KERNEL, nid);
		EXPECT(p && page_to_nid(virt_to_page(p)) == nid && ksize(p) == 128);
		big = kmalloc_node(3 * PAGE_SIZE, GFP_KERNEL, nid);	/* the page allocator */
		EXPECT(big && page_to_nid(virt_to_page(big)) == nid && !PageSlab(virt_to_page(big)));
		EXPECT(big && PageHead(virt_to_page(big)) && ksize(big) == 4 * PAGE_SIZE);
		kfree(big);
		kfree(p);
		p = kzalloc_node(200, GFP_KERNEL, nid);
		EXPECT(p && p[0] == 0 && p[199] == 0 && page_to_nid(virt_to_page(p)) == nid);
		kfree(p);
		p = vmalloc_node(3 * PAGE_SIZE, nid);
		EXPECT(p && page_to_nid(vmalloc_to_page(p + 2 * PAGE_SIZE)) == nid);
		vfree(p);
	}
}

/* -- slab and the kv* family ---------------------------------------------------- */

static noinline void check_slab_helpers(void)
{
	static const char hello[] = "hello, kernel";
	unsigned int *arr;
	char *s, *d;
	int i, on_tail = 0;
	void *objs[16];

	arr = kmalloc_array(100, sizeof(*arr), GFP_KERNEL);
	EXPECT(arr && ksize(arr) == 512);
	kfree(arr);
	EXPECT(kmalloc_array(0x10000, 0x10001, GFP_KERNEL) == NULL);	/* overflows size_t */
	EXPECT(kcalloc(0x40000000, 8, GFP_KERNEL) == NULL);
	arr = kcalloc(50, sizeof(*arr), GFP_KERNEL);
	for (i = 0; arr && i < 50; i++)
		EXPECT(arr[i] == 0);
	kfree(arr);

	s = kstrdup(hello, GFP_KERNEL);
	EXPECT(s && s != hello && strcmp(s, hello) == 0 && ksize(s) == 16);
	EXPECT(kstrdup(NULL, GFP_KERNEL) == NULL);
	d = kmemdup(hello, 5, GFP_KERNEL);
	EXPECT(d && memcmp(d, "hello", 5) == 0 && ksize(d) == 8);
	kfree(d);
	d = kstrndup(hello, 5, GFP_KERNEL);
	EXPECT(d && strcmp(d, "hello") == 0);
	kfree(d);
	kfree(s);

	/* PageSlab() of a tail page answers for its head: kmalloc-1k slabs are order 1. */
	for (i = 0; i < 16; i++) {
		objs[i] = kmalloc(1024, GFP_KERNEL);
		if (objs[i] && PageTail(virt_to_page(objs[i])))
			on_tail += PageSlab(virt_to_page(objs[i]));
	}
	EXPECT(on_tail > 0);
	for (i = 0; i < 16; i++)
		kfree(objs[i]);
}

static noinline void check_kvmalloc(void)
{
	char *small = kvmalloc(100, GFP_KERNEL);
	char *mid = kvmalloc(64 << 10, GFP_KERNEL);	/* kmalloc's pages still */
	char *big = kvmalloc(8 << 20, GFP_KERNEL);	/* above KMALLOC_MAX_SIZE: vmalloc */
	char *z;
	unsigned long off;

	EXPECT(small && !is_vmalloc_addr(small) && PageSlab(virt_to_page(small)));
	EXPECT(mid && !is_vmalloc_addr(mid) && !PageSlab(virt_to_page(mid)));
	EXPECT(big && is_vmalloc_addr(big));
	for (off = 0; big && off < (8 << 20); off += PAGE_SIZE)
		big[off] = (char)off;			/* every page is there */
	kvfree(big);
	z = kvzalloc(5 << 20, GFP_KERNEL);
	EXPECT(z && is_vmalloc_addr(z) && z[0] == 0 && z[(5 << 20) - 1] == 0);
	/* No vmalloc fallback for a caller that cannot sleep: NULL, no warning. */
	EXPECT(kvmalloc(8 << 20, GFP_ATOMIC) == NULL);
	EXPECT(kvmalloc_array(1 << 30, 16, GFP_KERNEL) == NULL);
	kvfree(small);
	kvfree(mid);
	kvfree(z);
	kvfree(NULL);
}

/* -- vmalloc ------------------------------------------------------------------- */

static noinline void check_vmalloc(void)
{
	char *v32 = vmalloc_32(64 << 10), *v = vmalloc(64 << 10), *u;
	unsigned long off;
	int high = 0;

	EXPECT(v32 && is_vmalloc_addr(v32) && v && is_vmalloc_addr(v));
	for (off = 0; v32 && off < (64 << 10); off += PAGE_SIZE) {
		EXPECT(!PageHighMem(vmalloc_to_page(v32 + off)));	/* GFP_VMALLOC32 */
		high += PageHighMem(vmalloc_to_page(v + off));
	}
	/* Plain vmalloc prefers HighMem, when the local node has some. */
	if (populated_zone(&NODE_DATA(numa_node_id())->node_zones[ZONE_HIGHMEM]))
		EXPECT(high > 0);
	u = vmalloc_user(10000);
	EXPECT(u && ((unsigned long)u & (PAGE_SIZE - 1)) == 0 && u[0] == 0 && u[9999] == 0);
	pr_info("vmalloc_user %p\n", u);	/* kept: the test finds it in vmallocinfo */
	vfree(v);
	vfree(v32);

	EXPECT(is_vmalloc_addr((void *)VMALLOC_START));
	EXPECT(is_vmalloc_addr((void *)(VMALLOC_END - 1)));
	EXPECT(!is_vmalloc_addr((void *)VMALLOC_END) && !is_vmalloc_addr((void *)(VMALLOC_START - 1)));
	EXPECT(!is_vmalloc_addr(NULL) && !is_vmalloc_addr(high_memory));
}

/* -- page tables ------------------------------------------------------------------ */

static int pte_bits(void *addr, unsigned int *level)
{
	pte_t *pte = lookup_address((unsigned long)addr, level);

	return pte ? (int)pte_flags(*pte) : -1;
}

static noinline void check_page_tables(void)
{
	unsigned long text = (unsigned long)&check_page_tables;
	/* The last whole PMD of lowmem: a large page (unless direct_map: 4K). */
	unsigned long big = ((unsigned long)high_memory & PMD_MASK) - PMD_SIZE + 0x1234;
	unsigned int level;
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	pmd_t *pmd;
	pte_t *pte;
	char *v;

	EXPECT(init_mm.pgd == swapper_pg_dir);
	pgd = pgd_offset_k(text);
	EXPECT(pgd == swapper_pg_dir + pgd_index(text));	/* text >> 22, or >> 30 (PAE) */
	p4d = p4d_offset(pgd, text);
	pud = pud_offset(p4d, text);
	pmd = pmd_offset(pud, text);
	EXPECT(!pgd_none(*pgd) && !p4d_none(*p4d) && !pud_none(*pud));
	EXPECT(pmd_present(*pmd));
	if (pmd_large(*pmd)) {
		/* The 686 kernel's text at 16 MiB: 4 MiB pages, kept whole by mark_rodata_ro(). */
		pte = lookup_address(text, &level);
		EXPECT(pte == (pte_t *)pmd && level == PG_LEVEL_2M);
		EXPECT(pmd_pfn(*pmd) == (__pa(text) & PMD_MASK) >> PAGE_SHIFT);
	} else {
		/* A kernel loaded in the first 4 MiB (pc-16m): 4 KiB pages there. */
		EXPECT(!pmd_bad(*pmd));
		pte = pte_offset_kernel(pmd, text);
		EXPECT(pte_present(*pte) && pte_pfn(*pte) == __pa(text) >> PAGE_SHIFT);
		EXPECT(pte_page(*pte) == virt_to_page(text));
		EXPECT(lookup_address(text, &level) == pte && level == PG_LEVEL_4K);
	}
	EXPECT(!pte_write(*pte) && pte_global(*pte));		/* text is read-only */
	EXPECT(pte_exec(*pte));				/* and executable, NX or not */

	/* The direct map beyond the image: 4 MiB pages, PG_LEVEL_2M at the pmd. */
	pmd = pmd_offset(pud_offset(p4d_offset(pgd_offset_k(big), big), big), big);
	if (pmd_large(*pmd)) {
		EXPECT(pmd_pfn(*pmd) == (__pa(big) & PMD_MASK) >> PAGE_SHIFT);
		EXPECT(lookup_address(big, &level) == (pte_t *)pmd && level == PG_LEVEL_2M);
	} else {
		pte = lookup_address(big, &level);
		EXPECT(pte && level == PG_LEVEL_4K && pte_pfn(*pte) == __pa(big) >> PAGE_SHIFT);
	}
	pr_info("pagetable big pmd %08lx level %u\n", (unsigned long)pmd_val(*pmd), level);

	/* A vmalloc page, and the guard page after it. */
	v = vmalloc(PAGE_SIZE);
	pte = lookup_address((unsigned long)v, &level);
	EXPECT(pte && level == PG_LEVEL_4K && pte_present(*pte) && pte_write(*pte));
#ifdef CONFIG_X86_PAE
	EXPECT(pte && !pte_exec(*pte));			/* PAGE_KERNEL: NX on 686-pae */
#else
	EXPECT(pte && pte_exec(*pte));			/* no NX bit on 686 */
#endif
	EXPECT(pte && pte_page(*pte) == vmalloc_to_page(v));
	pte = lookup_address((unsigned long)v + PAGE_SIZE, &level);
	EXPECT(pte && level == PG_LEVEL_4K && !pte_present(*pte) && pte_none(*pte));
	vfree(v);

	/*
	 * No table at all: user space in swapper_pg_dir.  Two levels stop at
	 * the (folded) pmd, having passed the pud: PG_LEVEL_1G.  PAE stops at
	 * the pud, the PDPT entry, which is absent: PG_LEVEL_512G.
	 */
	EXPECT(lookup_address(0x40000000UL, &level) == NULL &&
	       level == (CONFIG_PGTABLE_LEVELS == 3 ? PG_LEVEL_512G : PG_LEVEL_1G));
}

/* -- ioremap in every cache mode ---------------------------------------------------- */

static noinline void check_ioremap(void)
{
	struct { const char *name; void __iomem *p; int want; } maps[] = {
		{ "ioremap", ioremap(REGS0_PHYS, 16), _PAGE_PCD },
		{ "ioremap_uc", ioremap_uc(REGS0_PHYS, 16), _PAGE_PCD | _PAGE_PWT },
		{ "ioremap_wc", ioremap_wc(REGS0_PHYS, 16), _PAGE_PWT },
		{ "ioremap_cache", ioremap_cache(REGS0_PHYS, 16), 0 },
	};
	unsigned int i, level;

	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		void __iomem *p = maps[i].p;
		int bits = p ? pte_bits((void *)p, &level) : -1;

		EXPECT(p && is_vmalloc_addr((void *)p) && level == PG_LEVEL_4K);
		EXPECT(bits >= 0 && (bits & (_PAGE_PCD | _PAGE_PWT | _PAGE_PAT)) == maps[i].want);
		if (!p)
			continue;
		writel(0x1000 + i, p + 0xc);			/* SCRATCH */
		EXPECT(readl(p + 0xc) == 0x1000 + i);
		pr_info("%s %p pte flags %03x\n", maps[i].name, p, bits);
	}
	for (i = 0; i < ARRAY_SIZE(maps); i++)
		iounmap(maps[i].p);
}

/* -- HighMem ---------------------------------------------------------------------- */

static noinline void check_highmem(void)
{
	struct page *page;
	void *addr;
	int nid, high_nid = -1;

	for_each_online_node(nid)		/* a node with HighMem (not always node 0) */
		if (populated_zone(&NODE_DATA(nid)->node_zones[ZONE_HIGHMEM]))
			high_nid = nid;
	if (high_nid < 0) {
		page = alloc_page(GFP_HIGHUSER);
		EXPECT(page && !PageHighMem(page));	/* falls back to Normal */
		__free_page(page);
		return;
	}
	page = alloc_pages_node(high_nid, GFP_HIGHUSER, 0);
	EXPECT(page && PageHighMem(page) && page_address(page) == NULL);
	addr = kmap(page);
	EXPECT(addr && page_address(page) == addr);	/* kmapped: it has an address */
	EXPECT((unsigned long)addr >= PKMAP_BASE && lookup_address((unsigned long)addr, &(unsigned int){0}));
	kunmap(page);
	__free_page(page);
}

int main(void)
{
	check_addresses();
	check_nodes_and_zones();
	check_counters_move();
	check_si_meminfo();
	check_alloc_pages_exact();
	check_refcounts();
	check_nodes_allocate();
	check_slab_helpers();
	check_kvmalloc();
	check_vmalloc();
	check_page_tables();
	check_ioremap();
	check_highmem();
	pr_info("final nr_free_pages %lu failures %d\n", nr_free_pages(), failures);
	return failures > 255 ? 255 : failures;
}
