#!/usr/bin/env python3
"""mmemu's benchmark: every figure as a ratio against a baseline measured in
the same run, each the fastest of several rounds (another process on the
machine only ever adds time), so a noisy machine moves it as little as can be.

    python3 tools/bench.py            # table
    python3 tools/bench.py --only hypercall,boot
    python3 tools/bench.py --json docs/figures/bench.json --markdown
    python3 tools/bench.py --from docs/figures/bench.json --readme

Targets are DESIGN.md's and issue 20's; a figure that misses its target is
marked "MISS".  A figure measured on both kernel flavours is listed twice,
"[686]" (pc-1g, 2-level tables) and "[686-pae]" (pc-1g-pae, PAE tables with
NX data), in adjacent rows, each against a bare Unicorn with the same kind
of page tables; every figure boots the flavour it names ($MMEMU_KERNEL is
set while it runs), the others 686.
--json stores the run (figures, command, date, host); --markdown prints the
README's table; --readme rewrites the README's generated block "bench"
with it; --from renders a stored run instead of measuring.
"""
import argparse
import functools
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from unicorn import Uc, UC_ARCH_X86, UC_MODE_32, UC_PROT_ALL, UC_HOOK_INSN  # noqa: E402
from unicorn.x86_const import (  # noqa: E402
    UC_X86_INS_IN, UC_X86_REG_CR0, UC_X86_REG_CR3, UC_X86_REG_CR4,
)

from mmemu.harness.figures import publish, publish_stored, run_info, write_record  # noqa: E402
from mmemu.harness.readme import README  # noqa: E402

ROUNDS = 5
FIGURES = {}


KERNELS = {}                 # figure name -> the flavour it boots (None: no mmemu)


def figure(name, target=None, unit="x", lower_is_better=True, kernel="686"):
    """A figure measured on one kernel flavour: configs without a `pae:` key
    (pc-1g, pc-4g) boot `kernel` while fn runs."""
    def deco(fn):
        FIGURES[name] = (_on_kernel(kernel, fn), target, unit, lower_is_better)
        KERNELS[name] = kernel
        return fn
    return deco


# The kernel flavours a "both" figure is measured on, and the config for each.
FLAVOURS = (("686", "pc-1g"), ("686-pae", "pc-1g-pae"))


def figure_both(name, target=None, unit="x", lower_is_better=True):
    """A figure measured once per kernel flavour: fn(config, pae), registered
    as "name [686]" and "name [686-pae]"."""
    def deco(fn):
        for flavour, config in FLAVOURS:
            run = functools.partial(fn, config, flavour == "686-pae")
            FIGURES[f"{name} [{flavour}]"] = (_on_kernel(flavour, run), target, unit,
                                              lower_is_better)
            KERNELS[f"{name} [{flavour}]"] = flavour
        return fn
    return deco


def _on_kernel(flavour, fn):
    """fn() with $MMEMU_KERNEL naming flavour (the machines it boots, the
    programs it builds), the environment restored after; None: fn itself."""
    if flavour is None:
        return fn

    @functools.wraps(fn)
    def run():
        old = os.environ.get("MMEMU_KERNEL")
        os.environ["MMEMU_KERNEL"] = flavour
        try:
            return fn()
        finally:
            if old is None:
                del os.environ["MMEMU_KERNEL"]
            else:
                os.environ["MMEMU_KERNEL"] = old
    return run


def best_time(fn, rounds=ROUNDS):
    """The fastest of rounds timed calls of fn (s)."""
    return best_times(fn, rounds=rounds)[0]


