/*
 * loops.c - the guest side of tools/bench.py: one loop per figure, picked
 * by the host through the globals `which` and `iterations` before the run.
 */
#include <mmemu.h>

volatile unsigned long which;
volatile unsigned long iterations;

enum { NOTHING, EMPTY_HC, PAGE_PAIR, KMALLOC_PAIR, VMALLOC_PAIR, IOREMAP_PAIR,
       KMAP_PAIR, KMAP_ATOMIC_PAIR, MMIO_READS };

static struct page *highpage;
static void *mmio;

static void setup(void)
{
	if (which == KMAP_PAIR || which == KMAP_ATOMIC_PAIR)
		highpage = alloc_page(GFP_HIGHUSER);
#ifdef _MMEMU_IO_H
	if (which == MMIO_READS)
		mmio = ioremap(0xfe001000, 4096);
#endif
}

int main(void)
{
	unsigned long i, n = iterations;

	setup();
	switch (which) {
	case EMPTY_HC:
		for (i = 0; i < n; i++)
			hypercall0(HC_NOP);
		break;
	case PAGE_PAIR:
		for (i = 0; i < n; i++)
			__free_pages(alloc_page(GFP_KERNEL), 0);
		break;
#ifdef _MMEMU_SLAB_H
	case KMALLOC_PAIR:
		for (i = 0; i < n; i++)
			kfree(kmalloc(64, GFP_KERNEL));
		break;
#endif
	case VMALLOC_PAIR:
		for (i = 0; i < n; i++)
			vfree(vmalloc(64 * 1024));
		break;
#ifdef _MMEMU_IO_H
	case IOREMAP_PAIR:
		for (i = 0; i < n; i++)
			iounmap(ioremap(0xfe001000, 4096));
		break;
	case MMIO_READS:
		for (i = 0; i < n; i++)
			(void)readl(mmio);
		break;
#endif
	case KMAP_PAIR:
		for (i = 0; i < n; i++) {
			kmap(highpage);
			kunmap(highpage);
		}
		break;
	case KMAP_ATOMIC_PAIR:
		for (i = 0; i < n; i++)
			kunmap_atomic(kmap_atomic(highpage));
		break;
	}
	return 0;
}
