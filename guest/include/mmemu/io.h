/*
 * mmemu/io.h - ioremap and MMIO accessors (arch/x86/include/asm/io.h).
 *
 * ioremap(phys, size) maps a device's physical window into the vmalloc
 * area with uncached PTEs (one hypercall to mmemu/arch/x86/ioremap.py); the
 * accessors below are plain volatile moves with a "memory" clobber, as on
 * x86 Linux, so the compiler neither drops, merges nor reorders them, and
 * each reaches the emulated device through the page tables.  Physical
 * addresses with no device behind them read all ones, as on a PC bus.
 *
 * Hypercall numbers mirror mmemu/runtime/hc_io.py.
 */
#ifndef _MMEMU_IO_H
#define _MMEMU_IO_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/vmalloc.h>		/* _THIS_IP_, __vunmap_flush(): vm areas */

/* ip: the caller's address (_THIS_IP_), as for vmalloc (mmemu/vmalloc.h) */
#define HC_IOREMAP	(HC_IO_BASE + 0)	/* (phys, size, ip) -> address */
#define HC_IOUNMAP	(HC_IO_BASE + 1)	/* (addr, ip) -> pages to flush */
#define HC_IOREMAP_PCM	(HC_IO_BASE + 2)	/* (phys, size, cache mode, ip) -> address */

/* enum page_cache_mode (arch/x86/include/asm/pgtable_types.h) */
enum page_cache_mode {
	_PAGE_CACHE_MODE_WB = 0,
	_PAGE_CACHE_MODE_WC = 1,
	_PAGE_CACHE_MODE_UC_MINUS = 2,
	_PAGE_CACHE_MODE_UC = 3,
	_PAGE_CACHE_MODE_WT = 4,
	_PAGE_CACHE_MODE_WP = 5,
};

#ifndef __iomem
#define __iomem		/* sparse's address-space marker; nothing to the compiler */
#endif

/*
 * void __iomem *ioremap(resource_size_t offset, unsigned long size):
 * NULL for size 0, for RAM in use ("ioremap on RAM at ..."), or when the
 * vmalloc area is full.  An unaligned offset is mapped page-aligned and
 * the returned pointer carries the offset.
 */
static __always_inline void __iomem *ioremap(resource_size_t offset, unsigned long size)
{
#ifdef CONFIG_X86_PAE		/* a 64-bit resource_size_t: the high word last */
	return (void __iomem *)hypercall4(HC_IOREMAP, (unsigned long)offset, size, _THIS_IP_,
					  (unsigned long)((u64)offset >> 32));
#else
	return (void __iomem *)hypercall3(HC_IOREMAP, offset, size, _THIS_IP_);
#endif
}

/*
 * The other cache modes (arch/x86/mm/ioremap.c), each the same mapping with
 * other PTE cache bits, through Linux's PAT layout (WB 0, WC PWT, UC- PCD,
 * UC PCD|PWT, WT PAT|PCD|PWT): ptdump shows them.  The same checks apply
 * (no RAM in use, NULL for size 0); all are undone with iounmap().
 *   ioremap_uc(): strongly uncached, UC (PCD | PWT)
 *   ioremap_wc(): write-combining, WC (PWT), for frame buffers
 *   ioremap_wt(): write-through, WT
 *   ioremap_cache(): write-back, as RAM (no cache bits)
 */
static __always_inline void __iomem *__ioremap_caller(phys_addr_t offset, unsigned long size,
						      enum page_cache_mode pcm,
						      unsigned long caller)
{
#ifdef CONFIG_X86_PAE		/* a 64-bit phys_addr_t: the high word last */
	return (void __iomem *)hypercall5(HC_IOREMAP_PCM, (unsigned long)offset, size, pcm,
					  caller, (unsigned long)((u64)offset >> 32));
#else
	return (void __iomem *)hypercall4(HC_IOREMAP_PCM, offset, size, pcm, caller);
#endif
}

static __always_inline void __iomem *ioremap_uc(phys_addr_t offset, unsigned long size)
{
	return __ioremap_caller(offset, size, _PAGE_CACHE_MODE_UC, _THIS_IP_);
}

static __always_inline void __iomem *ioremap_wc(phys_addr_t offset, unsigned long size)
{
	return __ioremap_caller(offset, size, _PAGE_CACHE_MODE_WC, _THIS_IP_);
}

