/*
 * highmem_fixmap.c - set_fixmap(), fix_to_virt() and clear_fixmap().
 *
 * A fixmap slot is an address known at compile time; set_fixmap() points it
 * at any physical page.  Here FIX_TEXT_POKE0 is pointed at a page we
 * filled through the direct map, read through the fixmap, then cleared.
 * An index past __end_of_fixed_addresses is 6.1's BUG() in
 * __native_set_fixmap() (arch/x86/mm/pgtable.c:661): refused, and the BUG
 * kills the task, so it comes last.
 * Exit status: the number of the first check that failed, else 134.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

#include <mmemu/check.h>

int main(void)
{
	unsigned long page = __get_free_page(GFP_KERNEL);
	volatile u32 *fix = (volatile u32 *)fix_to_virt(FIX_TEXT_POKE0);

	CHECK(1, page != 0);
	((u32 *)page)[5] = 0xabcdef01;
	CHECK(2, virt_to_fix((unsigned long)fix) == FIX_TEXT_POKE0);
	CHECK(3, set_fixmap(FIX_TEXT_POKE0, __pa(page)) == 0);
	CHECK(4, fix[5] == 0xabcdef01);
	fix[6] = 0x600d;
	CHECK(5, ((u32 *)page)[6] == 0x600d);
	CHECK(6, (unsigned long)set_fixmap_offset(FIX_TEXT_POKE1, __pa(page) + 0x10)
		 == fix_to_virt(FIX_TEXT_POKE1) + 0x10);
	CHECK(7, clear_fixmap(FIX_TEXT_POKE0) == 0 && clear_fixmap(FIX_TEXT_POKE1) == 0);
	pr_info("highmem_fixmap: FIX_TEXT_POKE0 at %#lx\n", fix_to_virt(FIX_TEXT_POKE0));
	CHECK(8, mmemu_check() == 0);
	set_fixmap(__end_of_fixed_addresses, __pa(page));	/* BUG: refused, the task dies */
	return 0;						/* not reached */
}
