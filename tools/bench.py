#!/usr/bin/env python3
"""mmemu's benchmark: every figure as a ratio against a baseline measured in
the same run, each the fastest of several rounds (another process on the
machine only ever adds time), so a noisy machine moves it as little as can be.

    python3 tools/bench.py            # table
    python3 tools/bench.py --only hypercall,boot
    python3 tools/bench.py --json docs/figures/bench.json --markdown
    python3 tools/bench.py --from docs/figures/bench.json --readme

Targets are DESIGN.md's; a figure that misses its target is marked "MISS".
--json stores the run (figures, command, date, host); --markdown prints the
README's table; --readme rewrites the README's generated block "bench"
with it; --from renders a stored run instead of measuring.
"""
import argparse
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from unicorn import Uc, UC_ARCH_X86, UC_MODE_32, UC_PROT_ALL, UC_HOOK_INSN  # noqa: E402
from unicorn.x86_const import UC_X86_INS_IN, UC_X86_REG_CR0, UC_X86_REG_CR3, UC_X86_REG_CR4  # noqa: E402

from mmemu.harness.figures import publish, read_record, run_info, write_record  # noqa: E402
from mmemu.harness.readme import README  # noqa: E402

ROUNDS = 5
FIGURES = {}


def figure(name, target=None, unit="x", lower_is_better=True):
    def deco(fn):
        FIGURES[name] = (fn, target, unit, lower_is_better)
        return fn
    return deco


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


def bare_unicorn(code):
    """A bare Unicorn with paging on (4 MiB page at PAGE_OFFSET), no mmemu."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 8 << 20, UC_PROT_ALL)
    pd = 0x2000
    uc.mem_write(pd + 768 * 4, (0x1E3).to_bytes(4, "little") + (0x4001E3).to_bytes(4, "little"))
    uc.mem_write(CODE_PHYS, code)
    uc.reg_write(UC_X86_REG_CR3, pd)
    uc.reg_write(UC_X86_REG_CR4, uc.reg_read(UC_X86_REG_CR4) | 0x10)
    uc.reg_write(UC_X86_REG_CR0, uc.reg_read(UC_X86_REG_CR0) | 0x80010001)
    return uc


def run_bare(code, hook=None):
    uc = bare_unicorn(code)
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
    if name not in _machines:
        _machines[name] = Machine(name, echo=False)
    return _machines[name]


N_HC = 100_000


def doorbell_body(nr):
    """mov eax, [HC_DOORBELL_VIRT + 4 * nr]: the hypercall instruction"""
    from mmemu.runtime.abi import HC_DOORBELL_VIRT
    return b"\xa1" + (HC_DOORBELL_VIRT + 4 * nr).to_bytes(4, "little")


@figure("empty hypercall / raw Unicorn in-hook", target=1.5)
def bench_hypercall():
    """mmemu's empty hypercall (a doorbell read, rounds taking turns with the
    baselines) against the round trip of an `in` instruction to an IN hook
    added with the binding's hook_add(), each in a loop of N_HC."""
    from mmemu.runtime.abi import HC_NOP
    code = loop_code(N_HC, in_body(0x4D00))
    raw_run = run_bare(code, lambda uc, port, size, ud: 0)
    ctypes_run = run_bare_ctypes_in(code)
    ours_run = run_on_machine(machine(), loop_code(N_HC, doorbell_body(HC_NOP)))
    raw, raw_ctypes, ours = best_times(raw_run, ctypes_run, ours_run)
    return ours / raw, (f"raw {raw / N_HC * 1e6:.2f} us (a ctypes IN hook "
                        f"{raw_ctypes / N_HC * 1e6:.2f} us), mmemu {ours / N_HC * 1e6:.2f} us")


def run_bare_ctypes_in(code):
    """run_bare() with the IN hook registered through ctypes (uc_hook_add), as
    mmemu registers its doorbell callback: no binding wrapper layers."""
    import ctypes
    from unicorn.unicorn_py3.unicorn import uclib
    uc = bare_unicorn(code)
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
         "kmap": 6, "kmap_atomic": 7, "mmio": 8}


def guest_loop_costs(loops, config="pc-1g"):
    """Seconds per iteration of loops of tools/bench_guest/loops.c, {kind: iterations}.

    Each loop runs on a fresh machine with its iterations and with none
    (what starting the program costs), three times, the runs of every loop
    taking turns; a loop's cost is the difference of its fastest runs.
    Only the guest's run is timed, not the machine's boot.
    """
    from mmemu.machine import Machine
    from mmemu.runtime.build import build
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_guest", "loops.c")

    def once(kind, iterations):
        m = Machine(config, echo=False)
        img = m.load(build(src, image=m.kernel_image))
        m.write32(img.lookup("which"), LOOPS[kind])
        m.write32(img.lookup("iterations"), iterations)
        t0 = time.perf_counter()
        r = m.run()
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


@figure("guest alloc_page+__free_pages pair / empty hypercall", target=3.0)
def bench_guest_page_pair():
    return _guest_pair_vs_empty("page", 50_000)


@figure("guest kmalloc(64)+kfree pair / empty hypercall", target=3.0)
def bench_guest_kmalloc_pair():
    return _guest_pair_vs_empty("kmalloc", 50_000)


@figure("guest compute loop: mmemu / bare Unicorn (speed)", target=0.9, lower_is_better=False)
def bench_compute():
    code = loop_code(100_000_000, compute_body())
    bare, ours = best_times(run_bare(code), run_on_machine(machine(), code))
    return bare / ours, f"bare {bare:.3f} s, mmemu {ours:.3f} s"


def _empty():
    pass


@figure("guest store loop / guest load loop, bare Unicorn with paging on")
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
        try:
            record = read_record(args.stored, "bench")
        except ValueError as e:
            print(f"bench: {e}", file=sys.stderr)
            return 2
    else:
        argv = sys.argv[1:] if argv is None else argv
        record = {"tool": "bench", "run": run_info(argv, "bench.py"), "figures": measure(args.only)}
        if args.json:
            write_record(args.json, record)
    if args.markdown or args.readme or args.stored:
        publish(record, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
