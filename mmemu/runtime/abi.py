"""The hypercall ABI between a guest program and mmemu: the one Python source
of its numbers (guest/include/mmemu/hypercall.h and the subsystem headers
mirror them; change both together: tests/test_build.py compiles a check
that they agree).

A hypercall is one 32-bit read: the guest writes up to seven 32-bit
arguments into the mailbox, then reads word nr of the doorbell page
(``movl HC_DOORBELL_VIRT + 4 * nr, %eax``).  The doorbell is an MMIO window
of mmemu's own; its read callback takes the number from the offset, reads
the arguments from guest RAM, runs the handler, and the handler's return
value is the value read, so it lands in the register without a register
write (which is what makes a hypercall cost about one Unicorn callback).

Why a read and not an ``in``: Unicorn calls only the first IN hook of a Uc,
and every interrupt hook, so an ``in`` or ``int`` hypercall would take a
host program's ports or interrupts from it (or lose to them); an MMIO
window's callback runs for its own range only.  Measured in bare Unicorn
2.1.4 (tools/bench.py has the figure): a ctypes-registered MMIO read through
paging costs about what an IN hook costs.  A call that stops the CPU (exit,
BUG, a switch to a user task) stops it on the read itself, at once: EIP
stays on that instruction and the register keeps its old value.

Return convention: what the kernel function returns (a pointer, 0 for NULL,
a count); functions that return an errno return it negative.  An unknown
number or bad arguments return HC_EINVAL-style errors and print a warning.

The mailbox and the doorbell pages are in the first MiB, which Linux 6.1
reserves at boot, so the page allocator never hands them out; both are in
the direct map.  The mailbox's second half carries boot information
(mem_map's address, pfn limits) the guest header reads without a hypercall.
"""

HC_MAX = 256
HC_MAILBOX_PHYS = 0x1000
HC_MAILBOX_VIRT = 0xC0000000 + HC_MAILBOX_PHYS
HC_DOORBELL_PHYS = 0x5000        # an MMIO page, not RAM: word nr is hypercall nr
HC_DOORBELL_VIRT = 0xC0000000 + HC_DOORBELL_PHYS
HC_DOORBELL_SIZE = 0x1000
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
    "fast_free_bits",       # mmemu's bitmap of the pfns an order-0 free may give the pcp
                            # lists without a hypercall (mm/page.py), virtual
    "fast_free_pfns",       # the pfns it covers, at most max_pfn (0: none, as with CONFIG_DEBUG_VM)
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

# Hypercall numbers, by subsystem range.  A subsystem adds its numbers here,
# in its range, and registers them in its runtime/hc_<name>.py; the mechanism
# (runtime/hypercall.py) never changes for it.  The debug range belongs to
# the test drivers (mmemu/harness/ and their guest programs).
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

# slab (guest/include/mmemu/slab.h; served by runtime/hc_slab.py)
HC_KMEM_CACHE_CREATE = HC_SLAB_BASE + 0    # (name, size, align, flags, ctor) -> s
HC_KMEM_CACHE_DESTROY = HC_SLAB_BASE + 1   # (s)
HC_KMEM_CACHE_SHRINK = HC_SLAB_BASE + 2    # (s) -> int
HC_SLAB_ALLOC = HC_SLAB_BASE + 3           # (s, gfp) -> object; ctor work in HC_WORD_CTOR
HC_SLAB_FREE = HC_SLAB_BASE + 4            # (s or 0 for kfree, x)
HC_KMALLOC_LARGE = HC_SLAB_BASE + 5        # (size, gfp) -> address
HC_KSIZE = HC_SLAB_BASE + 6                # (x) -> size
HC_KMEM_CACHE_VALIDATE = HC_SLAB_BASE + 7  # (s) -> errors found
HC_KMALLOC = HC_SLAB_BASE + 8              # (size, gfp) -> address: kmalloc() whole on the host
HC_KFREE = HC_SLAB_BASE + 9                # (x): kfree() whole on the host
HC_SLAB_ALLOC_NODE = HC_SLAB_BASE + 10     # (s, gfp, node) -> object: __slab_alloc on a node
HC_KMALLOC_LARGE_NODE = HC_SLAB_BASE + 11  # (size, gfp, node) -> address

