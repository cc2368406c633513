"""arch/x86/fixmap.py: fix_to_virt/virt_to_fix, set_fixmap/clear_fixmap on
a booted pc-1g (checked with the walker and with Unicorn's MMU), the BUG of
a bad index, the region describer, and the guest header against layout.py."""
import re
from pathlib import Path

import pytest

from mmemu.arch.x86.fixmap import (
    FIXMAP_PAGE_RO, FixmapEntry, fix_to_virt, fixmap_name, virt_to_fix,
)
from mmemu.errors import UsageError
from mmemu.layout import (
    END_OF_FIXED, FIX_KMAP_BEGIN, FIX_KMAP_END, FIXADDR_TOP, FIXADDR_TOT_START, FIXMAP,
    KM_MAX_IDX, NR_CPUS, PKMAP_BASE,
)

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"
FIX_TEXT_POKE0 = FIXMAP["FIX_TEXT_POKE0"]


def boot(config="pc-1g"):
    from mmemu.machine import Machine
    return Machine(config, echo=False)


@pytest.fixture(scope="module")
def m(kernel_flavour):
    return boot()


def test_fix_to_virt_counts_down_from_fixaddr_top():
    assert fix_to_virt(0) == FIXADDR_TOP
    assert fix_to_virt(1) == FIXADDR_TOP - 4096
    slots = KM_MAX_IDX * NR_CPUS
    assert fix_to_virt(FIX_KMAP_BEGIN) - fix_to_virt(FIX_KMAP_END) == (slots - 1) * 4096
    assert fix_to_virt(END_OF_FIXED - 1) == FIXADDR_TOT_START + 4096


def test_fix_to_virt_refuses_an_index_past_the_end():
    with pytest.raises(UsageError, match="__end_of_fixed_addresses is 1537"):
        fix_to_virt(END_OF_FIXED)
    with pytest.raises(UsageError):
        fix_to_virt(-1)


def test_virt_to_fix_is_the_inverse_and_refuses_other_addresses():
    for idx in (1, FIX_KMAP_BEGIN, FIX_KMAP_END, END_OF_FIXED - 1):
        assert virt_to_fix(fix_to_virt(idx) + 0x123) == idx
    for va in (FIXADDR_TOP, PKMAP_BASE, FIXADDR_TOT_START - 1):
        with pytest.raises(UsageError):
            virt_to_fix(va)


def test_fixmap_name_follows_the_enum():
    assert fixmap_name(0) == "FIX_HOLE"
    assert fixmap_name(FIX_KMAP_BEGIN + 3) == "FIX_KMAP_BEGIN+3"
    assert fixmap_name(FIX_KMAP_END) == "FIX_KMAP_END"
    assert fixmap_name(FIX_TEXT_POKE0) == "FIX_TEXT_POKE0"
    assert fixmap_name(FIXMAP["FIX_IO_APIC_BASE_0"] + 5) == "FIX_IO_APIC_BASE_0+5"


def test_set_fixmap_maps_the_page_for_the_walker_and_the_mmu(m):
    va = fix_to_virt(FIX_TEXT_POKE0)
    assert m.engine.translate(va) is None
    assert m.fixmap.set_fixmap(FIX_TEXT_POKE0, 0x123456)
    assert m.pgtable.translate(va + 4) == 0x123004
    assert m.engine.translate(va + 4) == 0x123004
    m.write32(va + 8, 0xFEEDBEEF)
    assert m.pm.read32(0x123008) == 0xFEEDBEEF
    kernel = m.pgtable.flavour.PAGE_KERNEL           # 0x163, and NX on 686-pae
    assert m.fixmap.entries(FIX_TEXT_POKE0, FIX_TEXT_POKE0 + 1) == [
        FixmapEntry(FIX_TEXT_POKE0, "FIX_TEXT_POKE0", va, 0x123000 | kernel)]
    m.fixmap.clear_fixmap(FIX_TEXT_POKE0)


def test_set_fixmap_over_a_present_slot_flushes_the_tlb(m):
    va = fix_to_virt(FIX_TEXT_POKE0)
    m.fixmap.set_fixmap(FIX_TEXT_POKE0, 0x200000)
    assert m.engine.translate(va) == 0x200000
    m.fixmap.set_fixmap(FIX_TEXT_POKE0, 0x300000)
    assert m.engine.translate(va) == 0x300000
    m.fixmap.clear_fixmap(FIX_TEXT_POKE0)
    assert m.engine.translate(va) is None and m.pgtable.translate(va) is None