def best_times(*fns, rounds=ROUNDS):
    """The fastest of rounds timed calls of each fn, the calls taking turns
    (fn1, fn2, ..., fn1, ...) so that a burst of load falls on all alike."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [min(ts) for ts in times]


# -- guest code shared by the baseline and mmemu ------------------------------
CODE_BASE = 0xC0100000          # the bare Unicorn's: 1 MiB, in its first 4 MiB page
CODE_PHYS = 0x100000


def loop_code(n, body):
    """mov ecx, n; l: <body>; dec ecx; jnz l; hlt"""
    code = b"\xb9" + n.to_bytes(4, "little") + body + b"\x49"
    rel = -(len(body) + 1 + 2)
    return code + b"\x75" + (rel & 0xFF).to_bytes(1, "little") + b"\xf4"


def in_body(port):
    """mov dx, port; in eax, dx"""
    return b"\x66\xba" + port.to_bytes(2, "little") + b"\xed"


def compute_body():
    """add eax, ecx; xor ebx, eax; shl ebx, 1"""
    return b"\x01\xc8\x31\xc3\xd1\xe3"


MSR_EFER, EFER_NX = 0xC0000080, 1 << 11
# The bare Unicorn's data buffers (NX on PAE): 64 KiB apart, as two
# kmalloc(65536) blocks lie; 1 MiB apart they would share entries of
# Unicorn's 256-entry TLB and every byte copied would miss it.
DATA_A, DATA_B = 0xC0400000, 0xC0410000


def bare_unicorn(code, pae=False):
    """A bare Unicorn with paging on and the first 8 MiB mapped at PAGE_OFFSET,
    no mmemu.  686: two 4 MiB pages (2-level tables, PSE).  686-pae: a PDPT
    and a PMD of 2 MiB pages, the first (the code's) executable, the rest NX,
    EFER.NXE on: as the 686-pae kernel maps its text and its data."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 8 << 20, UC_PROT_ALL)
    if pae:
        pdpt, pmd = 0x2000, 0x3000
        uc.mem_write(pdpt + 3 * 8, (pmd | 1).to_bytes(8, "little"))
        for i in range(4):
            entry = (i << 21) | 0x1E3 | ((1 << 63) if i else 0)
            uc.mem_write(pmd + i * 8, entry.to_bytes(8, "little"))
        uc.reg_write(UC_X86_REG_CR3, pdpt)
        uc.reg_write(UC_X86_REG_CR4, uc.reg_read(UC_X86_REG_CR4) | 0x30)   # PSE | PAE
        uc.msr_write(MSR_EFER, uc.msr_read(MSR_EFER) | EFER_NX)
    else:
        pd = 0x2000
        uc.mem_write(pd + 768 * 4, (0x1E3).to_bytes(4, "little")
                     + (0x4001E3).to_bytes(4, "little"))
        uc.reg_write(UC_X86_REG_CR3, pd)
        uc.reg_write(UC_X86_REG_CR4, uc.reg_read(UC_X86_REG_CR4) | 0x10)
    uc.mem_write(CODE_PHYS, code)
    uc.reg_write(UC_X86_REG_CR0, uc.reg_read(UC_X86_REG_CR0) | 0x80010001)
    return uc


def run_bare(code, hook=None, pae=False):
    uc = bare_unicorn(code, pae)
    if hook:
        uc.hook_add(UC_HOOK_INSN, hook, None, 1, 0, UC_X86_INS_IN)
    return lambda: uc.emu_start(CODE_BASE, CODE_BASE + len(code))


def run_on_machine(m, code):
    """The code in the machine's kernel text (_text, where guest programs run)."""
    phys = m.kernel_image.text
    base = m.kernel_image.virt(phys)
    m.pm.write(phys, code)
    m.engine.remove_code_cache(base, base + len(code))
    return lambda: m.engine.run(base, base + len(code))


_machines = {}


def machine(name="pc-1g"):
    from mmemu.machine import Machine
    key = (name, os.environ.get("MMEMU_KERNEL"))
    if key not in _machines:
        _machines[key] = Machine(name, echo=False)
    return _machines[key]


N_HC = 100_000


def doorbell_body(nr):
    """mov eax, [HC_DOORBELL_VIRT + 4 * nr]: the hypercall instruction"""
    from mmemu.runtime.abi import HC_DOORBELL_VIRT
    return b"\xa1" + (HC_DOORBELL_VIRT + 4 * nr).to_bytes(4, "little")


@figure_both("empty hypercall / raw Unicorn in-hook", target=1.5)
def bench_hypercall(config, pae):
    """mmemu's empty hypercall (a doorbell read, rounds taking turns with the
    baselines) against the round trip of an `in` instruction to an IN hook
    added with the binding's hook_add(), each in a loop of N_HC."""
    from mmemu.runtime.abi import HC_NOP
    code = loop_code(N_HC, in_body(0x4D00))
    raw_run = run_bare(code, lambda uc, port, size, ud: 0, pae=pae)
    ctypes_run = run_bare_ctypes_in(code, pae)
    ours_run = run_on_machine(machine(config), loop_code(N_HC, doorbell_body(HC_NOP)))
    raw, raw_ctypes, ours = best_times(raw_run, ctypes_run, ours_run)
    return ours / raw, (f"raw {raw / N_HC * 1e6:.2f} us (a ctypes IN hook "
                        f"{raw_ctypes / N_HC * 1e6:.2f} us), mmemu {ours / N_HC * 1e6:.2f} us")


def run_bare_ctypes_in(code, pae=False):
    """run_bare() with the IN hook registered through ctypes (uc_hook_add), as
    mmemu registers its doorbell callback: no binding wrapper layers."""
    import ctypes
    from unicorn.unicorn_py3.unicorn import uclib
    uc = bare_unicorn(code, pae)
    cb = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                          ctypes.c_void_p)(lambda handle, port, size, ud: 0)
    handle = ctypes.c_size_t()
    uclib.uc_hook_add(uc._uch, ctypes.byref(handle), UC_HOOK_INSN, cb, None, ctypes.c_uint64(1),
                      ctypes.c_uint64(0), ctypes.c_int(UC_X86_INS_IN))

    def run():
        uc.emu_start(CODE_BASE, CODE_BASE + len(code))
        return cb                  # the callback lives as long as the runner
    return run


