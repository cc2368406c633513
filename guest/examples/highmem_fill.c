/*
 * highmem_fill.c - write every HighMem page through kmap(), then read each
 * one back through kmap_atomic() and check its checksum.
 *
 *   mmemu run guest/examples/highmem_fill.c --config pc-1g
 *
 * On pc-1g the top 148 MiB of RAM (37858 pages) is HighMem: the kernel has
 * no address for it until it maps a page.  The program:
 *
 *  1. takes HighMem pages with GFP_HIGHUSER until the allocator hands out a
 *     page from another zone (HighMem is down to its watermark and the
 *     zonelist falls back to Normal); that page goes back;
 *  2. maps each page with kmap(), writes a pattern that depends on the pfn,
 *     and kunmap()s it.  Only 1024 pkmap slots exist: each time the search
 *     for a free slot wraps, the kernel unmaps every unused slot at once
 *     and flushes the TLB once (flush_all_zero_pkmaps());
 *  3. maps each page with kmap_atomic() (a per-CPU fixmap slot, preemption
 *     off) and compares the checksum of what it reads with the pattern's.
 */
#include <mmemu.h>
#include <mmemu/highmem.h>

#define MAX_PAGES	65536
#define WORDS		(PAGE_SIZE / sizeof(u32))

static struct page *pages[MAX_PAGES];

/*
 * The pattern: word i of the page at pfn holds seed(pfn) + i * STEP, so the
 * words of a page all differ, a page mapped in place of another shows
 * another seed, and the checksum (the sum of the words) has a closed form.
 */
#define STEP	0x9e3779b9u

static u32 seed(unsigned long pfn)
{
	u32 x = (u32)pfn * 2654435761u;

	return x ^ (x >> 15);
}

static u32 checksum_of(unsigned long pfn)
{
	return seed(pfn) * WORDS + STEP * (WORDS * (WORDS - 1) / 2);
}

static unsigned long grab_highmem(void)
{
	unsigned long n = 0;

	while (n < MAX_PAGES) {
		struct page *page = alloc_page(GFP_HIGHUSER | __GFP_NOWARN);

		if (!page)
			break;
		if (!PageHighMem(page)) {	/* fell back to Normal: HighMem is used up */
			__free_page(page);
			break;
		}
		pages[n++] = page;
	}
	return n;
}

static void fill(unsigned long n)
{
	for (unsigned long k = 0; k < n; k++) {
		u32 *v = kmap(pages[k]);
		u32 x = seed(page_to_pfn(pages[k]));

		for (unsigned int i = 0; i < WORDS; i++, x += STEP)
			v[i] = x;
		kunmap(pages[k]);
	}
}

static unsigned long verify(unsigned long n)
{
	unsigned long bad = 0;

	for (unsigned long k = 0; k < n; k++) {
		unsigned long pfn = page_to_pfn(pages[k]);
		u32 *v = kmap_atomic(pages[k]);
		u32 sum = 0;

		for (unsigned int i = 0; i < WORDS; i++)
			sum += v[i];
		if (sum != checksum_of(pfn) || v[0] != seed(pfn)) {
			if (bad < 5)
				pr_err("highmem_fill: pfn %#lx: checksum %08x, expected %08x\n",
				       pfn, sum, checksum_of(pfn));
			bad++;
		}
		kunmap_atomic(v);
	}
	return bad;
}

int main(void)
{
	unsigned long n = grab_highmem();
	unsigned long lo = ~0UL, hi = 0, bad;

	if (n == 0) {
		pr_err("highmem_fill: this machine has no HighMem\n");
		return 2;
	}
	for (unsigned long k = 0; k < n; k++) {
		unsigned long pfn = page_to_pfn(pages[k]);

		lo = pfn < lo ? pfn : lo;
		hi = pfn > hi ? pfn : hi;
	}
	fill(n);
	bad = verify(n);
	pr_info("highmem_fill: %lu HighMem pages (%lu MiB, pfn %#lx-%#lx) written through kmap(), "
		"%lu bad checksums through kmap_atomic()\n",
		n, n >> (20 - PAGE_SHIFT), lo, hi, bad);
	for (unsigned long k = 0; k < n; k++)
		__free_page(pages[k]);
	if (preempt_count() != 0 || MMEMU_PERCPU->kmap_atomic_idx != 0) {
		pr_err("highmem_fill: preempt_count %d, kmap_atomic depth %u after the run\n",
		       preempt_count(), (unsigned int)MMEMU_PERCPU->kmap_atomic_idx);
		return 1;
	}
	return bad ? 1 : 0;
}
