"""The page-fault words of an oops: the error code decoded, the faulting
address explained, the page-table entries behind it.

Models the text of arch/x86/mm/fault.c on 32-bit, 686 and 686-pae
(show_fault_oops(), dump_pagetable()) and the error code bits of
arch/x86/include/asm/trap_pf.h.
Pure formatting: the runtime reads CR2, the error code and the entries.
"""
from collections.abc import Iterable
from typing import Optional

PAGE_SIZE = 4096

# Page fault error code bits (arch/x86/include/asm/trap_pf.h)
X86_PF_PROT = 1 << 0
X86_PF_WRITE = 1 << 1
X86_PF_USER = 1 << 2
X86_PF_RSVD = 1 << 3
X86_PF_INSTR = 1 << 4
X86_PF_PK = 1 << 5


def decode_pf_error(error_code: int, user_mode: Optional[bool] = None) -> tuple[str, str]:
    """The two "#PF:" lines of show_fault_oops() for a page-fault error code.

    >>> decode_pf_error(0x0002)
    ('#PF: supervisor write access in kernel mode', '#PF: error_code(0x0002) - not-present page')

    user_mode is where the CPU was (user_mode(regs)); by default the U bit.
    """
    if user_mode is None:
        user_mode = bool(error_code & X86_PF_USER)
    who = "user" if error_code & X86_PF_USER else "supervisor"
    if error_code & X86_PF_INSTR:
        what = "instruction fetch"
    elif error_code & X86_PF_WRITE:
        what = "write access"
    else:
        what = "read access"
    if not error_code & X86_PF_PROT:
        why = "not-present page"
    elif error_code & X86_PF_RSVD:
        why = "reserved bit violation"
    elif error_code & X86_PF_PK:
        why = "protection keys violation"
    else:
        why = "permissions violation"
    mode = "user" if user_mode else "kernel"
    return (f"#PF: {who} {what} in {mode} mode",
            f"#PF: error_code(0x{error_code:04x}) - {why}")


def dump_pagetable_line(pde: Optional[int], pte: Optional[int] = None,
                        pdpte: Optional[int] = None) -> str:
    """dump_pagetable() on 32-bit: "*pde = 00000000 " (and the pte).

    With pdpte (686-pae): "*pdpt = %016Lx ", then the pmd entry and the pte
    as %016Lx each; pde None when the PDPT entry was not present (6.1 stops
    there), pte None after an absent or large pmd.
    """
    if pdpte is None:
        line = f"*pde = {pde:08x} "
        return line + (f"*pte = {pte:08x} " if pte is not None else "")
    line = f"*pdpt = {pdpte:016x} "
    if pde is not None:
        line += f"*pde = {pde:016x} "
        if pte is not None:
            line += f"*pte = {pte:016x} "
    return line


def nx_line(uid: int = 0) -> str:
    """show_fault_oops()'s line for an instruction fetch from a present NX page."""
    return f"kernel tried to execute NX-protected page - exploit attempt? (uid: {uid})"


def show_fault_oops_lines(addr: int, error_code: int, pdes: Optional[Iterable[str]],
                          first: Iterable[str] = ()) -> list[str]:
    """show_fault_oops(): what was touched, how, and the page-table entries.

    first: the lines 6.1 prints before the rest (nx_line() for a fetch
    from an NX page)."""
    addr &= 0xFFFFFFFF
    if addr < PAGE_SIZE:
        bug = f"BUG: kernel NULL pointer dereference, address: {addr:08x}"
    else:
        bug = f"BUG: unable to handle page fault for address: {addr:08x}"
    return [*first, bug, *decode_pf_error(error_code, user_mode=False), *(pdes or ())]
