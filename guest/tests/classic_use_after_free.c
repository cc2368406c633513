/*
 * classic_use_after_free.c - writing to a kmalloc() object after kfree().
 *
 * With slub_debug (the P of FZPU: poisoning) SLUB fills a freed object
 * with 0x6b; the next allocation from the cache checks the object it
 * hands out and finds the write: "BUG kmalloc-64 (Not tainted): Poison
 * overwritten".  Without slub_debug nothing notices, as on Linux.
 */
#include <mmemu.h>

int main(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	kfree(p);
	p[10] = 'x';			/* BUG: use after free */
	p = kmalloc(64, GFP_KERNEL);	/* the same object again: checked */
	kfree(p);
	return 0;
}
