/*
 * 01_nodes.c - memory nodes: UMA, NUMA and pg_data_t.
 *
 * Every node of RAM has a pg_data_t (NODE_DATA(nid)) describing the page
 * frames it spans and holding its zones.  A PC is UMA: one node, node 0.
 * A NUMA machine has one per memory controller; alloc_pages_node() asks
 * for memory on a given node, alloc_pages() for memory on this CPU's node.
 *
 * Returns 0 when each page came from the node asked for.
 */
#include <mmemu.h>

int main(void)
{
	struct page *page;
	pg_data_t *pgdat;
	int nid, zid;

	pr_info("%d node(s) online; this CPU is on node %d\n",
		num_online_nodes(), numa_node_id());

	for_each_online_node(nid) {
		pgdat = NODE_DATA(nid);
		pr_info("node %d: pfn %#07lx-%#07lx, %lu pages present; zones:",
			pgdat->node_id, pgdat->node_start_pfn,
			pgdat->node_start_pfn + pgdat->node_spanned_pages,
			pgdat->node_present_pages);
		for (zid = 0; zid < pgdat->nr_zones; zid++)
			if (populated_zone(&pgdat->node_zones[zid]))
				pr_cont(" %s", pgdat->node_zones[zid].name);
		pr_cont("\n");
	}

	/* A page from each node: the page itself says where it lives. */
	for_each_online_node(nid) {
		page = alloc_pages_node(nid, GFP_KERNEL, 0);
		if (!page)
			return 1;
		pr_info("alloc_pages_node(%d, GFP_KERNEL, 0): pfn %#07lx, page_to_nid() %d\n",
			nid, page_to_pfn(page), page_to_nid(page));
		if (page_to_nid(page) != nid)
			return 2;
		__free_page(page);
	}
	return 0;
}
