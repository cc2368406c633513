/*
 * loops.c - the guest side of tools/bench.py: one loop per figure, picked
 * by the host through the globals `which` and `iterations` before the run.
 */
#include <mmemu.h>

volatile unsigned long which;
volatile unsigned long iterations;

enum { NOTHING, EMPTY_HC, PAGE_PAIR, KMALLOC_PAIR, VMALLOC_PAIR, IOREMAP_PAIR,
       KMAP_PAIR, KMAP_ATOMIC_PAIR, MMIO_READS, MEMSET_64K, MEMCPY_64K, COMPUTE };

static struct page *highpage;
static void *mmio;
static char *buf_a, *buf_b;
volatile unsigned long sink;

/* The SDK's own memset/memcpy (rep stosb/movsb), called as functions: the
 * builtins the macros name could be inlined another way. */
static void *(*volatile memset_fn)(void *, int, size_t) = memset;
static void *(*volatile memcpy_fn)(void *, const void *, size_t) = memcpy;

static void setup(void)
{
	if (which == KMAP_PAIR || which == KMAP_ATOMIC_PAIR)
		highpage = alloc_page(GFP_HIGHUSER);
#ifdef _MMEMU_IO_H
	if (which == MMIO_READS)
		mmio = ioremap(0xfe001000, 4096);
#endif
	if (which == MEMSET_64K || which == MEMCPY_64K) {
		buf_a = kmalloc(65536, GFP_KERNEL);
		buf_b = kmalloc(65536, GFP_KERNEL);
	}
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
	case MEMSET_64K:
		for (i = 0; i < n; i++)
			memset_fn(buf_a, (int)i, 65536);
		break;
	case MEMCPY_64K:
		for (i = 0; i < n; i++)
			memcpy_fn(buf_b, buf_a, 65536);
		break;
	case COMPUTE: {
		unsigned long a = 0, b = 0;

		for (i = 0; i < n; i++) {
			a += i;
			b ^= a;
			b <<= 1;
		}
		sink = b;
		break;
	}
	}
	return 0;
}
