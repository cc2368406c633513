/*
 * pgd_bad_on_vfree.c - vmalloc()'s page-directory entry given bad flags,
 * then vfree().
 *
 * The entry of the table that maps the area is made read-only (flags 0x61,
 * not a kernel page table's 0x63).  vunmap_pmd_range() meets it through
 * pmd_none_or_clear_bad(): "mm/pgtable-generic.c:51: bad pgd <entry>", and
 * the entry is cleared (the table page is lost, as in 6.1).  No BUG: the
 * program goes on, exit 0.
 */
#include <mmemu.h>
#include <mmemu/vmalloc.h>

int main(void)
{
	unsigned long *pgd = (unsigned long *)swapper_pg_dir;
	char *v = vmalloc(4096);

	if (!v)
		return 1;
	v[0] = 1;
	pgd[(unsigned long)v >> 22] &= ~0x2UL;	/* clear RW: pmd_bad() */
	vfree(v);
	printk("vfree done; pde now %08lx\n", pgd[(unsigned long)v >> 22]);
	return pgd[(unsigned long)v >> 22] == 0 ? 0 : 2;
}
