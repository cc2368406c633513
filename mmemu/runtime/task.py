"""User-mode tasks below PAGE_OFFSET: exec, ring 3, int $0x80, segfaults.

A guest program (kernel code) starts a task with run_user(); this module
makes it as exec() would — pgd_alloc(), the program's user sections copied
into fresh user pages at 0x08048000, a stack below 0xc0000000 — drops to
ring 3, and takes it back on sys_exit or when the task faults.  A fault in
user mode kills the task with the line arch/x86/mm/fault.c's
show_signal_msg() prints; a kernel-mode fault on a vmalloc address whose
PDE the task's pgd lacks is synced as vmalloc_fault() does.

Differs from Linux: one task at a time, run synchronously from the kernel
program (no scheduler); syscalls mmemu does not serve itself go to a
handler the guest registers, run in ring 0 on the task's page tables and
on the kernel stack of the run_user() caller; the instruction budget
applies to each stretch between mode switches.
"""
from dataclasses import dataclass, field

from mmemu.arch.x86.fault import decode_pf_error
from mmemu.arch.x86.pgd import pgd_alloc, user_page_tables, vmalloc_sync_one
from mmemu.arch.x86.pgtable import PageTable, _PAGE_USER
from mmemu.arch.x86.segment import USER_SEGMENTS
from mmemu.engine import X86_TRAP_GP, X86_TRAP_PF, X86_TRAP_UD
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE
from mmemu.log import KERN_INFO
from mmemu.mm import gfp, page_alloc
from mmemu.runtime.abi import HC_RUN_USER, HC_SET_SYSCALL, HC_SYSCALL_RETURN

USER_BASE = 0x08048000
STACK_TOP = PAGE_OFFSET            # TASK_SIZE: the stack grows down from here
STACK_PAGES = 4
PAGE_READONLY_EXEC = 0x025         # P | USER | ACCESSED
PAGE_SHARED_EXEC = 0x067           # P | RW | USER | ACCESSED | DIRTY
_PAGE_TABLE = 0x067
SIGILL = 4
# On 686-pae the writable user pages (data, stack) are NX, as a VMA without
# PROT_EXEC gets (PAGE_SHARED / PAGE_COPY); on 686 every page is executable.
SIGSEGV = 11
X86_EFLAGS_FIXED = 0x2          # IF clear: Unicorn has no interrupt controller to enable
NR_exit, NR_write, NR_getpid = 1, 4, 20
EFAULT, ENOSYS, EBUSY, ENOEXEC = 14, 38, 16, 8
X86_PF_USER = 4
SAVED = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eflags")

_GFP_PGD = gfp.GFP_KERNEL | gfp.__GFP_ZERO
_GFP_PGTABLE_USER = _GFP_PGD | gfp.__GFP_ACCOUNT
_GFP_USER_PAGE = gfp.GFP_HIGHUSER | gfp.__GFP_ZERO


@dataclass
class Task:
    """One user task: task_struct and mm_struct, as far as mmemu needs them."""

    pid: int
    comm: str
    pgd: int                                   # physical address of its page directory
    pages: list = field(default_factory=list)  # user pfns (code, data, stack)
    vma: tuple = (USER_BASE, USER_BASE)        # the program's mapping, for "in prog[...]"
    kernel_ctx: object = None                  # the run_user() caller's CPU state
    kernel_regs: dict = None
    kernel_eip: int = 0
    user_regs: dict = None                     # saved across a guest-served syscall
    user_eip: int = 0