LOOPS = {"nothing": 0, "empty": 1, "page": 2, "kmalloc": 3, "vmalloc": 4, "ioremap": 5,
         "kmap": 6, "kmap_atomic": 7, "mmio": 8, "memset": 9, "memcpy": 10, "compute": 11}
_loop_elves = {}


def guest_loop_costs(loops, config="pc-1g", **run_kw):
    """Seconds per iteration of loops of tools/bench_guest/loops.c, {kind: iterations}.

    Each loop runs on a fresh machine with its iterations and with none
    (what starting the program costs), three times, the runs of every loop
    taking turns; a loop's cost is the difference of its fastest runs.
    Only the guest's run is timed, not the machine's boot.  The program is
    built for the config's kernel; run_kw goes to Machine.run() (budgets).
    """
    from mmemu.machine import Machine
    from mmemu.runtime.build import build
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_guest", "loops.c")

    def once(kind, iterations):
        m = Machine(config, echo=False)
        key = (config, m.pgtable.pae)
        if key not in _loop_elves:
            _loop_elves[key] = build(src, image=m.kernel_image, pae=m.pgtable.pae)
        img = m.load(_loop_elves[key])
        m.write32(img.lookup("which"), LOOPS[kind])
        m.write32(img.lookup("iterations"), iterations)
        t0 = time.perf_counter()
        r = m.run(**run_kw)
        dt = time.perf_counter() - t0
        if r.status != 0:
            raise RuntimeError(f"bench loop {kind} failed: {r.reason}\n{r.log}")
        return dt

    runs = [(kind, iters) for kind, n in loops.items() for iters in (0, n)]
    times = {run: [] for run in runs}
    for _ in range(3):
        for run in runs:
            times[run].append(once(*run))
    best = {run: min(ts) for run, ts in times.items()}
    return {kind: (best[kind, n] - best[kind, 0]) / n for kind, n in loops.items()}


