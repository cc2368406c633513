/*
 * pgd_large_in_vmalloc.c - a 4 MiB page where vmalloc's page table should be.
 *
 * The first page-directory entry of the vmalloc area is made a large page
 * (PSE).  mmemu refuses to write PTEs into that large page's frames (6.1,
 * which does not check there, would scribble over them): pmd_ERROR()'s
 * "mm/pgtable-generic.c:51: bad pgd <entry>", vmalloc() fails (NULL, with
 * warn_alloc()'s "vmalloc error"), and the program goes on: exit 0.
 */
#include <mmemu.h>
#include <mmemu/vmalloc.h>

int main(void)
{
	unsigned long *pgd = (unsigned long *)swapper_pg_dir;
	unsigned long start = MMEMU_BOOTINFO->vmalloc_start;
	void *v;

	pgd[start >> 22] = 0x00400000 | 0x0e3;	/* PSE: 4 MiB at physical 4 MiB */
	v = vmalloc(4096);
	printk("vmalloc: %px\n", v);
	return v == NULL ? 0 : 1;
}
