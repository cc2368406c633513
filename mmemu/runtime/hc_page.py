"""Page allocator hypercalls: the guest's alloc_pages() family.

The guest holds `struct page *` values (addresses inside mem_map) where the
host API uses pfns; this layer converts.  A pointer Linux would dereference
where nothing is mapped (NULL, the first page, a hole) is the oops of that
dereference (page->flags, the first field read); one that is readable but
not a struct page in mem_map is refused with mmemu's report (6.1 would take
whatever is there for a struct page).

alloc_pages and __free_pages are on the path of every guest page allocation
the guest's per-cpu fast path does not serve (guest/lib/page_alloc.c: an
order-0 page its pcp list has, or takes back, is no hypercall): they are
also registered in the mailbox form (the doorbell callback reads their
arguments here, without the generic thunk); the checks stay, the good case
is inline.
"""
from mmemu.mm import page_alloc
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE
from mmemu.runtime.abi import (
    HC_ALLOC_PAGES, HC_ALLOC_PAGES_EXACT, HC_FREE_PAGES, HC_FREE_PAGES_ADDR, HC_GET_FREE_PAGES,
    HC_NR_FREE_PAGES, HC_PAGE_ADDRESS,
)

NUMA_NO_NODE = 0xFFFFFFFF


def register(rt, table):
    """Serve the page allocator calls for runtime rt."""
    m = rt.machine
    mm = m.mm
    base = m.mem_map.virt
    nr = m.mem_map.nr_pages
    alloc = page_alloc.alloc_pages
    free = page_alloc._free_pages
    limit = nr * STRUCT_PAGE_SIZE                # struct page is 40 bytes: pfn = off // 40

    def to_pfn(page, what):
        off = page - base
        if 0 <= off < nr * STRUCT_PAGE_SIZE and off % STRUCT_PAGE_SIZE == 0:
            return off // STRUCT_PAGE_SIZE
        if mm.kernel_word(page) is None:         # PageHead(page): page->flags
            rt.reporter.die(page, what)
        rt.reporter.report(f"mmemu: {what}: 0x{page:08x} is not a struct page in mem_map "
                           f"(0x{base:08x}-0x{base + nr * STRUCT_PAGE_SIZE:08x}), called from "
                           f"{rt.guest_caller()}")
        return None

    def hc_alloc_pages(gfp, order, nid):
        pfn = alloc(mm, gfp, order, None if nid == NUMA_NO_NODE else nid)
        return 0 if pfn is None else base + pfn * STRUCT_PAGE_SIZE

    def hc_free_pages(page, order):
        pfn = to_pfn(page, "__free_pages")
        if pfn is not None:
            free(mm, pfn, order)
        return 0

    # The mailbox forms of the two above (HypercallTable.register's raw).
    args3, args2 = table.mailbox(3), table.mailbox(2)

    def alloc_pages_mailbox():
        gfp, order, nid = args3
        if nid != NUMA_NO_NODE:
            return hc_alloc_pages(gfp, order, nid)
        pfn = alloc(mm, gfp, order)
        return 0 if pfn is None else base + pfn * STRUCT_PAGE_SIZE

    def free_pages_mailbox():
        page, order = args2
        off = page - base
        pfn, misaligned = divmod(off, STRUCT_PAGE_SIZE)
        if misaligned or not 0 <= off < limit:         # NULL, or not a struct page
            return hc_free_pages(page, order)
        free(mm, pfn, order)
        return 0

    def hc_get_free_pages(gfp, order):
        va = page_alloc._get_free_pages(mm, gfp, order)
        return va or 0

    def hc_free_pages_addr(addr, order):
        if addr:
            page_alloc.free_pages(mm, addr, order)
        return 0

    def hc_page_address(page):
        pfn = to_pfn(page, "page_address")
        if pfn is None:
            return 0
        return page_alloc.page_address(mm, pfn) or 0

    def hc_alloc_pages_exact(size, gfp, nid):
        return page_alloc.alloc_pages_exact(mm, size, gfp, None if nid == NUMA_NO_NODE else nid)

    def hc_nr_free(zid):
        return page_alloc.nr_free_pages(mm, None if zid == NUMA_NO_NODE else zid)

    table.register(HC_ALLOC_PAGES, "alloc_pages", hc_alloc_pages, 3, raw=alloc_pages_mailbox)
    table.register(HC_FREE_PAGES, "__free_pages", hc_free_pages, 2, raw=free_pages_mailbox)
    table.register(HC_GET_FREE_PAGES, "__get_free_pages", hc_get_free_pages, 2)
    table.register(HC_FREE_PAGES_ADDR, "free_pages", hc_free_pages_addr, 2)
    table.register(HC_PAGE_ADDRESS, "page_address", hc_page_address, 1)
    table.register(HC_NR_FREE_PAGES, "nr_free_pages", hc_nr_free, 1)
    table.register(HC_ALLOC_PAGES_EXACT, "alloc_pages_exact", hc_alloc_pages_exact, 3)