def _guest_pair_vs_empty(kind, n):
    costs = guest_loop_costs({"empty": 200_000, kind: n})
    empty, pair = costs["empty"], costs[kind]
    return pair / empty, f"pair {pair * 1e6:.2f} us, empty hypercall {empty * 1e6:.2f} us"


def raw_in_hook(pae=False, n=N_HC):
    """Seconds per round trip of `in` to an IN hook added with the binding's
    hook_add(), on a bare Unicorn with the flavour's page tables."""
    run = run_bare(loop_code(n, in_body(0x4D00)), lambda uc, port, size, ud: 0, pae=pae)
    return best_time(run) / n


def _guest_pair_vs_raw(kind, n, config, pae):
    """A guest loop's pair against the raw in-hook, the two measured in turns."""
    pairs, raws = [], []
    for _ in range(2):
        pairs.append(guest_loop_costs({kind: n}, config)[kind])
        raws.append(raw_in_hook(pae))
    pair, raw = min(pairs), min(raws)
    return pair / raw, f"pair {pair * 1e6:.2f} us, raw in-hook {raw * 1e6:.2f} us"


@figure_both("guest alloc_page+__free_pages pair / raw Unicorn in-hook", target=3.0)
def bench_guest_page_pair(config, pae):
    return _guest_pair_vs_raw("page", 50_000, config, pae)


@figure_both("guest kmalloc(64)+kfree pair / raw Unicorn in-hook", target=1.5)
def bench_guest_kmalloc_pair(config, pae):
    return _guest_pair_vs_raw("kmalloc", 50_000, config, pae)


@figure_both("guest compute loop: mmemu / bare Unicorn (speed)", target=0.9,
             lower_is_better=False)
def bench_compute(config, pae):
    code = loop_code(100_000_000, compute_body())
    bare, ours = best_times(run_bare(code, pae=pae), run_on_machine(machine(config), code),
                            rounds=3)
    return bare / ours, f"bare {bare:.3f} s, mmemu {ours:.3f} s"


def bare_string_op(body, pae, n=40):
    """Seconds per 64 KiB rep stosb/movsb on a bare Unicorn (the SDK's
    memset/memcpy instructions), the data in an NX page on PAE."""
    def loop(k):
        # mov ebx, k; l: <body>; dec ebx; jnz l; hlt
        code = b"\xbb" + k.to_bytes(4, "little") + body + b"\x4b"
        code += b"\x75" + ((-(len(body) + 3)) & 0xFF).to_bytes(1, "little") + b"\xf4"
        uc = bare_unicorn(code, pae)
        return lambda: uc.emu_start(CODE_BASE, CODE_BASE + len(code))
    many, one = best_times(loop(n + 1), loop(1))
    return (many - one) / n


def _le32(v):
    return v.to_bytes(4, "little")


# mov edi, DATA_A; mov ecx, 65536; mov eax, ebx; rep stosb
STOSB_64K = b"\xbf" + _le32(DATA_A) + b"\xb9" + _le32(65536) + b"\x89\xd8\xf3\xaa"
# mov edi, DATA_B; mov esi, DATA_A; mov ecx, 65536; rep movsb
MOVSB_64K = b"\xbf" + _le32(DATA_B) + b"\xbe" + _le32(DATA_A) + b"\xb9" + _le32(65536) + b"\xf3\xa4"


def _string_op_vs_bare(kind, body, config, pae):
    ours, bare = [], []
    for _ in range(3):
        ours.append(guest_loop_costs({kind: 200}, config)[kind])
        bare.append(bare_string_op(body, pae))
    ours, bare = min(ours), min(bare)
    return bare / ours, f"mmemu {ours * 1e6:.0f} us, bare {bare * 1e6:.0f} us"


@figure_both("guest memset 64 KiB: mmemu / bare Unicorn (speed)", target=0.9,
             lower_is_better=False)
