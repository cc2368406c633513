"""The guest program's kernel stack: its guard page, and the report when a
stack overflow runs into it.

A guest program runs on init_stack (guest/lib/start.S: THREAD_SIZE, 16 KiB)
with one page below it, init_stack_guard, that the loader leaves unmapped
in the direct map.  A push, call or local variable below the stack then
faults on that page, and the report is the one Linux prints for a
CONFIG_VMAP_STACK task stack (arch/x86/kernel/traps.c:handle_stack_overflow(),
reached from page_fault_oops()): "BUG: TASK stack guard page was hit at
ADDR (stack is BEGIN..END)", then die("stack guard page"), which kills the
task.

Differs: the 686 kernel has no VMAP_STACK (x86-32 stacks live in the direct
map, unguarded, and an overflow silently corrupts what lies below); mmemu
guards the stack so that the bug shows where it happens.  Pointers print in
full (no %p hashing).
"""
from mmemu.arch.x86.init import split_large_page
from mmemu.arch.x86.pgtable import _PAGE_PSE, __PAGE_KERNEL
from mmemu.engine import X86_TRAP_PF
from mmemu.layout import PAGE_OFFSET, PAGE_SIZE


def guard_stack(rt, image):
    """Unmap the image's stack guard page (and map the last image's again).

    Returns the guard's range, or None for an image built without one.
    """
    pgtable = rt.machine.pgtable
    old = rt.stack_guard
    if old is not None:
        for va in range(old.start, old.end, PAGE_SIZE):
            pgtable.set_pte(va, (va - PAGE_OFFSET) | __PAGE_KERNEL)
    rt.stack_guard = image.stack_guard
    if image.stack_guard is None:
        return None
    for va in range(image.stack_guard.start, image.stack_guard.end, PAGE_SIZE):
        if pgtable.pte_slot(va) is None and pgtable.pde(va) & _PAGE_PSE:
            # in a 4 MiB page of the direct map: split it, as set_memory_np() would
            split_large_page(pgtable, va, rt.machine._alloc_pgtable_page)
        pgtable.clear_pte(va, flush=False)
    rt.machine.engine.flush_tlb()
    return image.stack_guard


def stack_overflow_handler(rt):
    """A handler for GuestRuntime.trap_handlers: a page fault
    on the stack guard page is reported as handle_stack_overflow() does."""
    def on_exception(trapnr, error_code):
        guard = rt.stack_guard
        if trapnr != X86_TRAP_PF or guard is None:
            return False
        addr = rt.machine.engine.reg("cr2")
        if addr not in guard:
            return False
        report_stack_overflow(rt, addr, rt.image.stack)
        return True
    return on_exception


def report_stack_overflow(rt, addr, stack):
    """handle_stack_overflow()'s line, then die("stack guard page", regs, 0)."""
    from mmemu.runtime.faults import code_bytes
    regs = rt.machine.engine.regs()
    start, code = code_bytes(rt, regs["eip"])
    first = (f"BUG: TASK stack guard page was hit at {addr:08x} "
             f"(stack is {stack.start:08x}..{stack.end:08x})")
    region = (f"the address is in the guard page below init_stack: the stack overflowed "
              f"its {stack.size // 1024} KiB (ESP {regs['esp']:08x})")
    rt.reporter.oops("stack guard page", addr, 0, code, start, rt.symbolize, region, [],
                     before=[first])
