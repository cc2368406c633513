/*
 * pte_unbacked_fetch.c - calling code where no memory is.
 *
 * As pte_unbacked.c, but the program calls into that page.  The bus gives
 * all-ones bytes, and ff ff is no instruction: the CPU raises #UD, and the
 * kernel dies with "invalid opcode: 0000 [#1]" (an oops: 139).
 */
#include <mmemu.h>

int main(void)
{
	unsigned long *pgd = (unsigned long *)swapper_pg_dir;
	unsigned long va = MMEMU_BOOTINFO->vmalloc_start;
	void (*fn)(void) = (void (*)(void))(va + 0x10);

	pgd[va >> 22] = 0x80400000 | 0x0e3;
	printk("calling %px\n", fn);
	fn();
	printk("not reached\n");
	return 0;
}
