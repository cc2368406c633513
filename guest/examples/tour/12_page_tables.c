/*
 * 12_page_tables.c - walking the kernel's page tables.
 *
 * Without PAE an i386 address is translated by two levels: a page
 * directory (pgd, 1024 entries of 4 MiB) and page tables (pte, 1024
 * entries of 4 KiB).  Linux's code always walks five levels, pgd -> p4d ->
 * pud -> pmd -> pte; on i386 the p4d, pud and pmd levels are folded into
 * the pgd.  The direct map uses 4 MiB pages where it can (a pmd that is
 * "large", PSE): no pte level at all.  The kernel's own tables are
 * swapper_pg_dir (init_mm.pgd).
 */
#include <mmemu.h>

static void walk(const char *what, unsigned long addr)
{
	pgd_t *pgd = pgd_offset_k(addr);
	p4d_t *p4d = p4d_offset(pgd, addr);
	pud_t *pud = pud_offset(p4d, addr);
	pmd_t *pmd = pmd_offset(pud, addr);
	pte_t *pte;

	pr_info("%s %#010lx: pgd index %lu, entry %#010lx\n", what, addr,
		pgd_index(addr), (unsigned long)pmd_val(*pmd));
	if (pmd_large(*pmd)) {
		pr_info("  a 4 MiB page (PSE): physical %#010lx\n",
			(pmd_pfn(*pmd) << PAGE_SHIFT) + (addr & ~PMD_MASK));
		return;
	}
	pte = pte_offset_kernel(pmd, addr);
	pr_info("  pte index %lu, entry %#010lx: physical %#010lx\n", pte_index(addr),
		(unsigned long)pte_val(*pte), (pte_pfn(*pte) << PAGE_SHIFT) + (addr & ~PAGE_MASK));
}

int main(void)
{
	void *obj = kmalloc(128, GFP_KERNEL);
	void *buf = vmalloc(3 * PAGE_SIZE);
	unsigned int level;

	if (!obj || !buf)
		return 1;
	walk("kmalloc(128)", (unsigned long)obj);
	walk("vmalloc(12 KiB)", (unsigned long)buf);
	walk("main()", (unsigned long)main);
	lookup_address((unsigned long)buf, &level);
	pr_info("lookup_address(vmalloc): level %u (PG_LEVEL_4K)\n", level);
	return level == PG_LEVEL_4K ? 0 : 2;	/* keeps both: see ptdump --lookup */
}
