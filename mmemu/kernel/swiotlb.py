"""The software IO TLB's bounce buffer, reserved at boot when RAM lies above 4 GiB.

Models the boot half of arch/x86/kernel/pci-dma.c:pci_iommu_alloc() and
kernel/dma/swiotlb.c:swiotlb_init_remap() of Linux 6.1, which mem_init()
runs before memblock_free_all(): when RAM reaches past 4 GiB
(max_possible_pfn > MAX_DMA32_PFN: only the 686-pae kernel, whose 64-bit
phys_addr_t reaches it), devices limited to 32-bit DMA need bounce
buffers, and swiotlb takes, from memblock, 64 MiB below 4 GiB for them
(memblock_alloc_low()), its slot array (16 bytes per 2 KiB slab) and one
struct io_tlb_area for the one CPU.  They stay reserved: 64.5 MiB of
lowmem less for the page allocator on a 686-pae machine with RAM above
4 GiB, as a real one shows.

Differs: no bounce buffering happens (mmemu has no DMA), and the boot log's
"software IO TLB: mapped ..." line is not printed.
"""
IO_TLB_SHIFT = 11                    # a slab: 2 KiB
IO_TLB_DEFAULT_SIZE = 64 << 20       # 64 MiB
SIZEOF_IO_TLB_SLOT = 16              # struct io_tlb_slot (32-bit)
SIZEOF_IO_TLB_AREA = 12              # struct io_tlb_area: used, index, spinlock
MAX_DMA32_PFN = 1 << (32 - 12)       # 4 GiB
ARCH_LOW_ADDRESS_LIMIT = 0xFFFFFFFF  # memblock_alloc_low(): below 4 GiB
PAGE_SIZE = 4096


def pci_iommu_alloc(mb, max_possible_pfn, nr_cpus=1):
    """pci_iommu_alloc() -> swiotlb_init(): the bounce buffer when RAM reaches past
    4 GiB (pci_swiotlb_detect()).  Returns the buffer's physical address, or None."""
    if max_possible_pfn <= MAX_DMA32_PFN:
        return None
    nslabs = IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT
    size = ((nslabs << IO_TLB_SHIFT) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    tlb = mb.alloc_try_nid(size, PAGE_SIZE, max_addr=ARCH_LOW_ADDRESS_LIMIT,
                           caller="swiotlb_init_remap", name="swiotlb buffer")
    slots = (nslabs * SIZEOF_IO_TLB_SLOT + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    mb.alloc_try_nid(slots, PAGE_SIZE, caller="swiotlb_init_remap", name="swiotlb slots")
    mb.alloc_try_nid(SIZEOF_IO_TLB_AREA * nr_cpus, caller="swiotlb_init_remap",
                     name="swiotlb areas")
    return tlb