def bench_memset(config, pae):
    return _string_op_vs_bare("memset", STOSB_64K, config, pae)


@figure_both("guest memcpy 64 KiB: mmemu / bare Unicorn (speed)", target=0.9,
             lower_is_better=False)
def bench_memcpy(config, pae):
    return _string_op_vs_bare("memcpy", MOVSB_64K, config, pae)


@figure("bare Unicorn 64 KiB memset: 2-level tables / PAE tables with NX data", kernel=None)
def bench_bare_paging():
    """Why 686-pae runs guest code faster: Unicorn sends a store to a page
    its TLB holds as executable through a slow path, and without NX every
    page is executable."""
    two, pae = bare_string_op(STOSB_64K, False), bare_string_op(STOSB_64K, True)
    return two / pae, f"2-level {two * 1e6:.0f} us, PAE+NX {pae * 1e6:.0f} us"


@figure_both("guest compute loop: default run / no budget (speed)", target=0.9,
             lower_is_better=False)
def bench_default_budget(config, pae):
    """The default `mmemu run` (a time budget) against no budget at all
    (--max-insns 0 --timeout 0), the runs taking turns."""
    n = 100_000_000
    default, none = [], []
    for _ in range(2):
        default.append(guest_loop_costs({"compute": n}, config)["compute"])
        none.append(guest_loop_costs({"compute": n}, config, max_insns=0, timeout=0)["compute"])
    default, none = min(default), min(none)
    return none / default, (f"default {default * 1e9:.2f} ns, no budget {none * 1e9:.2f} ns "
                            "per iteration")


@figure_both("guest memset 64 KiB: run with --max-insns / without (speed)",
             lower_is_better=False)
def bench_insn_budget(config, pae):
    """The price of an instruction budget (Unicorn's per-instruction count)."""
    counted = guest_loop_costs({"memset": 100}, config, max_insns=2_000_000_000)["memset"]
    default = guest_loop_costs({"memset": 100}, config)["memset"]
    return default / counted, f"with {counted * 1e6:.0f} us, without {default * 1e6:.0f} us"


def _empty():
    pass


@figure("guest store loop / guest load loop, bare Unicorn with paging on", kernel=None)
def bench_store_vs_load():
    """A loop iteration with one 32-bit store against one with a load: stores
    take a slow path in Unicorn, loads do not."""
    n = 2_000_000
    addr = (CODE_BASE + (1 << 20)).to_bytes(4, "little")
    empty, load, store = best_times(run_bare(loop_code(n, b"\x90")),            # nop
                                    run_bare(loop_code(n, b"\xa1" + addr)),     # mov eax, [addr]
                                    run_bare(loop_code(n, b"\xa3" + addr)),     # mov [addr], eax
                                    rounds=3)
    return store / load, (f"store {store / n * 1e9:.1f} ns, load {load / n * 1e9:.1f} ns per "
                          f"iteration, {empty / n * 1e9:.1f} ns of it the loop")


@figure("host order-0 alloc+free pair / empty Python call", target=10.0)
def bench_host_order0():
    return _host_pair(0)


@figure("host order-3 alloc+free pair / empty Python call")
def bench_host_order3():
    return _host_pair(3)


def _host_pair(order):
    """alloc_pages+__free_pages per pair against one empty call.

    The baseline is the pair loop with its one line replaced by one call of
    an empty function taking alloc's arguments: the same loop overhead per
    iteration, names bound the same way.
    """
    from mmemu.mm import page_alloc
    from mmemu.mm.gfp import GFP_KERNEL
    m = machine()
    mm = m.mm
    alloc, free = page_alloc.alloc_pages, page_alloc._free_pages
    n = 50_000

    def empty(mm, gfp, order):
        pass

    def pairs():
        for _ in range(n):
            free(mm, alloc(mm, GFP_KERNEL, order), order)

    def empties():
        for _ in range(n):
            empty(mm, GFP_KERNEL, order)
    return _pair_vs_empty_call(pairs, empties, n)


