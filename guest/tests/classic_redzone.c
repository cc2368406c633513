/*
 * classic_redzone.c - a write one byte past a kmalloc(64) object.
 *
 * With slub_debug (the Z of FZPU: red zones) the byte after the object is
 * the right red zone, 0xcc while allocated; kfree() finds it changed:
 * "BUG kmalloc-64 (Not tainted): Right Redzone overwritten".
 */
#include <mmemu.h>

int main(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	p[64] = 'A';			/* BUG: one past the end */
	kfree(p);
	return 0;
}