class Tasks:
    """The task machinery of one machine (one task runs at a time)."""

    def __init__(self, rt):
        self.rt = rt
        self.m = rt.machine
        self.current = None
        self.next_pid = 2                       # PID 1 is the guest program itself
        self.syscall_handler = None
        self.trampoline = None
        self.vmalloc_faults = 0
        self.killed = []                        # (pid, signal) of tasks killed
        rt.trap_handlers.append(self.on_exception)
        rt.task_running = lambda: self.current is not None
        t = rt.table
        t.register(HC_RUN_USER, "run_user", self.hc_run_user, 3)
        t.register(HC_SET_SYSCALL, "set_user_syscall_handler", self.hc_set_syscall, 2)
        t.register(HC_SYSCALL_RETURN, "syscall_return", self.hc_syscall_return, 1)

    # -- hypercalls -------------------------------------------------------
    def hc_run_user(self, name_va, entry, iret):
        """run_user(name, entry): exec the program's user sections, enter ring 3.

        iret is the SDK's one-instruction return-to-user trampoline."""
        if self.current is not None:
            self.rt.reporter.report("mmemu: run_user: a task is already running (one at a time)")
            return -EBUSY
        seg = self._user_segment()
        if seg is None or not seg.vaddr <= entry < seg.vaddr + seg.memsz:
            self.rt.reporter.report(f"mmemu: run_user: entry 0x{entry:08x} is not in the program's "
                                    "__user_text (mark user functions __user_text)")
            return -ENOEXEC
        task = self.exec_task(self.rt._cstr(name_va, 16) or "task", seg)
        if task is None:
            return -12
        eng = self.m.engine
        task.kernel_ctx = eng.save_cpu()
        task.kernel_regs = {r: eng.reg(r) for r in SAVED}
        self.current = task
        self.iret = iret

        def enter():
            # The CPU stopped on the doorbell read: run_user() returns past it.
            task.kernel_eip = self.rt.after_hypercall()
            # The task's pages may have held code the CPU translated (an
            # earlier task's): the host's copy is invisible to Unicorn, so
            # every translation goes.  Here, between emu_start()s: flushed
            # inside the doorbell's callback, the block running the call is
            # gone before the stop can put EIP back on the doorbell read.
            self.m.engine.flush_code()
            return self._iret_to_user(task, {"esp": STACK_TOP - 16, "ebp": 0}, entry)
        self._switch(enter)
        return 0

    def hc_set_syscall(self, handler, trampoline):
        self.syscall_handler, self.trampoline = handler or None, trampoline
        return 0

    def hc_syscall_return(self, result):
        task = self.current
        if task is None or task.user_regs is None:
            self.rt.reporter.report("mmemu: syscall_return with no syscall in progress")
            return -22
        regs, eip = task.user_regs, task.user_eip
        task.user_regs = None
        regs["eax"] = result
        self._switch(lambda: self._iret_to_user(task, regs, eip))
        return result

    # -- exec ---------------------------------------------------------------
    def _user_segment(self):
        img = self.rt.image
        for seg in getattr(img, "segments", ()):
            if seg.vaddr < PAGE_OFFSET:
                return seg
        return None

    def exec_task(self, comm, seg):
        """pgd_alloc() and the user mappings of a new task; None when out of memory."""
        m = self.m
        pgd = self._pgd_alloc()
        if pgd is None:
            return None
        task = Task(self.next_pid, comm[:15], pgd)
        self.next_pid += 1
        pt = PageTable(m.pm, pgd, self._alloc_table, m.engine.flush_tlb, m.pgtable.flavour)
        code_end = self._map_image(task, pt, seg)
        for i in range(STACK_PAGES):
            if not self._map_page(task, pt, STACK_TOP - (i + 1) * PAGE_SIZE, self._page_shared):
                return self._free_task(task) or None
        task.vma = (seg.vaddr, code_end)
        return task

    def _map_image(self, task, pt, seg):
        """Copy the user segment into new pages: text read-only, data writable."""
        img = self.rt.image
        data_start = _lookup(img, "__user_data_start", seg.vaddr + seg.memsz)
        end = seg.vaddr + seg.memsz
        for va in range(seg.vaddr & ~(PAGE_SIZE - 1), end, PAGE_SIZE):
            prot = PAGE_READONLY_EXEC if va + PAGE_SIZE <= data_start else self._page_shared
            pfn = self._map_page(task, pt, va, prot)
            if pfn is None:
                break
            n = min(PAGE_SIZE, end - va)
            src = seg.paddr + (va - seg.vaddr)
            self.m.pm.write(pfn << PAGE_SHIFT, self.m.pm.read(src, n))
        return (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)

    def _map_page(self, task, pt, va, prot):
        pfn = page_alloc.alloc_pages(self.m.mm, _GFP_USER_PAGE, 0)
        if pfn is None:
            return None
        task.pages.append(pfn)
        slot = pt.pte_alloc_kernel(va)
        if slot is None:
            return None
        pt.ptes[slot >> pt.pte_shift] = pt.mk_pte(pfn, prot)
        pde = pt.pde_slot(va) >> pt.pte_shift
        pt.ptes[pde] = (pt.ptes[pde] & pt.pfn_mask) | _PAGE_TABLE
        return pfn

    @property
    def _page_shared(self):
        """A writable user page: executable on 686, NX on 686-pae (PAGE_SHARED)."""
        return PAGE_SHARED_EXEC | self.m.pgtable.flavour._PAGE_NX

    def _pgd_alloc(self):
        """pgd_alloc(): a page directory with the kernel half of swapper_pg_dir.

        686: a zeroed page.  686-pae: a 32-byte PDPT from pgd_cache with
        three fresh user PMDs.  Returns its physical address, or None.
        """
        m = self.m
        if not m.pgtable.pae:
            pgd_pfn = page_alloc.alloc_pages(m.mm, _GFP_PGD, 0)
            if pgd_pfn is None:
                return None
            pgd_alloc(m.pm, m.pgtable.pgd, pgd_pfn << PAGE_SHIFT)
            return pgd_pfn << PAGE_SHIFT
        from mmemu.arch.x86.pgtable_3level import PgdAllocFailure, pgd_alloc_pae
        obj = m.slab.kmem_cache_alloc(m.pgd_cache, _GFP_PGTABLE_USER)
        if not obj:
            return None
        pgd = obj - PAGE_OFFSET
        got = pgd_alloc_pae(m.pm, m.pgtable.pgd, pgd, self._alloc_pmd)
        if isinstance(got, PgdAllocFailure):
            for pmd in got.free_pmds:
                self._free_table(pmd)
            m.slab.kmem_cache_free(m.pgd_cache, obj)
            return None
        return pgd

    def _pgd_free(self, pgd):
        """pgd_free(): the page, or the PDPT back to pgd_cache."""
        m = self.m
        if m.pgtable.pae:
            m.slab.kmem_cache_free(m.pgd_cache, pgd + PAGE_OFFSET)
        else:
            page_alloc._free_pages(m.mm, pgd >> PAGE_SHIFT, 0)

    def _alloc_pmd(self):
        return self._alloc_table()

    def _free_table(self, table):
        mm = self.m.mm
        page_alloc.pgtable_page_dtor(mm, table >> PAGE_SHIFT)
        page_alloc._free_pages(mm, table >> PAGE_SHIFT, 0)

    def _alloc_table(self):
        pfn = page_alloc.alloc_pages(self.m.mm, _GFP_PGD, 0)
        if pfn is None:
            return None
        page_alloc.pgtable_page_ctor(self.m.mm, pfn)
        return pfn << PAGE_SHIFT

    def _free_task(self, task):
        """exit_mmap() and pgd_free(): every user page, user page table, the pgd."""
        mm = self.m.mm
        for pfn in task.pages:
            page_alloc._free_pages(mm, pfn, 0)
        if self.m.pgtable.pae:
            from mmemu.arch.x86.pgtable_3level import user_page_tables_3level, user_pmds
            tables = user_page_tables_3level(self.m.pm, task.pgd) + user_pmds(self.m.pm, task.pgd)
        else:
            tables = user_page_tables(self.m.pm, task.pgd)
        for table in tables:
            self._free_table(table)
        self._pgd_free(task.pgd)
        task.pages = []

    # -- mode switches ------------------------------------------------------
    def _switch(self, fn):
        """Apply fn between two emu_start()s: CS, SS and CR3 change there."""
        self.rt.pending_switch = fn
        self.m.engine.stop()

    def _iret_to_user(self, task, regs, eip):
        """Ring 0 -> 3 the way the kernel does it: an iret frame and iret.

        (Unicorn checks a host-written SS against the current privilege
        level, so only the CPU itself can change it.)"""
        eng = self.m.engine
        frame = (task.kernel_regs["esp"] - 1024) & ~0xF
        words = (eip, USER_SEGMENTS["cs"], X86_EFLAGS_FIXED, regs["esp"], USER_SEGMENTS["ss"])
        for i, word in enumerate(words):
            self.m.write32(frame + 4 * i, word)
        eng.set_reg("cr3", task.pgd)
        for name, value in regs.items():
            if name not in ("esp", "eflags"):
                eng.set_reg(name, value)
        eng.set_reg("esp", frame)
        return self.iret

    def _to_kernel(self, task, pgd):
        """Ring 3 -> 0: the CPU state saved in run_user(), on page directory pgd."""
        eng = self.m.engine
        eng.restore_cpu(task.kernel_ctx)
        eng.set_reg("cr3", pgd)
        eng.flush_tlb()

    def _exit(self, status):
        """do_exit(): free the task's memory, resume run_user()'s caller with status."""
        task, self.current = self.current, None
        regs = dict(task.kernel_regs, eax=status & 0xFFFFFFFF)
        self._switch(lambda: self._finish(task, regs))

    def _finish(self, task, regs):
        self._to_kernel(task, self.m.pgtable.pgd)
        for name, value in regs.items():
            self.m.engine.set_reg(name, value)
        self._free_task(task)
        return task.kernel_eip

    # -- exceptions and syscalls -------------------------------------------
    def on_exception(self, trapnr, error_code):
        """Handle what belongs to tasks; False lets the runtime oops."""
        task = self.current
        if task is None:
            return False
        user = self.m.engine.reg("cs") & 3 == 3
        if trapnr == 0x80 and user:
            self.syscall(task)
            return True
        if trapnr == X86_TRAP_PF and not user:
            cr2 = self.m.engine.reg("cr2")
            # On PAE the kernel PMD is shared: nothing is ever missing to sync.
            if not self.m.pgtable.pae and vmalloc_sync_one(self.m.pm, task.pgd,
                                                           self.m.pgtable.pgd, cr2):
                self.vmalloc_faults += 1
                return True
            return False
        if user and trapnr in (X86_TRAP_PF, X86_TRAP_GP):
            self.force_sig_segv(task, trapnr, error_code)
            return True
        if user and trapnr == X86_TRAP_UD:
            self.force_sig_ill(task)
            return True
        return False

    def syscall(self, task):
        eng = self.m.engine
        nr, a, b, c = (eng.reg(r) for r in ("eax", "ebx", "ecx", "edx"))
        if nr == NR_exit:
            self.rt.log.printk(f"mmemu: {task.comm}[{task.pid}] exited with status {a & 0xFF}",
                               KERN_INFO)
            self._exit(a & 0xFF)
        elif nr == NR_write:
            eng.set_reg("eax", self.sys_write(task, b, c) & 0xFFFFFFFF)
        elif nr == NR_getpid:
            eng.set_reg("eax", task.pid)
        elif self.syscall_handler:
            self._enter_guest_handler(task, nr, a, b, c)
        else:
            eng.set_reg("eax", -ENOSYS & 0xFFFFFFFF)

    def sys_write(self, task, buf, count):
        """write(1, buf, count) to the console; -EFAULT unless all of buf is user memory."""
        count = min(count, 4096)
        data = bytearray()
        for va in range(buf, buf + count):
            w = self.m.pgtable.walk(va, task.pgd)
            if va >= PAGE_OFFSET or w.phys is None or not w.flags & _PAGE_USER:
                return -EFAULT
            data.append(self.m.pm.u8[w.phys])
        self.rt.console_write(data.decode("utf-8", "replace"))
        return count

    def _enter_guest_handler(self, task, nr, a, b, c):
        """Ring 0 on the task's pgd: the guest's handler(nr, a, b, c) via the trampoline."""
        eng = self.m.engine
        task.user_regs = {r: eng.reg(r) for r in SAVED}
        task.user_eip = eng.reg("eip")
        esp = (task.kernel_regs["esp"] - 512) & ~0xF
        for i, word in enumerate((self.syscall_handler, nr, a, b, c)):
            self.m.write32(esp + 4 * i, word)

        def enter():
            self._to_kernel(task, task.pgd)
            self.m.engine.set_reg("esp", esp)
            return self.trampoline
        self._switch(enter)

    def force_sig_ill(self, task):
        """do_error_trap() for #UD from user mode: show_signal() and SIGILL."""
        eng = self.m.engine
        ip, sp = eng.reg("eip"), eng.reg("esp")
        lo, hi = task.vma
        where = f" in {task.comm}[{lo:x}+{hi - lo:x}]" if lo <= ip < hi else ""
        self.rt.reporter.info(f"traps: {task.comm}[{task.pid}] trap invalid opcode ip:{ip:x} "
                              f"sp:{sp:x} error:0{where}", KERN_INFO)
        self.killed.append((task.pid, SIGILL))
        self._exit(128 + SIGILL)

    def force_sig_segv(self, task, trapnr, error_code):
        """show_signal_msg() and SIGSEGV: the task dies, the machine goes on."""
        eng = self.m.engine
        ip, sp = eng.reg("eip"), eng.reg("esp")
        lo, hi = task.vma
        where = f" in {task.comm}[{lo:x}+{hi - lo:x}]" if lo <= ip < hi else ""
        if trapnr == X86_TRAP_PF:
            addr = eng.reg("cr2")
            lines = [f"{task.comm}[{task.pid}]: segfault at {addr:x} ip {ip:08x} sp {sp:08x} "
                     f"error {error_code:x}{where}"]
            lines += [f"mmemu: {line}" for line in decode_pf_error(error_code, True)]
        else:
            lines = [f"traps: {task.comm}[{task.pid}] general protection fault ip:{ip:x} "
                     f"sp:{sp:x} error:{error_code:x}{where}"]
        self.rt.reporter.info("\n".join(lines), KERN_INFO)
        self.killed.append((task.pid, SIGSEGV))
        self._exit(128 + SIGSEGV)


def _lookup(img, name, default):
    try:
        return img.lookup(name)
    except KeyError:
        return default
