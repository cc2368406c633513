/*
 * vmalloc_use_after_free.c - read a vmalloc'd buffer after vfree().
 *
 * vfree() unmaps the area and flushes the TLB, so the stale pointer faults
 * (the page is not handed to anyone through this address).  Expected: an
 * oops naming the freed vmalloc area, who allocated it and who freed it.
 */
#include <mmemu.h>

int main(void)
{
	volatile int *buf = vmalloc(PAGE_SIZE);

	if (!buf)
		return 1;
	buf[10] = 7;
	if (buf[10] != 7)			/* the translation is in the TLB now */
		return 2;
	vfree((void *)buf);
	return buf[10];				/* faults */
}
