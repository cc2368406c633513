"""The two i386 kernel flavours Debian builds from Linux 6.1: 686 and 686-pae.

Models what CONFIG_X86_PAE changes in a 32-bit x86 kernel, as one record
per flavour, so that every other module asks the machine's flavour instead
of hard-coding one:

* the page-table geometry (asm/pgtable-2level_types.h, pgtable-3level_types.h):
  two levels of 1024 four-byte entries, or a 4-entry PDPT over 512-entry
  PMDs and page tables of eight-byte entries (PGTABLE_LEVELS 3);
* _PAGE_NX (bit 63, PAE only) and the physical-address mask
  (asm/page_32_types.h: __PHYSICAL_MASK_SHIFT 32 or 52), so how far RAM may
  reach: max_arch_pfn 4 GiB or 64 GiB (HIGHMEM4G, HIGHMEM64G);
* the top of the address space (asm/pgtable_32_areas.h, asm/fixmap.h): the
  early-ioremap slots are aligned to a page table (PTRS_PER_PTE), and the
  CPU entry area, the LDT remap and PKMAP_BASE to a PMD, so VMALLOC_END and
  with it MAXMEM move with the flavour; LAST_PKMAP is 1024 or 512;
* the huge page size, which sets pageblock_order (HPAGE_PMD_ORDER: 10 or 9).

The numbers reproduce Debian's 6.1 686 and 686-pae kernels booted on QEMU
(see tests/test_flavour.py): on 686-pae lowmem ends at 0x36ffe000 (879 MiB),
PKMAP_BASE is 0xff000000 and the CPU entry area starts at 0xff400000.

Differs: the CPU entry area's size per CPU (43 pages) is reconstructed from
struct cpu_entry_area in a 686 build rather than computed from C struct
sizes; it is the same in both flavours.
"""
from dataclasses import dataclass, field

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_OFFSET = 0xC0000000
FIXADDR_TOP = 0xFFFFF000               # __FIXADDR_TOP without a hypervisor
GiB = 1 << 30

# Both Debian builds: NR_CPUS=32, 16 kmap_local slots per CPU, 64 IO-APICs.
NR_CPUS = 32
KM_MAX_IDX = 16
MAX_IO_APICS = 64
NR_FIX_BTMAPS = 64
FIX_BTMAPS_SLOTS = 8
TOTAL_FIX_BTMAPS = NR_FIX_BTMAPS * FIX_BTMAPS_SLOTS
CPU_ENTRY_AREA_PAGES = NR_CPUS * 43

# Entry bits both flavours share (asm/pgtable_types.h).
_PAGE_PRESENT = 0x001
_PAGE_RW = 0x002
_PAGE_USER = 0x004
_PAGE_PWT = 0x008
_PAGE_PCD = 0x010
_PAGE_ACCESSED = 0x020
_PAGE_DIRTY = 0x040
_PAGE_PSE = 0x080
_PAGE_GLOBAL = 0x100
_PAGE_BIT_NX = 63


def fixmap_indices(ptrs_per_pte: int) -> dict[str, int]:
    """enum fixed_addresses of arch/x86/include/asm/fixmap.h for both Debian builds.

    Only the boot-time slots depend on the flavour: they are moved up so that
    they do not cross a page table, whose size is PTRS_PER_PTE entries.
    """
    idx = {"FIX_HOLE": 0, "FIX_APIC_BASE": 1, "FIX_IO_APIC_BASE_0": 2}
    idx["FIX_IO_APIC_BASE_END"] = 2 + MAX_IO_APICS - 1
    idx["FIX_KMAP_BEGIN"] = idx["FIX_IO_APIC_BASE_END"] + 1
    idx["FIX_KMAP_END"] = idx["FIX_KMAP_BEGIN"] + KM_MAX_IDX * NR_CPUS - 1
    idx["FIX_PCIE_MCFG"] = idx["FIX_KMAP_END"] + 1
    idx["FIX_TEXT_POKE1"] = idx["FIX_PCIE_MCFG"] + 1
    idx["FIX_TEXT_POKE0"] = idx["FIX_TEXT_POKE1"] + 1
    end_perm = idx["FIX_TEXT_POKE0"] + 1
    idx["__end_of_permanent_fixed_addresses"] = end_perm
    if (end_perm ^ (end_perm + TOTAL_FIX_BTMAPS - 1)) & -ptrs_per_pte:
        btmap_end = end_perm + TOTAL_FIX_BTMAPS - (end_perm & (TOTAL_FIX_BTMAPS - 1))
    else:
        btmap_end = end_perm
    idx["FIX_BTMAP_END"] = btmap_end
    idx["FIX_BTMAP_BEGIN"] = btmap_end + TOTAL_FIX_BTMAPS - 1
    idx["FIX_TBOOT_BASE"] = idx["FIX_BTMAP_BEGIN"] + 1
    idx["__end_of_fixed_addresses"] = idx["FIX_TBOOT_BASE"] + 1
    return idx