def _pair_vs_empty_call(pairs, empties, n):
    """Both loops of n iterations, warmed up, then taking turns round by round
    (load on the machine falls on both alike): the ratio of their fastest rounds."""
    pairs()
    t_pair, t_empty = best_times(pairs, empties)
    return t_pair / t_empty, f"pair {t_pair / n * 1e6:.2f} us, empty call {t_empty / n * 1e6:.3f} us"


@figure("boot of pc-1g, config to paging on (s)", target=0.1, unit="s")
def bench_boot_1g():
    return _boot("pc-1g")


@figure("boot of pc-4g, config to paging on (s)", target=0.3, unit="s")
def bench_boot_4g():
    return _boot("pc-4g")


@figure("boot of qemu-pc-16g-pae, config to paging on (s)", target=1.0, unit="s",
        kernel="686-pae")
def bench_boot_16g_pae():
    return _boot("qemu-pc-16g-pae")


RSS_PROBE = """
import sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10
from mmemu.machine import Machine
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE
m = Machine(sys.argv[1], echo=False)
print(rss(), m.layout.max_pfn * STRUCT_PAGE_SIZE)
"""


def _rss_beyond_mem_map(name):
    """The whole process's resident memory after booting name, in a fresh
    interpreter, less mem_map's size (which boot writes all of): what the
    host pays beyond it (Python, Unicorn, the touched guest pages), bytes."""
    import subprocess
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, name], capture_output=True,
                         text=True, check=True, cwd=root).stdout.split()
    rss, mem_map = int(out[0]), int(out[1])
    return rss - mem_map, f"{(rss - mem_map) / (1 << 20):.1f} MiB: RSS {rss >> 20} MiB, " \
                          f"mem_map {mem_map >> 20} MiB"


@figure("host RSS after booting qemu-pc-16g-pae beyond mem_map (bytes)", target=64 << 20,
        unit="B", kernel="686-pae")
def bench_rss_16g_pae():
    return _rss_beyond_mem_map("qemu-pc-16g-pae")


@figure("host RSS after booting qemu-pc-4g beyond mem_map (bytes)", target=64 << 20, unit="B")
def bench_rss_4g():
    return _rss_beyond_mem_map("qemu-pc-4g")


def _boot(name):
    from mmemu.machine import Machine
    Machine(name, echo=False)          # warm: imports, the one-time CPU probe
    t = best_time(lambda: Machine(name, echo=False), rounds=3)
    return t, ""


@figure("host metadata per page frame beyond guest RAM (bytes)", target=16, unit="B")
def bench_metadata():
    from mmemu.machine import Machine
    Machine("pc-4g", echo=False)
    tracemalloc.start()
    m = Machine("pc-4g", echo=False)
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frames = m.layout.max_pfn
    return current / frames, f"{current / 1024:.0f} KiB of Python objects for {frames} frames"


@figure("host kmalloc(64)+kfree pair / empty Python call")
def bench_host_kmalloc():
    from mmemu.mm.gfp import GFP_KERNEL
    sl = machine().slab
    n = 20_000

    def pairs():
        for _ in range(n):
            sl.kfree(sl.kmalloc(64, GFP_KERNEL))

    def empties():
        for _ in range(n):
            _empty()
    return _pair_vs_empty_call(pairs, empties, n)


@figure("guest vmalloc(64 KiB)+vfree pair / empty hypercall")
def bench_guest_vmalloc():
    return _guest_pair_vs_empty("vmalloc", 5_000)


@figure("guest ioremap+iounmap pair / empty hypercall")
def bench_guest_ioremap():
    return _guest_pair_vs_empty("ioremap", 10_000)


@figure("guest kmap+kunmap (HighMem page) pair / empty hypercall")
def bench_guest_kmap():
    return _guest_pair_vs_empty("kmap", 20_000)


