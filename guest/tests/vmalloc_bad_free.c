/*
 * vmalloc_bad_free.c - vfree() of addresses vmalloc() did not return.
 *
 * Expected: each bad call is reported in the kernel's words and ignored,
 * and the program carries on: vfree() of an address inside an area,
 * vfree() of an unaligned address, and a double vfree().  vfree(NULL) is
 * silent.  Returns 0 when the area survived the bad calls intact.
 */
#include <mmemu.h>

int main(void)
{
	char *buf = vmalloc(3 * PAGE_SIZE);

	if (!buf)
		return 1;
	buf[PAGE_SIZE] = 42;
	vfree(NULL);				/* a no-op */
	vfree(buf + PAGE_SIZE);			/* "nonexistent vm area" */
	vfree(buf + 1);				/* "bad address" */
	if (buf[PAGE_SIZE] != 42)		/* still mapped */
		return 2;
	vfree(buf);
	vfree(buf);				/* double free: "nonexistent vm area" */
	return mmemu_check() ? 3 : 0;
}
