"""The hypercall ABI between a guest program and mmemu (mirrored in
guest/include/mmemu/hypercall.h; change both together).

A hypercall is one ``in`` instruction: the guest writes up to seven 32-bit
arguments into the mailbox, then executes ``inl (%dx), %eax`` with
DX = HC_PORT_BASE + nr.  The host's IN-instruction hook takes the number from
the port, reads the arguments from guest RAM, runs the handler, and its return
value lands in EAX (Unicorn puts an IN hook's return value there without a
register write, which is what makes a hypercall cost about one hook).

Return convention: what the kernel function returns (a pointer, 0 for NULL,
a count); functions that return an errno return it negative.  An unknown
number or bad arguments return HC_EINVAL-style errors and print a warning.

The mailbox page is in the first MiB, which Linux 6.1 reserves at boot, so the
page allocator never hands it out.  Its second half carries boot information
(mem_map's address, pfn limits) the guest header reads without a hypercall.
"""

HC_PORT_BASE = 0x4D00            # 'M' << 8; ports 0x4D00-0x4DFF are mmemu's
HC_MAX = 256
HC_MAILBOX_PHYS = 0x1000
HC_MAILBOX_VIRT = 0xC0000000 + HC_MAILBOX_PHYS
HC_NARGS = 7                     # args[0..6] at mailbox words 0..6
HC_WORD_RET2 = 7                 # a second result, for calls that need one
HC_WORD_CTOR = 8                 # slab: pending constructor work (see slab docs)

# Boot information, at mailbox + BOOTINFO_OFFSET, one 32-bit word each.
BOOTINFO_OFFSET = 0x800
BOOTINFO_FIELDS = (
    "magic",          # BOOTINFO_MAGIC
    "mem_map",        # struct page *mem_map (virtual)
    "max_pfn",
    "max_low_pfn",
    "page_offset",
    "vmalloc_start",
    "vmalloc_end",
    "pkmap_base",
    "fixaddr_start",
    "fixaddr_top",
    "movable_is_highmem",   # 1 when ZONE_MOVABLE was carved out of HighMem
    "nr_nodes",
    "kmalloc_caches",       # slab: guest address of the kmalloc cache table (0 until slab is up)
    "percpu",               # address of this CPU's per-cpu block (PERCPU_* below)
    "mm_globals",           # node_data[], _totalram_pages, vm_zone_stat[] (mm/node_data.py)
    "kernel_pgd",           # swapper_pg_dir, the kernel page directory (virtual): init_mm.pgd
)

# Per-cpu data of the one CPU, at mailbox + PERCPU_OFFSET, one word each.
# The guest changes preempt_count and the irq flag itself, without a
# hypercall, as Linux's per-cpu __preempt_count; the host reads them when it
# must know whether the caller is in atomic context (might_sleep()).
PERCPU_OFFSET = 0xC00
PERCPU_FIELDS = (
    "preempt_count",
    "irqs_disabled",
    "kmap_atomic_idx",      # highmem: depth of the kmap_atomic/kmap_local stack
    "current_task",         # tasks: the running task's id (0 = the guest program)
    "numa_node",            # numa_node_id(): this CPU's node
)
BOOTINFO_MAGIC = 0x4D4D454D      # "MEMM"

# Hypercall numbers, by subsystem range.  Later subsystems add theirs in
# their range; the mechanism (runtime/hypercall.py) never changes for it.
HC_NOP = 0
HC_EXIT = 1                # (status)
HC_PRINTK = 2              # (buf, len)
HC_BUG = 3                 # (file, line, condition text)
HC_WARN = 4                # (file, line, condition text)
HC_CHECK = 5               # () run the consistency checkers now; 0 = consistent

HC_ALLOC_PAGES = 16        # (gfp, order, nid or -1) -> struct page *
HC_FREE_PAGES = 17         # (page, order)            __free_pages
HC_GET_FREE_PAGES = 18     # (gfp, order) -> address  __get_free_pages
HC_FREE_PAGES_ADDR = 19    # (addr, order)            free_pages
HC_PAGE_ADDRESS = 20       # (page) -> address or 0 (HighMem not kmapped)
HC_NR_FREE_PAGES = 21      # (zone id or -1) -> free pages in that zone / all
HC_ALLOC_PAGES_EXACT = 22  # (size, gfp, nid or -1) -> address  alloc_pages_exact(_nid)

HC_SLAB_BASE = 32          # 32..63: slab (mm/slab.py registers)
HC_VMALLOC_BASE = 64       # 64..79: vmalloc and vmap
HC_IO_BASE = 80            # 80..95: ioremap
HC_HIGHMEM_BASE = 96       # 96..111: kmap, kmap_atomic, fixmap
HC_SCHED_BASE = 112        # 112..127: preempt count, irqs, atomic context
HC_TASK_BASE = 128         # 128..143: user-mode tasks
HC_DEBUG_BASE = 144        # 144..159: fuzzing and test helpers
