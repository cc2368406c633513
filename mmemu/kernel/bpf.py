"""The boot's one BPF program: the PTP classifier, in vmalloc memory, locked read-only.

Models what the 686 kernel's boot does with BPF that concerns memory:
net/core/ptp_classifier.c:ptp_classifier_init() (from sock_init(), a
core_initcall, on every boot: CONFIG_NET_PTP_CLASSIFY) creates a classic
BPF filter with bpf_prog_create(); kernel/bpf/core.c:bpf_prog_alloc_no_stats()
puts the program in __vmalloc(round_up(size, PAGE_SIZE), GFP_KERNEL |
__GFP_ZERO) memory, one page here; the 686 kernel does not JIT it
(CONFIG_BPF_JIT without CONFIG_BPF_JIT_DEFAULT_ON: bpf_jit_enable is 0), so
bpf_prog_select_runtime() ends in bpf_prog_lock_ro(): set_memory_ro() of
the program's pages, which on x86 also makes their direct-map alias
read-only (cpa_process_alias()).

That page matters to the memory map: it is the boot's only lowmem page
locked read-only outside the kernel image, so on a machine without HighMem
(vmalloc takes __GFP_HIGHMEM pages when it can) it splits the 4 MiB
direct-map page that holds it: the pageblock the boot's first unmovable
allocation stole (mm/fallback.py), DirectMap4k 4 MiB more
(docs/reference-6.1-686.md, section 10).

Differs: the program's contents (struct bpf_prog, the filter translated to
eBPF) are not written, only its zeroed page; its bpf_prog_aux and per-cpu
counters (kzalloc, alloc_percpu) are not allocated.
"""
from mmemu.arch.x86.init import set_memory_ro
from mmemu.layout import PAGE_SIZE
from mmemu.mm.gfp import GFP_KERNEL, __GFP_ZERO
from mmemu.mm.vmalloc import VM_FLUSH_RESET_PERMS

# What /proc/vmallocinfo names the program's area by on the reference kernel.
BPF_PROG_ALLOC_CALLER = "bpf_prog_alloc_no_stats+0x2b/0x1b0"
PTP_FILTER_PAGES = 1            # the PTP classifier's eBPF translation fits a page


def bpf_prog_alloc(vmalloc, size):
    """bpf_prog_alloc(): the program's memory, __vmalloc(GFP_KERNEL | __GFP_ZERO);
    its address, or None."""
    size = -(-size // PAGE_SIZE) * PAGE_SIZE
    return vmalloc._vmalloc(size, GFP_KERNEL | __GFP_ZERO, BPF_PROG_ALLOC_CALLER)


def bpf_prog_lock_ro(vmalloc, pgtable, fp, pages, alloc_page, max_low_pfn):
    """bpf_prog_lock_ro() of a program the interpreter runs:
    set_vm_flush_reset_perms() (its area may be read-only from now on), then
    set_memory_ro() of its pages, their direct-map alias included."""
    vmalloc.find_vm_area(fp).flags |= VM_FLUSH_RESET_PERMS
    set_memory_ro(pgtable, fp, fp + pages * PAGE_SIZE, alloc_page, max_low_pfn)


def ptp_classifier_init(vmalloc, pgtable, alloc_page, max_low_pfn):
    """ptp_classifier_init(): the PTP classifier's program, allocated and locked
    read-only (BUG_ON() failure: the kernel would not boot); its address."""
    fp = bpf_prog_alloc(vmalloc, PTP_FILTER_PAGES * PAGE_SIZE)
    if fp is not None:
        bpf_prog_lock_ro(vmalloc, pgtable, fp, PTP_FILTER_PAGES, alloc_page, max_low_pfn)
    return fp
