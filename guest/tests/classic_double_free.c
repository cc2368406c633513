/*
 * classic_double_free.c - kfree() of the same object twice.
 *
 * Without slub_debug 6.1's naive check in set_freepointer()
 * (CONFIG_SLAB_FREELIST_HARDENED) catches it: "kernel BUG at
 * mm/slub.c:379!".  With slub_debug: "BUG kmalloc-64 (Not tainted):
 * Object already free".
 */
#include <mmemu.h>

int main(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	kfree(p);
	kfree(p);			/* BUG: double free */
	return 0;
}
