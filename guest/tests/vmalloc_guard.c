/*
 * vmalloc_guard.c - write one byte past the end of a vmalloc'd buffer.
 *
 * Every vmalloc area is followed by a guard page that is never mapped, so
 * the overrun faults at once instead of corrupting a neighbour.  Expected:
 * an oops whose address is the first byte of the guard page, described as
 * "the guard page after the vmalloc area ... allocated by main+...".
 */
#include <mmemu.h>

int main(void)
{
	char *buf = vmalloc(2 * PAGE_SIZE);

	if (!buf)
		return 1;
	buf[0] = 1;
	buf[2 * PAGE_SIZE - 1] = 2;		/* the last byte: fine */
	pr_info("buffer %p, now writing %p\n", buf, buf + 2 * PAGE_SIZE);
	((volatile char *)buf)[2 * PAGE_SIZE] = 3;	/* one past: the guard page */
	return 2;				/* not reached */
}
