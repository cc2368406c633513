/*
 * slab_kmalloc.c - a tour of kmalloc(), ksize() and kfree().
 *
 * Shows: every size lands in its kmalloc class (65 bytes come from
 * kmalloc-96, so ksize() says 96); kmalloc(0) is ZERO_SIZE_PTR and kfree()
 * takes it and NULL; sizes above 8 KiB are compound pages from the buddy
 * allocator (ksize() is the block size); above KMALLOC_MAX_SIZE (4 MiB)
 * kmalloc fails; kmalloc(GFP_DMA) memory sits in ZONE_DMA.
 *
 * Returns 0 when every check holds, else the number of the failed check.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

static const struct { size_t size, ksize; } classes[] = {
	{1, 8}, {8, 8}, {9, 16}, {17, 32}, {33, 64}, {65, 96}, {96, 96},
	{97, 128}, {129, 192}, {193, 256}, {257, 512}, {513, 1024},
	{1025, 2048}, {2049, 4096}, {4097, 8192}, {8192, 8192},
};

int main(void)
{
	unsigned int i;
	char *p, *big;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		p = kmalloc(classes[i].size, GFP_KERNEL);
		if (!p || ksize(p) != classes[i].ksize) {
			pr_err("kmalloc(%zu): ksize %zu, want %zu\n", classes[i].size,
			       p ? ksize(p) : 0, classes[i].ksize);
			return 1;
		}
		memset(p, 0x5a, classes[i].size);
		kfree(p);
	}
	pr_info("kmalloc classes: 8 16 32 64 96 128 192 256 512 1k 2k 4k 8k ok\n");

	if (kmalloc(0, GFP_KERNEL) != ZERO_SIZE_PTR)
		return 2;
	kfree(NULL);
	kfree(ZERO_SIZE_PTR);

	big = kmalloc(100000, GFP_KERNEL);	/* order 5: 128 KiB of pages */
	if (!big || ksize(big) != 131072 || !PageHead(virt_to_page(big)))
		return 3;
	big[99999] = 1;
	kfree(big);
	pr_info("kmalloc(100000) -> compound order-5 block, freed to the buddy allocator\n");

	if (kmalloc(KMALLOC_MAX_SIZE + 1, GFP_KERNEL | __GFP_NOWARN))
		return 4;

	p = kmalloc(200, GFP_KERNEL | GFP_DMA);
	if (!p || page_zonenum(virt_to_page(p)) != ZONE_DMA)
		return 5;
	kfree(p);
	pr_info("kmalloc(200, GFP_DMA) came from dma-kmalloc-256 in ZONE_DMA\n");
	return mmemu_check() ? 6 : 0;
}
