"""What only the 686-pae kernel has: RAM above 4 GiB, NX, 2 MiB pages, the
PDPT.  Every test here boots a config that names the 686-pae kernel; the
rest of the suite runs on both flavours (tests/conftest.py)."""
import re

import pytest

from mmemu.arch.x86.fixmap import fix_to_virt
from mmemu.layout import FIXMAP
from mmemu.machine import Machine

FIX_TEXT_POKE0 = FIXMAP["FIX_TEXT_POKE0"]


@pytest.fixture(scope="module")
def m8():
    return Machine("qemu-pc-8g-pae", echo=False)


def test_set_fixmap_above_4g_reaches_ram_there(m8):
    """A fixmap slot maps a frame above 4 GiB: the walker, Unicorn's MMU and
    a read through the slot agree."""
    phys = 0x1_2345_6000
    m8.pm.write32(phys + 4, 0xC0FFEE)
    assert m8.fixmap.set_fixmap(FIX_TEXT_POKE0, phys)
    va = fix_to_virt(FIX_TEXT_POKE0)
    assert m8.pgtable.translate(va + 4) == phys + 4
    assert m8.engine.translate(va + 4) == phys + 4
    assert m8.read32(va + 4) == 0xC0FFEE
    assert m8.fixmap.entries(FIX_TEXT_POKE0, FIX_TEXT_POKE0 + 1)[0].phys == phys
    m8.fixmap.clear_fixmap(FIX_TEXT_POKE0)


def test_nx_exec_oopses_as_6_1_does():
    """An instruction fetch from a kmalloc'd buffer: NX-protected on 686-pae."""
    m = Machine("pc-1g-pae", echo=False)
    r = m.run("guest/tests/nx_exec.c")
    assert r.reason == "oops" and r.status == 139
    report = r.reports[0].splitlines()
    buf = int(r.console.split(" at ")[1], 16)
    assert report[:4] == [
        "kernel tried to execute NX-protected page - exploit attempt? (uid: 0)",
        f"BUG: unable to handle page fault for address: {buf:08x}",
        "#PF: supervisor instruction fetch in kernel mode",
        "#PF: error_code(0x0011) - permissions violation"]
    # dump_pagetable() on PAE: the PDPT entry, then the pmd: a 2 MiB page (no pte
    # below it) or a page table and the pte; the leaf has NX (bit 63)
    assert re.fullmatch(r"\*pdpt = [0-9a-f]{16} \*pde = (8[0-9a-f]{12}1e3|"
                        r"0[0-9a-f]{12}06[37] \*pte = 8[0-9a-f]{12}163) ", report[4]), report[4]
    assert "EIP: 0x%08x" % buf in r.reports[0]


def test_nx_exec_runs_on_686_which_has_no_nx():
    m = Machine("pc-1g", echo=False)
    r = m.run("guest/tests/nx_exec.c")
    assert r.status == 7 and "no NX on this kernel" in r.console


def test_highmem_above_4g_through_kmap_kmap_local_and_the_fixmap():
    r = Machine("qemu-pc-8g-pae", echo=False).run("guest/tests/pae_above_4g.c")
    assert r.status == 0, r.console + "".join(r.reports)
    phys = int(r.console.split("phys ")[1].split()[0], 16)
    assert phys >= 1 << 32                          # the page the program wrote is above 4 GiB


def test_a_program_built_for_686_is_refused_on_686_pae(tmp_path):
    from mmemu.errors import LoaderError
    from mmemu.runtime.build import build
    m = Machine("pc-1g-pae", echo=False)
    elf = build("guest/examples/hello.c", image=m.kernel_image, pae=False)
    with pytest.raises(LoaderError, match="built for the 686 kernel, but this machine "
                                          r"\(pc-1g-pae\) runs 686-pae"):
        m.load(str(elf))


def test_boot_16g_maps_ram_above_4g_lazily():
    """16 GiB of guest RAM: the host buffer is a lazy mapping, mem_map (lowmem)
    the only large thing written at boot; HighMem reaches 0x43fffffff."""
    m = Machine("qemu-pc-16g-pae", echo=False)
    assert m.pm.size == 0x440000000
    assert m.layout.max_pfn == 0x440000
    high = m.mm.zones[2]
    assert high.zone_end_pfn == 0x440000
    assert m.engine.translate(0xC0000000) == 0
    pfn = m.alloc_pages(0x100CCA, 0)                  # GFP_HIGHUSER_MOVABLE
    assert pfn is not None and m.is_highmem_pfn(pfn)