@dataclass(frozen=True)
class Flavour:
    """One kernel flavour: what CONFIG_X86_PAE decides (see the module doc).

    The fields are the kernel's macros, lower-cased; the areas at the top of
    the address space are computed once from them.
    """

    name: str                    # Debian's flavour name: "686" or "686-pae"
    pae: bool                    # CONFIG_X86_PAE
    pgtable_levels: int          # CONFIG_PGTABLE_LEVELS
    pte_size: int                # sizeof(pte_t), also of pmd_t and pgd_t
    ptrs_per_pgd: int
    ptrs_per_pmd: int            # 1 without PAE: the pmd is folded into the pgd
    ptrs_per_pte: int
    pgdir_shift: int
    pmd_shift: int
    last_pkmap: int              # LAST_PKMAP
    physical_mask_shift: int     # __PHYSICAL_MASK_SHIFT
    max_arch_pfn: int            # 1 << (MAX_PHYSMEM_BITS - PAGE_SHIFT)
    hpage_pmd_order: int         # HPAGE_PMD_ORDER, which is pageblock_order here
    fixmap: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixmap", fixmap_indices(self.ptrs_per_pte))

    # -- page-table geometry --------------------------------------------
    @property
    def pte_shift(self) -> int:
        """log2(sizeof(pte_t)): a byte address >> pte_shift indexes an entry view."""
        return self.pte_size.bit_length() - 1

    @property
    def pte_typecode(self) -> str:
        """The array/memoryview typecode of one entry: "I" or "Q"."""
        return "Q" if self.pte_size == 8 else "I"

    @property
    def pmd_size(self) -> int:
        return 1 << self.pmd_shift

    @property
    def pmd_mask(self) -> int:
        return ~(self.pmd_size - 1) & 0xFFFFFFFF

    @property
    def pgdir_size(self) -> int:
        return 1 << self.pgdir_shift

    @property
    def kernel_pgd_boundary(self) -> int:
        """KERNEL_PGD_BOUNDARY: pgd_index(PAGE_OFFSET), 768 or 3."""
        return PAGE_OFFSET >> self.pgdir_shift

    @property
    def physical_mask(self) -> int:
        return (1 << self.physical_mask_shift) - 1

    @property
    def pte_pfn_mask(self) -> int:
        """PTE_PFN_MASK: the frame bits of an entry."""
        return self.physical_mask & ~(PAGE_SIZE - 1)

    @property
    def pte_flags_mask(self) -> int:
        """PTE_FLAGS_MASK: everything but the frame (NX and the low 12 bits on PAE)."""
        return ((1 << (8 * self.pte_size)) - 1) & ~self.pte_pfn_mask

    @property
    def pmd_large_mask(self) -> int:
        """The frame bits of a large-page pmd entry (a 4 MiB or 2 MiB page)."""
        return self.pte_pfn_mask & ~(self.pmd_size - 1)

    @property
    def max_phys(self) -> int:
        """The first physical address past what the flavour can map."""
        return self.max_arch_pfn << PAGE_SHIFT

    @property
    def pageblock_order(self) -> int:
        """pageblock_order with CONFIG_TRANSPARENT_HUGEPAGE: HPAGE_PMD_ORDER."""
        return self.hpage_pmd_order

    @property
    def hpage_size(self) -> int:
        """The huge page size /proc/meminfo reports (Hugepagesize)."""
        return self.pmd_size

    # -- entry bits and protections (asm/pgtable_types.h) ---------------
    @property
    def _PAGE_NX(self) -> int:
        """_PAGE_NX, as __supported_pte_mask keeps it on a CPU with NX."""
        return 1 << _PAGE_BIT_NX if self.pae else 0

    @property
    def PAGE_KERNEL(self) -> int:
        return 0x163 | self._PAGE_NX               # P RW A D G NX

    @property
    def PAGE_KERNEL_EXEC(self) -> int:
        return 0x163

    @property
    def PAGE_KERNEL_RO(self) -> int:
        return 0x161 | self._PAGE_NX

    @property
    def PAGE_KERNEL_RX(self) -> int:
        return 0x161

    @property
    def PAGE_KERNEL_NOCACHE(self) -> int:
        """PAGE_KERNEL_NOCACHE with UC_MINUS (PCD) and without PAT: ioremap()'s."""
        return 0x173 | self._PAGE_NX

    @property
    def PAGE_KERNEL_LARGE(self) -> int:
        return 0x1E3 | self._PAGE_NX

    @property
    def PAGE_KERNEL_LARGE_EXEC(self) -> int:
        return 0x1E3

    # -- the areas at the top of the address space ----------------------
    @property
    def end_of_permanent_fixed(self) -> int:
        return self.fixmap["__end_of_permanent_fixed_addresses"]

    @property
    def end_of_fixed(self) -> int:
        return self.fixmap["__end_of_fixed_addresses"]

    @property
    def fixaddr_start(self) -> int:
        return FIXADDR_TOP - (self.end_of_permanent_fixed << PAGE_SHIFT)

    @property
    def fixaddr_tot_start(self) -> int:
        return FIXADDR_TOP - (self.end_of_fixed << PAGE_SHIFT)

    @property
    def cpu_entry_area_base(self) -> int:
        return (self.fixaddr_tot_start - PAGE_SIZE * (CPU_ENTRY_AREA_PAGES + 1)) & self.pmd_mask

    @property
    def ldt_base_addr(self) -> int:
        return (self.cpu_entry_area_base - PAGE_SIZE) & self.pmd_mask

    @property
    def ldt_end_addr(self) -> int:
        return self.ldt_base_addr + self.pmd_size

    @property
    def pkmap_base(self) -> int:
        return (self.ldt_base_addr - PAGE_SIZE) & self.pmd_mask

    @property
    def vmalloc_end(self) -> int:
        return self.pkmap_base - 2 * PAGE_SIZE


FLAVOUR_686 = Flavour(
    name="686", pae=False, pgtable_levels=2, pte_size=4, ptrs_per_pgd=1024,
    ptrs_per_pmd=1, ptrs_per_pte=1024, pgdir_shift=22, pmd_shift=22, last_pkmap=1024,
    physical_mask_shift=32, max_arch_pfn=1 << 20, hpage_pmd_order=10)

FLAVOUR_686_PAE = Flavour(
    name="686-pae", pae=True, pgtable_levels=3, pte_size=8, ptrs_per_pgd=4,
    ptrs_per_pmd=512, ptrs_per_pte=512, pgdir_shift=30, pmd_shift=21, last_pkmap=512,
    physical_mask_shift=52, max_arch_pfn=1 << 24, hpage_pmd_order=9)

FLAVOURS = {f.name: f for f in (FLAVOUR_686, FLAVOUR_686_PAE)}


def flavour_of(cfg: object) -> Flavour:
    """The flavour a machine config boots: 686-pae with ``pae: true``, else 686."""
    return FLAVOUR_686_PAE if getattr(cfg, "pae", False) else FLAVOUR_686
