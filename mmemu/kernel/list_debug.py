"""CONFIG_DEBUG_LIST: list_add() and list_del() check the neighbours' links.

Models lib/list_debug.c of 6.1 (__list_add_valid(), __list_del_entry_valid())
with include/linux/bug.h's CHECK_DATA_CORRUPTION() under
CONFIG_BUG_ON_DATA_CORRUPTION, which Debian's 686 kernel sets: the message
is printed (pr_err) and then BUG() at the check's line, which kills the
task.  BUG() does not return: check_data_corruption() raises KernelOops
after the report (as Reporter.die() and Reporter.corrupt() do), so the
list operation is never made and nothing after the check in the calling
kernel function runs.  A guest run ends with the BUG's status (the
hypercall doorbell takes the KernelOops); a call the host made raises it.
What the dead task held (a block off every list, half split or half
merged) is lost, as in 6.1: each caller puts such a block in mm.leaked
before the check raises, so every page stays accounted for.  A link the
check cannot even read is the oops of that read (Reporter.die()).

The callers describe their list in mmemu's terms: an entry's links as the
values stored (``nxt``, ``prv``), and readers of the neighbours' links that
return None for an address the kernel cannot read (then the dereference
itself oopses, as it would in 6.1's check).  The list head is 0: mmemu's
free lists are chains that end in 0 with host-side first/last, where
Linux's close through a list_head in struct zone (differs: the head prints
as 00000000), and their links hold struct page pointers, not &page->lru.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, Optional

from mmemu.errors import KernelOops

if TYPE_CHECKING:
    from mmemu.kernel.panic import Reporter

LIST_POISON1 = 0x00000100              # include/linux/poison.h, no POISON_POINTER_DELTA
LIST_POISON2 = 0x00000122
LIST_DEBUG_C = "lib/list_debug.c"

# The lines of each CHECK_DATA_CORRUPTION() in 6.1's lib/list_debug.c.
ADD_NEXT_PREV, ADD_PREV_NEXT, ADD_DOUBLE = 27, 30, 33
DEL_POISON1, DEL_POISON2, DEL_PREV_NEXT, DEL_NEXT_PREV = 53, 56, 59, 62


def check_data_corruption(rep: Reporter, line: int, function: str, message: str,
                          notes: Sequence[str] = ()) -> NoReturn:
    """CHECK_DATA_CORRUPTION() with CONFIG_BUG_ON_DATA_CORRUPTION: pr_err(), BUG().

    BUG() never returns: after the report (which ends a guest run being
    served, status 134) this raises KernelOops, so the caller's kernel
    function stops at the check, as the task dies there in 6.1.
    """
    rep.bug(LIST_DEBUG_C, line, function, notes=notes, before=[message])
    raise KernelOops(f"kernel BUG at {LIST_DEBUG_C}:{line} in {function}(): {message}")


def list_del_entry_valid(rep: Reporter, entry: int, nxt: int, prv: int, prev_next: Callable[[],
                         Optional[int]], next_prev: Callable[[], Optional[int]],
                         link_offsets: tuple[int, int]) -> bool:
    """__list_del_entry_valid(): may entry, linked to nxt and prv, be unlinked?

    prev_next() and next_prev() read prv->next and nxt->prev (the head's for
    0); they return None when the pointer cannot be read, and the read
    oopses at that address (link_offsets: the offsets of next and prev
    inside an entry).  Returns True when the list is sound around entry;
    otherwise the report, and KernelOops is raised (the task dies).
    """
    fn = "__list_del_entry_valid"
    if nxt == LIST_POISON1:
        return check_data_corruption(rep, DEL_POISON1, fn, f"list_del corruption, {entry:08x}"
                                     f"->next is LIST_POISON1 ({LIST_POISON1:08x})")
    if prv == LIST_POISON2:
        return check_data_corruption(rep, DEL_POISON2, fn, f"list_del corruption, {entry:08x}"
                                     f"->prev is LIST_POISON2 ({LIST_POISON2:08x})")
    got = prev_next()
    if got is None:
        rep.die((prv + link_offsets[0]) & 0xFFFFFFFF, fn)
    if got != entry:
        return check_data_corruption(rep, DEL_PREV_NEXT, fn, f"list_del corruption. prev->next "
                                     f"should be {entry:08x}, but was {got:08x}. "
                                     f"(prev={prv:08x})")
    got = next_prev()
    if got is None:
        rep.die((nxt + link_offsets[1]) & 0xFFFFFFFF, fn)
    if got != entry:
        return check_data_corruption(rep, DEL_NEXT_PREV, fn, f"list_del corruption. next->prev "
                                     f"should be {entry:08x}, but was {got:08x}. "
                                     f"(next={nxt:08x})")
    return True


def list_add_valid(rep: Reporter, new: int, prv: int, nxt: int, next_prev: int,
                   prev_next: int) -> bool:
    """__list_add_valid(): may new go between prv and nxt?

    next_prev and prev_next are the values read from nxt->prev and
    prv->next.  Returns True when it may; otherwise the report, and
    KernelOops is raised (the task dies).
    """
    fn = "__list_add_valid"
    if next_prev != prv:
        return check_data_corruption(rep, ADD_NEXT_PREV, fn, f"list_add corruption. next->prev "
                                     f"should be prev ({prv:08x}), but was {next_prev:08x}. "
                                     f"(next={nxt:08x}).")
    if prev_next != nxt:
        return check_data_corruption(rep, ADD_PREV_NEXT, fn, f"list_add corruption. prev->next "
                                     f"should be next ({nxt:08x}), but was {prev_next:08x}. "
                                     f"(prev={prv:08x}).")
    if new in (prv, nxt):
        return check_data_corruption(rep, ADD_DOUBLE, fn, f"list_add double add: new={new:08x}, "
                                     f"prev={prv:08x}, next={nxt:08x}.")
    return True
