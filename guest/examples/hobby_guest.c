/*
 * hobby_guest.c - a guest program in someone else's emulator (README,
 * "Embedding mmemu in your own Unicorn program"): in one run it uses
 * mmemu's allocators and the host program's own things: its UART ports,
 * its int $0x80 and its MMIO counter device.  mmemu serves none of those;
 * the host's hooks do.
 */
#include <mmemu.h>

#define HOBBY_UART	0x3f8		/* the host's: THR, and LSR at +5 */
#define UART_LSR_THRE	0x20
#define HOBBY_COUNTER	0xfeb00000	/* the host's MMIO counter device */
#define HOBBY_SYS_TICKS	7		/* the host's int $0x80 call: its clock */

/* As 8250's wait_for_xmitr(): poll LSR.THRE a bounded number of times. */
static void uart_puts(const char *s)
{
	while (*s) {
		int tries = 10000;

		while (!(inb(HOBBY_UART + 5) & UART_LSR_THRE) && --tries)
			;
		outb(*s++, HOBBY_UART);
	}
}

static long hobby_syscall(long nr)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
	return ret;
}

int main(void)
{
	char *line = kmalloc(64, GFP_KERNEL);
	struct page *pages = alloc_pages(GFP_KERNEL, 1);
	void __iomem *counter = ioremap(HOBBY_COUNTER, PAGE_SIZE);
	long ticks;
	u32 count;

	if (!line || !pages || !counter)
		return 1;
	ticks = hobby_syscall(HOBBY_SYS_TICKS);
	count = readl(counter);
	writel(count + 100, counter);
	snprintf(line, 64, "guest: ticks %ld, counter %u\n", ticks, count);
	uart_puts(line);
	printk(KERN_INFO "hobby_guest: line at %p (kmalloc-64), two pages at pfn %lu\n",
	       line, page_to_pfn(pages));
	iounmap(counter);
	__free_pages(pages, 1);
	kfree(line);
	return 0;
}
