"""The Unicorn engine: RAM shared with PhysMem, paging, TLB flushes, and
repeated faults (the double-fault trap of Unicorn issue #1883)."""
from mmemu.arch.x86.pgtable import PageTable, __PAGE_KERNEL, _KERNPG_TABLE, mk_pte
from mmemu.engine import Engine, X86_TRAP_PF, probe_cpu_state_offsets
from mmemu.physmem import PhysMem
import pytest

pytestmark = pytest.mark.flavours

RAM = 8 << 20
PGD, PT, CODE, DATA = 0x1000, 0x2000, 0x100000, 0x200000
VA_CODE, VA_DATA = 0xC0100000, 0xC0200000


def small_machine():
    """8 MiB of RAM, code and one data page mapped through real tables."""
    pm = PhysMem(RAM)
    eng = Engine()
    eng.map_ram(pm, [(0, RAM)])
    pt = PageTable(pm, PGD, None, eng.flush_tlb)
    pm.write32(PGD + (VA_CODE >> 22) * 4, PT | _KERNPG_TABLE)
    pm.write32(PT + ((VA_CODE >> 12) & 0x3FF) * 4, mk_pte(CODE >> 12, __PAGE_KERNEL))
    pm.write32(PT + ((VA_DATA >> 12) & 0x3FF) * 4, mk_pte(DATA >> 12, __PAGE_KERNEL))
    eng.enable_paging(PGD)
    return pm, eng, pt


def test_probe_finds_two_distinct_fields():
    old, err = probe_cpu_state_offsets()
    assert old != err and old % 4 == 0 and err % 4 == 0


def test_guest_write_lands_in_physmem_and_walker_agrees_with_mmu():
    pm, eng, pt = small_machine()
    # mov dword [VA_DATA+8], 0x11223344 ; hlt
    code = bytes.fromhex("c705") + (VA_DATA + 8).to_bytes(4, "little") + \
        (0x11223344).to_bytes(4, "little") + b"\xf4"
    pm.write(CODE, code)
    err, _ = eng.run(VA_CODE, VA_CODE + len(code))
    assert err is None
    assert pm.read32(DATA + 8) == 0x11223344
    for va in (VA_CODE, VA_DATA + 0x123, 0xC0300000, 0x0, 0xFFFFF000):
        assert pt.translate(va) == eng.translate(va)


def test_many_faults_each_reported_as_page_faults():
    pm, eng, _ = small_machine()
    # ten times: mov eax, [ecx] with ecx unmapped; the handler skips the insn (2 bytes)
    body = b"\x8b\x01" * 10 + b"\xf4"
    pm.write(CODE, body)
    seen = []

    def on_exc(trapnr, error_code):
        seen.append((trapnr, error_code))
        eng.set_reg("eip", eng.reg("eip") + 2)
    eng.hook_exceptions(on_exc)
    eng.set_reg("ecx", 0x1000)
    err, _ = eng.run(VA_CODE, VA_CODE + len(body))
    assert err is None
    assert seen == [(X86_TRAP_PF, 0)] * 10       # read, not-present, supervisor


def test_stale_translation_until_flush():
    pm, eng, pt = small_machine()
    # mov eax, [VA_DATA] ; hlt
    code = b"\xa1" + VA_DATA.to_bytes(4, "little") + b"\xf4"
    pm.write(CODE, code)
    pm.write32(DATA, 1)
    pm.write32(DATA + 0x1000, 2)
    eng.run(VA_CODE, VA_CODE + len(code))
    assert eng.reg("eax") == 1
    slot = pt.pte_slot(VA_DATA)
    pm.write32(slot, mk_pte((DATA + 0x1000) >> 12, __PAGE_KERNEL))
    eng.flush_tlb()
    eng.run(VA_CODE, VA_CODE + len(code))
    assert eng.reg("eax") == 2


def test_two_engines_do_not_interfere():
    pm1, e1, _ = small_machine()
    pm2, e2, _ = small_machine()
    pm1.write32(DATA, 7)
    pm2.write32(DATA, 9)
    code = b"\xa1" + VA_DATA.to_bytes(4, "little") + b"\xf4"
    pm1.write(CODE, code)
    pm2.write(CODE, code)
    e1.run(VA_CODE, VA_CODE + len(code))
    e2.run(VA_CODE, VA_CODE + len(code))
    assert (e1.reg("eax"), e2.reg("eax")) == (7, 9)
