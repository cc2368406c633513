/*
 * ioremap_unbacked.c - ioremap() a physical range with no device behind it.
 *
 * Like a PC bus, nothing answers there: reads return all ones of their
 * width and writes vanish.  An unaligned request is mapped page-aligned and
 * the pointer keeps the offset.  Returns 0 when both hold.
 */
#include <mmemu.h>

#define NOTHING_PHYS	0xfe100000UL	/* between pc-1g's devices and the BIOS */

int main(void)
{
	void __iomem *p = ioremap(NOTHING_PHYS + 0x10, 8);

	if (!p || ((unsigned long)p & ~PAGE_MASK) != 0x10)
		return 1;
	writel(0x12345678, p);
	if (readl(p) != 0xffffffff || readw(p + 2) != 0xffff || readb(p + 7) != 0xff)
		return 2;
	iounmap(p);
	return 0;
}
