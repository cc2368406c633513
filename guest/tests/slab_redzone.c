/*
 * slab_redzone.c - a one-byte overflow past a kmalloc(64) object.
 *
 * With slub_debug=FZPU the byte after the object is the right red zone
 * (0xcc while allocated): kfree() reports "BUG kmalloc-64 (Not tainted):
 * Right Redzone overwritten", "0x...-0x... @offset=N. First byte 0x41
 * instead of 0xcc", the object dump, "FIX kmalloc-64: Restoring Right
 * Redzone ...=0xcc" and does not free the object.  Returns 0.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return 1;
	memset(p, 0, 64);
	p[64] = 'A';			/* BUG: one past the end */
	kfree(p);
	return mmemu_check() ? 2 : 0;
}
