/*
 * mmzone.c - walking nodes and zones, and the counters read from them
 * (mm/mmzone.c, mm/highmem.c, mm/page_alloc.c's si_meminfo()), over the
 * pg_data_t and struct zone the host keeps in guest memory (mmemu/mmzone.h).
 */
#include <mmemu.h>

/* mm/page_alloc.c's migratetype_names[], as /proc/pagetypeinfo prints them. */
const char *const migratetype_names[MIGRATE_TYPES] = {
	"Unmovable",
	"Movable",
	"Reclaimable",
	"HighAtomic",
	"Isolate",
};

struct pglist_data * __sdk first_online_pgdat(void)
{
	return NODE_DATA(first_online_node);
}

struct pglist_data * __sdk next_online_pgdat(struct pglist_data *pgdat)
{
	int nid = next_online_node(pgdat->node_id);

	if (nid == MAX_NUMNODES)
		return NULL;
	return NODE_DATA(nid);
}

/* next_zone(): the next zone of this node, else the first of the next online node. */
struct zone * __sdk next_zone(struct zone *zone)
{
	pg_data_t *pgdat = zone->zone_pgdat;

	if (zone < pgdat->node_zones + MAX_NR_ZONES - 1)
		return zone + 1;
	pgdat = next_online_pgdat(pgdat);
	return pgdat ? pgdat->node_zones : NULL;
}

unsigned long __sdk zone_free_pages(int zid)
{
	unsigned long pages = 0;
	struct zone *zone;

	for_each_populated_zone(zone) {
		if (zone_idx(zone) == zid)
			pages += zone_page_state(zone, NR_FREE_PAGES);
	}
	return pages;
}

/* __nr_free_highpages() */
unsigned long __sdk nr_free_highpages(void)
{
	unsigned long pages = 0;
	struct zone *zone;

	for_each_populated_zone(zone) {
		if (is_highmem(zone))
			pages += zone_page_state(zone, NR_FREE_PAGES);
	}
	return pages;
}

void __sdk si_meminfo(struct sysinfo *val)
{
	val->totalram = totalram_pages();
	val->sharedram = 0;		/* global_node_page_state(NR_SHMEM) */
	val->freeram = global_zone_page_state(NR_FREE_PAGES);
	val->bufferram = 0;		/* nr_blockdev_pages() */
	val->totalhigh = totalhigh_pages();
	val->freehigh = nr_free_highpages();
	val->mem_unit = PAGE_SIZE;
}
