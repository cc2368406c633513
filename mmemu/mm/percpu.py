"""The per-cpu first chunk: setup_per_cpu_areas() for the one CPU.

Models what mm/percpu.c's pcpu_embed_first_chunk() and
pcpu_setup_first_chunk() take from memblock on the 686 kernel with one
possible CPU: the alloc info and the areas array (given back at the end),
the first chunk itself (33 pages above MAX_DMA_ADDRESS), and the chunk's
bookkeeping, in the order and sizes the reference kernel logs them
(docs/reference-6.1-686.md, section 4, #33-47), with its boot lines.

Differs: the chunk's static per-cpu variables are not modelled (mmemu's
per-cpu words live in the hypercall mailbox); its dynamic area holds the
zones' struct per_cpu_pages (pagesets_phys()), as alloc_percpu() places
them in 6.1.  The sizes
are the reference build's (static 103316 bytes, 31852 dynamic, no reserved
area, a 135168-byte unit): they come from its image, not from RAM.
"""
from collections.abc import Callable

from mmemu.layout import PAGE_SIZE
from mmemu.mm.memblock import SMP_CACHE_BYTES, Memblock

MAX_DMA_ADDRESS = 16 << 20
STATIC_SIZE = 103316
RESERVED_SIZE = 0
DYNAMIC_SIZE = 31852
# The 686-pae build's static per-cpu variables are larger (64-bit pte_t and
# phys_addr_t in some of them); the unit is the same 33 pages.
STATIC_SIZE_PAE, DYNAMIC_SIZE_PAE = 104276, 30892
UNIT_SIZE = 135168                  # 33 pages
NR_SLOTS_BYTES = 152                # pcpu_chunk_lists: (pcpu_nr_slots) list heads
FIRST_CHUNK_ALLOCS = (96, 1024, 1028, 256)   # struct pcpu_chunk, alloc_map, bound_map, md_blocks


def setup_per_cpu_areas(mb: Memblock, log: Callable[[str], object], pae: bool = False) -> int:
    """setup_per_cpu_areas(): the first chunk; returns its physical address."""
    static, dynamic = (STATIC_SIZE_PAE, DYNAMIC_SIZE_PAE) if pae else (STATIC_SIZE, DYNAMIC_SIZE)
    ai = mb.alloc_try_nid(PAGE_SIZE, PAGE_SIZE, caller="pcpu_build_alloc_info",
                          name="pcpu alloc info")
    areas = mb.alloc_try_nid(PAGE_SIZE, SMP_CACHE_BYTES, caller="pcpu_embed_first_chunk",
                             name="pcpu areas")
    chunk = mb.alloc_try_nid(UNIT_SIZE, PAGE_SIZE, min_addr=MAX_DMA_ADDRESS,
                             caller="pcpu_embed_first_chunk", name="percpu first chunk")
    used = static + RESERVED_SIZE + dynamic
    size_sum = -(-used // PAGE_SIZE) * PAGE_SIZE
    mb.free(chunk + size_sum, UNIT_SIZE - size_sum)          # the unused tail (none)
    log(f"percpu: Embedded {UNIT_SIZE // PAGE_SIZE} pages/cpu s{static} r{RESERVED_SIZE} "
        f"d{dynamic} u{UNIT_SIZE}")
    for _ in range(4):              # group_offsets, group_sizes, unit_map, unit_off
        mb.alloc_try_nid(4, caller="pcpu_setup_first_chunk", name="pcpu maps")
    log(f"pcpu-alloc: s{static} r{RESERVED_SIZE} d{dynamic} u{UNIT_SIZE} "
        f"alloc={UNIT_SIZE // PAGE_SIZE}*{PAGE_SIZE}")
    log("pcpu-alloc: [0] 0 ")
    mb.alloc_try_nid(NR_SLOTS_BYTES, caller="pcpu_setup_first_chunk", name="pcpu slots")
    for size in FIRST_CHUNK_ALLOCS:
        mb.alloc_try_nid(size, caller="pcpu_alloc_first_chunk", name="pcpu first chunk maps")
    mb.free(ai, PAGE_SIZE)
    mb.free(areas, PAGE_SIZE)
    return chunk


def pagesets_phys(chunk: int, pae: bool = False) -> int:
    """Where the zones' struct per_cpu_pages go: the first cache line of the
    first chunk's dynamic area (setup_zone_pageset()'s alloc_percpu())."""
    static = STATIC_SIZE_PAE if pae else STATIC_SIZE
    return chunk + -(-(static + RESERVED_SIZE) // SMP_CACHE_BYTES) * SMP_CACHE_BYTES
