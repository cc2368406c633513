"""From a CPU exception to the kernel's report: what faulted, where, and why.

Models the information arch/x86/mm/fault.c prints (page_fault_oops,
show_fault_oops, dump_pagetable) and adds what a learner needs: which
region of the kernel's address space the address is in.
"""
from mmemu.arch.x86.fault import X86_PF_INSTR, dump_pagetable_line, nx_line
from mmemu.arch.x86.pgtable import PG_LEVEL_4K, PG_LEVEL_2M, _PAGE_PRESENT
from mmemu.engine import X86_TRAP_DE, X86_TRAP_GP, X86_TRAP_PF, X86_TRAP_UD
from mmemu.layout import FIXADDR_TOP, PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, virt_to_fix

TRAP_NAMES = {X86_TRAP_DE: "divide error", X86_TRAP_UD: "invalid opcode",
              X86_TRAP_GP: "general protection fault", 3: "int3", 1: "debug"}


def describe_address(machine, addr, describers=()):
    """Which part of the 3G/1G address space addr is in, in words."""
    lay = machine.layout
    for fn in describers:
        text = fn(addr)
        if text:
            return text
    if addr < PAGE_SIZE:
        return "the address is in the NULL page (a NULL pointer dereference)"
    if addr < PAGE_OFFSET:
        return ("the address is in user space (below PAGE_OFFSET 0xc0000000); "
                "nothing is mapped there for kernel code")
    if addr < lay.high_memory:
        return (f"the address is in the direct map of lowmem (physical "
                f"0x{addr - PAGE_OFFSET:08x}, pfn {(addr - PAGE_OFFSET) >> PAGE_SHIFT})")
    if addr < lay.vmalloc_start:
        return ("the address is in the hole between high_memory and VMALLOC_START "
                "(VMALLOC_OFFSET, there to catch overruns of the direct map)")
    if addr < lay.vmalloc_end:
        return "the address is in the vmalloc area, outside every vmalloc'd area"
    if addr < lay.pkmap_base:
        return "the address is in the gap between vmalloc() End and the pkmap area"
    if addr < lay.pkmap_end:
        slot = (addr - lay.pkmap_base) >> PAGE_SHIFT
        return f"the address is in the persistent kmap area, slot {slot} (not mapped now)"
    if lay.ldt_base <= addr < lay.ldt_end:
        return "the address is in the LDT remap area"
    if lay.cpu_entry_area_base <= addr < lay.fixaddr_tot_start:
        return "the address is in the CPU entry area (not modelled: nothing is mapped)"
    if lay.fixaddr_tot_start <= addr < FIXADDR_TOP:
        return f"the address is in the fixmap, slot {virt_to_fix(addr)} (not mapped now)"
    return "the address is in an unmapped hole of the kernel's address space"


def current_pgd(machine):
    """The page directory CR3 points at (a task's, or swapper_pg_dir)."""
    cr3 = machine.engine.reg("cr3")
    return cr3 & ~0x1F if machine.pgtable.pae else cr3 & ~0xFFF


def pagetable_lines(machine, addr):
    """dump_pagetable() on 32-bit: "*pde = xxxxxxxx *pte = xxxxxxxx".

    On PAE: "*pdpt = %016Lx *pde = %016Lx *pte = %016Lx ", stopping after
    an absent PDPT entry, and after a pmd entry that is absent or a large page.
    """
    pt = machine.pgtable
    w = pt.walk(addr, current_pgd(machine))
    if not pt.pae:
        return [dump_pagetable_line(w.pde, w.pte)]
    pde = w.pde if w.pdpte & _PAGE_PRESENT and w.pde_addr is not None else None
    return [dump_pagetable_line(pde, w.pte, pdpte=w.pdpte)]


def nx_lines(machine, addr, error_code):
    """show_fault_oops()'s first line for an instruction fetch from a present NX page.

    "kernel tried to execute NX-protected page - exploit attempt? (uid: 0)":
    the address's PTE (or large pmd) is present and has _PAGE_NX.  Never on
    686, whose entries have no NX bit.
    """
    pt = machine.pgtable
    if not error_code & X86_PF_INSTR or not pt.pae:
        return []
    w = pt.walk(addr, current_pgd(machine))
    entry = w.pte if w.level == PG_LEVEL_4K else w.pde if w.level == PG_LEVEL_2M else None
    if entry is None or not entry & pt.flavour._PAGE_NX:
        return []
    return [nx_line(uid=0)]


def code_bytes(rt, eip, before=43, after=21):
    """Bytes around EIP that are readable: (start address, bytes)."""
    m = rt.machine
    start = eip - before
    out = bytearray()
    first = None
    for va in range(start, eip + after):
        pa = m.virt_to_phys(va)
        if pa is None or pa >= m.pm.size:
            if first is not None and va >= eip:
                break
            continue
        if first is None:
            first = va
        out.append(m.pm.u8[pa])
    return (first if first is not None else eip), bytes(out)


def report_exception(rt, trapnr, error_code):
    """The oops for one exception of the running guest (the reporter prints it
    and ends the run)."""
    m = rt.machine
    regs = m.engine.regs()
    eip = regs["eip"]
    start, code = code_bytes(rt, eip)
    if trapnr == X86_TRAP_PF:
        addr = regs["cr2"]
        kind = "page fault"
        region = describe_address(m, addr, rt.region_describers)
        pdes = pagetable_lines(m, addr)
        first = nx_lines(m, addr, error_code)
    else:
        addr = eip
        kind = TRAP_NAMES.get(trapnr, f"exception {trapnr}")
        region = None
        pdes = first = []
    rt.reporter.oops(kind, addr, error_code, code, start, rt.symbolize, region, pdes,
                     first=first)
