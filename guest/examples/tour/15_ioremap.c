/*
 * 15_ioremap.c - ioremap: a device's registers in the kernel's address space.
 *
 * A device's registers sit at a physical address that is not RAM (here the
 * 16550 UART at 0xfe000000, listed in /proc/iomem).  The CPU only reaches
 * physical memory through page tables, and the direct map covers RAM only,
 * so a driver asks ioremap() to map the range, uncached, into the vmalloc
 * area, and talks to it with readb()/writeb(), never a plain pointer.
 */
#include <mmemu.h>

#define UART_PHYS	0xfe000000UL
#define UART_TX		0		/* transmit holding register */
#define UART_LSR	5		/* line status */
#define UART_LSR_THRE	0x20		/* transmit holding register empty */

int main(void)
{
	void __iomem *uart = ioremap(UART_PHYS, PAGE_SIZE);
	const char *s = "hello from the UART\n";

	if (!uart || !is_vmalloc_addr((void *)uart))
		return 1;
	pr_info("ioremap(%#lx, 4 KiB) = %p, is_vmalloc_addr() %d\n",
		UART_PHYS, uart, is_vmalloc_addr((void *)uart));
	for (; *s; s++) {
		while (!(readb(uart + UART_LSR) & UART_LSR_THRE))
			;
		writeb(*s, uart + UART_TX);
	}
	return 0;			/* keeps the mapping: see vmallocinfo */
}