@figure("guest kmap_atomic+kunmap_atomic (HighMem) pair / empty hypercall")
def bench_guest_kmap_atomic():
    return _guest_pair_vs_empty("kmap_atomic", 20_000)


@figure("MMIO read through ioremap (paging) / plain Unicorn MMIO (paging off)")
def bench_mmio():
    n = 100_000
    ours = guest_loop_costs({"mmio": n})["mmio"]
    # the same 32-bit read loop on a bare Unicorn, paging off, one MMIO page
    code = loop_code(n, b"\xa1" + (0xFE001000).to_bytes(4, "little"))
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 2 << 20, UC_PROT_ALL)
    uc.mmio_map(0xFE001000, 0x1000, lambda uc_, off, size, ud: 0, None,
                lambda uc_, off, size, val, ud: None, None)
    uc.mem_write(CODE_PHYS, code)
    bare = best_time(lambda: uc.emu_start(CODE_PHYS, CODE_PHYS + len(code))) / n
    return ours / bare, f"ioremap {ours * 1e6:.2f} us, bare MMIO {bare * 1e6:.2f} us per read"


@figure("ptdump of the whole kernel half on pc-4g (s)", target=0.5, unit="s")
def bench_ptdump():
    from mmemu.views.ptdump import ptdump_text
    m = machine("pc-4g")
    ptdump_text(m)
    return best_time(lambda: ptdump_text(m)), ""


@figure("snapshot of pc-1g after a workload (s)", unit="s")
def bench_snapshot():
    import tempfile
    from mmemu.machine import Machine
    from mmemu.views.snapshot import write_snapshot
    m = Machine("pc-1g", echo=False)
    r = m.run(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest",
                           "examples", "page_tour.c"))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "core")
        t = best_time(lambda: write_snapshot(m, path), rounds=3)
        size = os.stat(path).st_blocks * 512
    return t, f"{size >> 20} MiB on disk, guest status {r.status}"


def parser():
    ap = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="also store the run (figures and where they ran)")
    ap.add_argument("--only", help="comma-separated substrings of figure names")
    ap.add_argument("--markdown", action="store_true", help="print the README's table")
    ap.add_argument("--readme", nargs="?", const=str(README), metavar="FILE",
                    help="rewrite the generated block 'bench' of README.md (or FILE)")
    ap.add_argument("--from", dest="stored", metavar="FILE",
                    help="render this stored run instead of measuring")
    return ap


def measure(only=None):
    """Run the figures (those matching only); a list of result dicts, printed as they come."""
    results = []
    for name, (fn, target, unit, lower) in FIGURES.items():
        if only and not any(s in name for s in only.split(",")):
            continue
        try:
            value, detail = fn()
        except Exception as e:  # a missing subsystem must not hide the other figures
            results.append({"figure": name, "error": repr(e)})
            print(f"{name:62s} ERROR {e!r}", flush=True)
            continue
        ok = None if target is None else (value <= target if lower else value >= target)
        mark = "" if ok is None else ("ok" if ok else "MISS")
        tgt = "" if target is None else (f"<= {target}" if lower else f">= {target}")
        print(f"{name:62s} {value:8.3f} {unit:2s} {tgt:8s} {mark:4s} {detail}", flush=True)
        results.append({"figure": name, "value": value, "unit": unit, "target": target,
                        "lower_is_better": lower, "ok": ok, "detail": detail})
    return results


def main(argv=None):
    args = parser().parse_args(argv)
    if args.readme and args.only:
        print("bench: --readme needs every figure (no --only)", file=sys.stderr)
        return 2
    if args.stored:
        return publish_stored(args.stored, "bench", args.readme)
    argv = sys.argv[1:] if argv is None else argv
    record = {"tool": "bench", "run": run_info(argv, "bench.py"), "figures": measure(args.only)}
    if args.json:
        write_record(args.json, record)
    if args.markdown or args.readme:
        publish(record, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