def test__set_fixmap_takes_the_flags(m):
    nx = m.pgtable.flavour._PAGE_NX
    m.fixmap._set_fixmap(FIX_TEXT_POKE0, 0x5000, m.fixmap.FIXMAP_PAGE_RO)
    assert m.fixmap.pte(FIX_TEXT_POKE0) == 0x5000 | FIXMAP_PAGE_RO | nx
    assert m.engine.translate(fix_to_virt(FIX_TEXT_POKE0), write=True) is None
    m.fixmap._set_fixmap(FIX_TEXT_POKE0, 0x5000, m.fixmap.FIXMAP_PAGE_NOCACHE)
    assert m.fixmap.pte(FIX_TEXT_POKE0) == 0x517B | nx
    m.fixmap.clear_fixmap(FIX_TEXT_POKE0)



def test_set_fixmap_past_the_end_is_the_bug_of_pgtable_c_661(m):
    mark = m.log.mark()
    assert m.fixmap.set_fixmap(END_OF_FIXED, 0x5000) is False
    text = m.log.text(mark)
    assert "kernel BUG at arch/x86/mm/pgtable.c:661!" in text
    assert "index 1537 >= __end_of_fixed_addresses" in text
    assert m.fixmap.entries() == []


def test_describe_names_the_slot(m):
    va = fix_to_virt(FIX_TEXT_POKE0)
    assert m.fixmap.describe(va) == (f"the address is in the fixmap, slot {FIX_TEXT_POKE0} "
                                     "(FIX_TEXT_POKE0), not mapped (set_fixmap() was not "
                                     "called for it, or clear_fixmap() was)")
    m.fixmap.set_fixmap(FIX_TEXT_POKE0, 0x9000)
    assert m.fixmap.describe(va + 5).endswith("mapped to phys 0x00009000")
    m.fixmap.clear_fixmap(FIX_TEXT_POKE0)
    assert m.fixmap.describe(m.layout.pkmap_base) is None
    assert m.fixmap.describe in m.runtime.region_describers


def test_the_pkmap_and_fixmap_tables_exist_from_boot(m):
    lay = m.layout
    for va in (lay.pkmap_base, lay.pkmap_base + (lay.last_pkmap - 1) * 4096,
               fix_to_virt(FIX_KMAP_BEGIN), fix_to_virt(FIX_KMAP_END), fix_to_virt(1)):
        assert m.pgtable.pte_slot(va) is not None


# -- the guest header against layout.py -------------------------------------------

def _defines(header):
    text = (GUEST / "include" / "mmemu" / header).read_text()
    found = re.findall(r"^#define\s+(\w+)[ \t]+(.*?)\s*(?:/\*.*)?$", text, re.M)
    return {name: value.strip() for name, value in found}


def test_highmem_header_constants_match_layout(m, tmp_path):
    """Compiled for the machine's flavour: the header's values are the host's."""
    from mmemu.runtime.build import build
    lay, fix = m.layout, m.fixmap
    checks = {"LAST_PKMAP": lay.last_pkmap, "PKMAP_BASE": lay.pkmap_base,
              "FIXADDR_TOP": FIXADDR_TOP, "KM_MAX_IDX": KM_MAX_IDX, "MMEMU_NR_CPUS": NR_CPUS,
              "FIXMAP_PAGE_NOCACHE": fix.FIXMAP_PAGE_NOCACHE,
              "FIXMAP_PAGE_NORMAL": fix.FIXMAP_PAGE_NORMAL}
    asserts = "\n".join(f"_Static_assert({name} == {value:#x}ULL, \"{name}\");"
                        for name, value in checks.items())
    src = tmp_path / "highmem_consts.c"
    src.write_text("#include <mmemu.h>\n#include <mmemu/highmem.h>\n" + asserts +
                   "\nint main(void) { return 0; }\n")
    build(src, pae=m.pgtable.pae)


def test_fixmap_enum_of_the_guest_header_matches_layout(tmp_path):
    """Compiled, not parsed: the compiler checks each enum value against layout.FIXMAP."""
    from mmemu.runtime.build import build
    asserts = "\n".join(f"_Static_assert({name} == {value}, \"{name}\");"
                        for name, value in FIXMAP.items())
    src = tmp_path / "fixmap_enum.c"
    src.write_text("#include <mmemu.h>\n#include <mmemu/highmem.h>\n" + asserts +
                   "\nint main(void) { return 0; }\n")
    build(src)


def test_hypercall_numbers_of_the_guest_headers_match_the_host():
    from mmemu.runtime import hc_highmem, hc_sched
    from mmemu.runtime.abi import HC_HIGHMEM_BASE, HC_SCHED_BASE
    for header, module, base in (("highmem.h", hc_highmem, HC_HIGHMEM_BASE),
                                 ("sched.h", hc_sched, HC_SCHED_BASE)):
        d = _defines(header)
        calls = {k: v for k, v in d.items() if k.startswith("HC_")}
        assert calls
        for name, value in calls.items():
            offset = int(re.match(r"\(HC_\w+_BASE \+ (\d+)\)", value).group(1))
            assert getattr(module, name) == base + offset, name
