/*
 * ioremap_use_after_iounmap.c - read a device register after iounmap().
 *
 * iounmap() unmaps the area, and the SDK's wrapper flushes its TLB entries
 * (invlpg per page, as flush_tlb_kernel_range() does), so the stale pointer
 * faults even though the read before put the translation in the TLB.
 * Expected: an oops naming the freed ioremap area.
 */
#include <mmemu.h>

#define NOTHING_PHYS	0xfe100000UL	/* no device: reads all ones */

int main(void)
{
	void __iomem *p = ioremap(NOTHING_PHYS, 8);

	if (!p)
		return 1;
	if (readl(p) != 0xffffffff)		/* the translation is in the TLB now */
		return 2;
	iounmap(p);
	return (int)readl(p);			/* faults */
}
