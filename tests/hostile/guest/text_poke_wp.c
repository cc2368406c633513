/*
 * text_poke_wp.c - patching kernel text, three ways, and running the result.
 *
 * The program's .text is mapped read-only (mark_rodata_ro()).  It patches
 * the immediate of answer()'s "mov $1, %eax": with CR0.WP cleared (ring 0
 * may then write read-only pages), through a fixmap alias of the page
 * (text_poke()'s way), and one instruction ahead in the very block being
 * run.  Each time the CPU must run the new bytes, not a translation of the
 * old ones.  Exit status 0 when all three did.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

static noinline int answer(void)
{
	return 1;
}

/* Called through a volatile pointer: the compiler cannot know what it returns. */
static int (*volatile call)(void) = answer;

static inline unsigned long read_cr0(void)
{
	unsigned long v;

	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline void write_cr0(unsigned long v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

int main(void)
{
	unsigned long addr = (unsigned long)call, cr0 = read_cr0();
	volatile unsigned char *code = (unsigned char *)addr;
	int i, first, wp, poke, inline_patch;

	for (i = 0; i < 16 && code[i] != 0xb8; i++)	/* mov $imm32, %eax */
		;
	first = call();

	write_cr0(cr0 & ~(1UL << 16));			/* CR0.WP off */
	code[i + 1] = 42;
	write_cr0(cr0);
	wp = call();

	set_fixmap(FIX_TEXT_POKE0, __pa(addr & PAGE_MASK));
	*(volatile unsigned char *)(fix_to_virt(FIX_TEXT_POKE0) + (addr & ~PAGE_MASK) + i + 1) = 7;
	clear_fixmap(FIX_TEXT_POKE0);
	poke = call();

	write_cr0(cr0 & ~(1UL << 16));
	__asm__ volatile("movl $1f+1, %%ecx\n\t"
			 "movb $9, (%%ecx)\n\t"
			 "1: movl $5, %%eax\n\t"
			 : "=a"(inline_patch) : : "ecx", "memory");
	write_cr0(cr0);

	printk("text_poke_wp: %d, WP off %d, fixmap alias %d, same block %d\n",
	       first, wp, poke, inline_patch);
	return first == 1 && wp == 42 && poke == 7 && inline_patch == 9 ? 0 : 1;
}