static __always_inline void __iomem *ioremap_wt(phys_addr_t offset, unsigned long size)
{
	return __ioremap_caller(offset, size, _PAGE_CACHE_MODE_WT, _THIS_IP_);
}

static __always_inline void __iomem *ioremap_cache(phys_addr_t offset, unsigned long size)
{
	return __ioremap_caller(offset, size, _PAGE_CACHE_MODE_WB, _THIS_IP_);
}

/* void iounmap(volatile void __iomem *addr): flushes the area's TLB entries as vfree() */
static __always_inline void iounmap(volatile void __iomem *addr)
{
	__vunmap_flush(hypercall2(HC_IOUNMAP, (unsigned long)addr, _THIS_IP_));
}

#define build_mmio_read(name, size, type, reg)				\
static __always_inline type name(const volatile void __iomem *addr)	\
{									\
	type ret;							\
	__asm__ __volatile__("mov" size " %1,%0" : reg(ret)		\
			     : "m"(*(const volatile type *)addr) : "memory"); \
	return ret;							\
}

#define build_mmio_write(name, size, type, reg)				\
static __always_inline void name(type val, volatile void __iomem *addr)	\
{									\
	__asm__ __volatile__("mov" size " %0,%1" : : reg(val),		\
			     "m"(*(volatile type *)addr) : "memory");	\
}

build_mmio_read(readb, "b", u8, "=q")
build_mmio_read(readw, "w", u16, "=r")
build_mmio_read(readl, "l", u32, "=r")
build_mmio_write(writeb, "b", u8, "q")
build_mmio_write(writew, "w", u16, "r")
build_mmio_write(writel, "l", u32, "r")

/*
 * Port I/O, as arch/x86/include/asm/io.h: outb(value, port), inb(port), and
 * the w and l widths.  mmemu serves no port: these reach the ports of the
 * program that embeds mmemu (its IN/OUT hooks), or read all ones.
 */
#define build_port_io(bwl, type, reg)					\
static __always_inline void out##bwl(type value, u16 port)		\
{									\
	__asm__ __volatile__("out" #bwl " %" reg "0, %w1"		\
			     : : "a"(value), "Nd"(port));		\
}									\
static __always_inline type in##bwl(u16 port)				\
{									\
	type value;							\
	__asm__ __volatile__("in" #bwl " %w1, %" reg "0"		\
			     : "=a"(value) : "Nd"(port));		\
	return value;							\
}

build_port_io(b, u8, "b")
build_port_io(w, u16, "w")
build_port_io(l, u32, "")

#define __raw_readb	readb
#define __raw_readw	readw
#define __raw_readl	readl
#define __raw_writeb	writeb
#define __raw_writew	writew
#define __raw_writel	writel
#define readb_relaxed	readb
#define readw_relaxed	readw
#define readl_relaxed	readl
#define writeb_relaxed	writeb
#define writew_relaxed	writew
#define writel_relaxed	writel

/* lib/iomap.c's names, for MMIO (no port I/O here) */
#define ioread8		readb
#define ioread16	readw
#define ioread32	readl
#define iowrite8	writeb
#define iowrite16	writew
#define iowrite32	writel

/* Barriers (arch/x86/include/asm/barrier.h, 32-bit without SSE2). */
#ifndef mb
#define mb()	__asm__ __volatile__("lock; addl $0,-4(%%esp)" : : : "memory", "cc")
#define rmb()	mb()
#define wmb()	mb()
#endif

static __always_inline void memset_io(volatile void __iomem *addr, int value,
				      size_t count)
{
	volatile u8 __iomem *p = addr;

	while (count--)
		writeb((u8)value, p++);
}

static __always_inline void memcpy_fromio(void *dst, const volatile void __iomem *src,
					  size_t count)
{
	u8 *d = dst;
	const volatile u8 __iomem *s = src;

	while (count--)
		*d++ = readb(s++);
}

static __always_inline void memcpy_toio(volatile void __iomem *dst, const void *src,
					size_t count)
{
	volatile u8 __iomem *d = dst;
	const u8 *s = src;

	while (count--)
		writeb(*s++, d++);
}

#endif /* _MMEMU_IO_H */
