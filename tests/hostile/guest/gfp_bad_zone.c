/*
 * gfp_bad_zone.c - alloc_pages() with __GFP_DMA and __GFP_HIGHMEM together,
 * a zone combination gfp.h calls bad (GFP_ZONE_BAD).
 *
 * With CONFIG_DEBUG_VM (which mmemu reports as if set), gfp_zone()'s
 * VM_BUG_ON((GFP_ZONE_BAD >> bit) & 1): "kernel BUG at
 * include/linux/gfp.h:...!", and the BUG kills the task (134).
 */
#include <mmemu.h>

int main(void)
{
	alloc_pages(__GFP_DMA | __GFP_HIGHMEM, 0);
	printk("not reached\n");
	return 0;
}