# vmalloc (guest/include/mmemu/vmalloc.h; runtime/hc_vmalloc.py)
HC_VMALLOC = HC_VMALLOC_BASE + 0           # (size, ip) -> address
HC_VZALLOC = HC_VMALLOC_BASE + 1           # (size, ip) -> address
HC___VMALLOC = HC_VMALLOC_BASE + 2         # (size, gfp, ip) -> address
HC_VFREE = HC_VMALLOC_BASE + 3             # (addr, ip) -> pages to flush
HC_VMAP = HC_VMALLOC_BASE + 4              # (pages, count, flags, prot, ip) -> address
HC_VUNMAP = HC_VMALLOC_BASE + 5            # (addr, ip) -> pages to flush
HC_VMALLOC_TO_PAGE = HC_VMALLOC_BASE + 6   # (addr) -> struct page *
HC_VMALLOC_NODE = HC_VMALLOC_BASE + 7      # (size, nid, ip) -> address
HC_VMALLOC_NR_PAGES = HC_VMALLOC_BASE + 8  # () -> pages vmalloc holds
HC___VMALLOC_NODE = HC_VMALLOC_BASE + 9    # (size, align, gfp, vm_flags, nid, ip) -> address

# ioremap (guest/include/mmemu/io.h; runtime/hc_io.py)
HC_IOREMAP = HC_IO_BASE + 0                # (phys, size, ip) -> address
HC_IOUNMAP = HC_IO_BASE + 1                # (addr, ip) -> pages to flush
HC_IOREMAP_PCM = HC_IO_BASE + 2            # (phys, size, page_cache_mode, ip) -> address

# kmap and the fixmap (guest/include/mmemu/highmem.h; runtime/hc_highmem.py)
HC_KMAP = HC_HIGHMEM_BASE + 0              # (page) -> address or 0   kmap() past might_sleep()
HC_KUNMAP = HC_HIGHMEM_BASE + 1            # (page)                   kunmap() past might_sleep()
HC_KMAP_ATOMIC = HC_HIGHMEM_BASE + 2       # (page) -> address        kmap_atomic()
HC_KUNMAP_ATOMIC = HC_HIGHMEM_BASE + 3     # (address)                kunmap_atomic()
HC_KMAP_LOCAL_PAGE = HC_HIGHMEM_BASE + 4   # (page) -> address        kmap_local_page()
HC_KUNMAP_LOCAL = HC_HIGHMEM_BASE + 5      # (address)                kunmap_local()
HC_SET_FIXMAP = HC_HIGHMEM_BASE + 6        # (idx, phys, flags[, phys_hi, flags_hi]) -> 0 / -EINVAL
#                                            __set_fixmap(): the high words on 686-pae
HC_CLEAR_FIXMAP = HC_HIGHMEM_BASE + 7      # (idx) -> 0 / -EINVAL     clear_fixmap()
HC_KMAP_FLUSH_UNUSED = HC_HIGHMEM_BASE + 8  # ()                      kmap_flush_unused()
HC_KMAP_LOCAL_PFN = HC_HIGHMEM_BASE + 9    # (pfn) -> address         kmap_local_pfn()
HC_KMAP_ATOMIC_PFN = HC_HIGHMEM_BASE + 10  # (pfn) -> address         kmap_atomic_pfn()

# atomic context (guest/include/mmemu/sched.h; runtime/hc_sched.py)
HC_MIGHT_SLEEP = HC_SCHED_BASE + 0         # (file, line)   __might_sleep()
HC_PAGEFAULT_DISABLE = HC_SCHED_BASE + 1   # ()             pagefault_disable()
HC_PAGEFAULT_ENABLE = HC_SCHED_BASE + 2    # ()             pagefault_enable()
HC_PREEMPT_COUNT_SUB = HC_SCHED_BASE + 3   # (val)          preempt_count_sub() to report
HC_SPIN_BUG = HC_SCHED_BASE + 4            # (lock, kind)   spin_bug(): 1 recursion, 2 unlocked
HC_SCHEDULE = HC_SCHED_BASE + 5            # () -> 1 if it reported   schedule()
HC_PAGEFAULT_DISABLED = HC_SCHED_BASE + 6  # () -> depth    pagefault_disabled()

# user-mode tasks (guest/include/mmemu/task.h; runtime/task.py)
HC_RUN_USER = HC_TASK_BASE + 0             # (name, entry, iret) -> status
HC_SET_SYSCALL = HC_TASK_BASE + 1          # (handler, trampoline)
HC_SYSCALL_RETURN = HC_TASK_BASE + 2       # (result): back to the task
